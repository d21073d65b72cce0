//! `<root>/servers-map`: node id -> `{"host": "...", "port": "..."}`.

use super::endpoint::{endpoint_value, is_valid_host, parse_endpoint, Endpoint};
use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;

/// The Backpack nodes by id, as the tools use them (port defaulted to 80).
pub type Servers = BTreeMap<String, Endpoint>;

/// Reads the map. A malformed entry is an error that names the server.
pub fn parse(path: &str, doc: &Value) -> Result<Servers> {
    let map = doc
        .as_object()
        .ok_or_else(|| Error::bad_state(path, "not a JSON object"))?;
    map.iter()
        .map(|(id, value)| {
            parse_endpoint(value, 80)
                .map(|endpoint| (id.clone(), endpoint))
                .map_err(|why| Error::bad_state(path, format!("server {id}: {why}")))
        })
        .collect()
}

/// A node's address as given to add-server: `http://host[:port][/]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUrl {
    pub host: String,
    /// `None` when the URL has no port; stored as `null`, read as 80.
    pub port: Option<u16>,
}

impl NodeUrl {
    pub fn parse(url: &str) -> Result<NodeUrl> {
        let bad = |why: &str| {
            Error::usage(format!(
                "invalid server URL {url:?}: {why} (example: http://127.0.0.1:10001)"
            ))
        };
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => return Err(bad(&format!("scheme {scheme:?} is not http"))),
            None => return Err(bad("it does not start with http://")),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains('@') {
            return Err(bad("user names are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            match v6.split_once(']') {
                Some((host, "")) => (host, None),
                Some((host, port)) => (host, Some(port.strip_prefix(':').unwrap_or(port))),
                None => return Err(bad("unclosed '['")),
            }
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if !is_valid_host(host) {
            return Err(bad(&format!("{host:?} is not a host name or IP address")));
        }
        let port = match port {
            None | Some("") => None,
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port > 0 => Some(port),
                _ => return Err(bad(&format!("{text:?} is not a TCP port"))),
            },
        };
        Ok(NodeUrl {
            host: host.to_string(),
            port,
        })
    }
}

/// What an upsert did, for the command's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Added,
    Updated,
    Unchanged,
}

/// Adds a server, or changes host and port of an existing one in place (its other keys and
/// its position stay).
pub fn upsert(doc: &mut Value, id: &str, url: &NodeUrl) -> Result<Upsert> {
    let map = doc
        .as_object_mut()
        .ok_or_else(|| Error::invalid("servers-map is not a JSON object"))?;
    let Value::Object(fresh) = endpoint_value(&url.host, url.port) else {
        unreachable!("endpoint_value builds an object")
    };
    match map.get_mut(id) {
        Some(Value::Object(entry)) => {
            let before = entry.clone();
            for (key, value) in fresh {
                entry.insert(key, value);
            }
            Ok(if *entry == before {
                Upsert::Unchanged
            } else {
                Upsert::Updated
            })
        }
        _ => {
            map.insert(id.to_string(), Value::Object(fresh));
            Ok(Upsert::Added)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_as_operators_type_them() {
        let url = NodeUrl::parse("http://127.0.0.1:24001").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("127.0.0.1", Some(24001)));
        let url = NodeUrl::parse("http://127.0.0.1/").unwrap();
        assert_eq!(url.port, None);
        let url = NodeUrl::parse("HTTP://[::1]:8080/x").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", Some(8080)));
        for bad in [
            "127.0.0.1:1",
            "https://a:1",
            "http://:1",
            "http://a:b",
            "http://a:70000",
            "http://evil;}:1",
        ] {
            assert!(NodeUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn upsert_keeps_unknown_keys_and_position() {
        let mut doc =
            json!({"1": {"host": "a", "port": "1", "zone": "x"}, "2": {"host": "b", "port": "2"}});
        let url = NodeUrl::parse("http://c:3").unwrap();
        assert_eq!(upsert(&mut doc, "1", &url).unwrap(), Upsert::Updated);
        assert_eq!(
            doc.to_string(),
            r#"{"1":{"host":"c","port":"3","zone":"x"},"2":{"host":"b","port":"2"}}"#
        );
        assert_eq!(upsert(&mut doc, "1", &url).unwrap(), Upsert::Unchanged);
    }

    #[test]
    fn reads_old_forms() {
        let doc =
            json!({"1": {"host": "127.0.0.1", "port": null}, "2": {"host": "one", "port": 24002}});
        let servers = parse("/x", &doc).unwrap();
        assert_eq!(servers["1"].port, 80);
        assert_eq!(servers["2"].port, 24002);
        let err = parse("/x", &json!({"7": {"port": "1"}})).unwrap_err();
        assert!(err.to_string().contains("server 7"), "{err}");
    }
}
