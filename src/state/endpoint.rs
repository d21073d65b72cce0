//! Host and port pairs as they appear in `servers-map` and in the queue's server list.
//!
//! The old tools wrote ports as strings (`"port":"10001"`), and `null` for a URL without a
//! port. Readers accept a string, a number or null (the HTTP default, 80). Hosts are checked
//! to be plain host names or IP addresses, because they end up in URLs and in nginx configs.

use serde_json::Value;
use std::fmt;

/// Where a Backpack node or a Redis server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// True for a DNS name (letters, digits, `-`, `.`), an IPv4 address, or an IPv6 address
/// (written without brackets). Anything else could break a URL or an nginx config.
pub fn is_valid_host(host: &str) -> bool {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Reads a stored port: `"10001"`, `10001`, or `null`/missing (`None`: the scheme's default).
pub fn parse_port_value(value: Option<&Value>) -> Result<Option<u16>, String> {
    let port = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) if text.is_empty() => return Ok(None),
        Some(Value::String(text)) => text.parse::<u16>().ok(),
        Some(Value::Number(number)) => number.as_u64().and_then(|n| u16::try_from(n).ok()),
        Some(_) => None,
    };
    match port {
        Some(port) if port > 0 => Ok(Some(port)),
        _ => Err(format!(
            "port {} is not a TCP port",
            value.map_or(Value::Null, Clone::clone)
        )),
    }
}

/// Reads `{"host": "...", "port": ...}`; a missing port means `default_port`.
pub fn parse_endpoint(value: &Value, default_port: u16) -> Result<Endpoint, String> {
    let host = match value.get("host") {
        Some(Value::String(host)) if is_valid_host(host) => host.clone(),
        Some(other) => return Err(format!("host {other} is not a host name or IP address")),
        None => return Err("no host".to_string()),
    };
    let port = parse_port_value(value.get("port"))?.unwrap_or(default_port);
    Ok(Endpoint { host, port })
}

/// The stored form of an endpoint, as the old tools wrote it: the port as a string.
pub fn endpoint_value(host: &str, port: Option<u16>) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("host".into(), Value::String(host.to_string()));
    map.insert(
        "port".into(),
        port.map_or(Value::Null, |p| Value::String(p.to_string())),
    );
    Value::Object(map)
}

/// Parses `host:port[,host:port...]` as typed on the command line (Redis servers).
pub fn parse_endpoint_list(text: &str) -> Result<Vec<Endpoint>, String> {
    let mut endpoints = Vec::new();
    for item in text.split(',').map(str::trim) {
        let (host, port) = match item.rsplit_once(':') {
            Some((host, port)) => (host.trim_start_matches('[').trim_end_matches(']'), port),
            None => return Err(format!("{item:?} is not host:port")),
        };
        if !is_valid_host(host) {
            return Err(format!(
                "{item:?}: {host:?} is not a host name or IP address"
            ));
        }
        let port = match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("{item:?}: {port:?} is not a TCP port")),
        };
        endpoints.push(Endpoint {
            host: host.to_string(),
            port,
        });
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_in_every_stored_form() {
        assert_eq!(parse_port_value(Some(&json!("10001"))), Ok(Some(10001)));
        assert_eq!(parse_port_value(Some(&json!(10001))), Ok(Some(10001)));
        assert_eq!(parse_port_value(Some(&json!(null))), Ok(None));
        assert_eq!(parse_port_value(None), Ok(None));
        assert!(parse_port_value(Some(&json!("http"))).is_err());
        assert!(parse_port_value(Some(&json!(70000))).is_err());
        assert!(parse_port_value(Some(&json!(0))).is_err());
    }

    #[test]
    fn hosts_that_could_break_a_config_are_refused() {
        for good in ["127.0.0.1", "one", "node-1.example.com", "::1"] {
            assert!(is_valid_host(good), "{good}");
        }
        for bad in ["", "evil;}", "a b", "-x", "a..b", "host/path", "x:y"] {
            assert!(!is_valid_host(bad), "{bad}");
        }
    }

    #[test]
    fn endpoint_lists() {
        let list = parse_endpoint_list("127.0.0.1:23001,one:23002").unwrap();
        assert_eq!(
            list[1],
            Endpoint {
                host: "one".into(),
                port: 23002
            }
        );
        assert!(parse_endpoint_list("127.0.0.1").is_err());
        assert!(parse_endpoint_list("127.0.0.1:x").is_err());
        assert!(parse_endpoint_list("").is_err());
    }
}
