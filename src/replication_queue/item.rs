//! Queue items: how one is written (its exact bytes matter: identical items deduplicate in
//! the set and share one lock node, also with the old Node.js tools), read, and locked.

use crate::js_json;

/// `{"from":["1"],"to":"4","path":"/hi.txt"}`: keys in this order, no spaces.
///
/// Written directly, with serde_json's string escaping: the same bytes as building a
/// JSON object and printing it, without building the object (this runs for every copy
/// of every upload).
pub fn item(from: &[String], to: &str, path: &str) -> String {
    let mut item = Vec::with_capacity(32 + path.len() + 8 * from.len());
    item.extend_from_slice(b"{\"from\":[");
    for (i, node) in from.iter().enumerate() {
        if i > 0 {
            item.push(b',');
        }
        js_json::push_string(&mut item, node);
    }
    item.extend_from_slice(b"],\"to\":");
    js_json::push_string(&mut item, to);
    item.extend_from_slice(b",\"path\":");
    js_json::push_string(&mut item, path);
    item.push(b'}');
    // Only text went in.
    String::from_utf8(item).unwrap_or_default()
}

/// The lock node of an item: the root, `/`, the queue key, and the lowercase hex MD5 of
/// the item's exact bytes (`/backpack/backpack-queue0f3c...`).
pub fn lock_path(root: &str, key: &str, item: &str) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(item.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}/{key}{hex}", root.trim_end_matches('/'))
}

/// A queue item, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub from: Vec<String>,
    pub to: String,
    pub path: String,
}

impl Item {
    pub fn parse(text: &str) -> Result<Item, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|err| format!("not JSON: {err}"))?;
        let id = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let from: Vec<String> = value["from"]
            .as_array()
            .ok_or("no \"from\" list")?
            .iter()
            .map(|v| id(v).ok_or("a \"from\" id is not a string"))
            .collect::<Result<_, _>>()?;
        let to = id(&value["to"]).ok_or("no \"to\" id")?;
        let path = value["path"].as_str().ok_or("no \"path\"")?.to_string();
        if from.is_empty() || !path.starts_with('/') {
            return Err("empty \"from\" or a path without a leading /".into());
        }
        Ok(Item { from, to, path })
    }
}

#[cfg(test)]
mod tests {
    use super::item;

    /// Items are compared byte for byte (the set deduplicates them, and the old tools
    /// write them too): the direct writing must match serde_json's printing of the
    /// object, escapes included.
    #[test]
    fn items_are_written_as_serde_json_prints_them() {
        let from = ["1".to_string(), "n\"2".to_string()];
        for path in ["/hi.txt", "/a b/\"q\"\\/\u{1}\n\t/é/😀", ""] {
            for from in [&from[..1], &from[..]] {
                let expected =
                    serde_json::json!({ "from": from, "to": "4", "path": path }).to_string();
                assert_eq!(item(from, "4", path), expected);
            }
        }
        assert_eq!(
            item(&["1".into()], "4", "/hi.txt"),
            r#"{"from":["1"],"to":"4","path":"/hi.txt"}"#
        );
    }
}
