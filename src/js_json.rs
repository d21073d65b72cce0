//! JSON text exactly as the old Node.js tools wrote it.
//!
//! The cluster state in ZooKeeper was written with `JSON.stringify`, and a mixed cluster
//! compares and rewrites those bytes, so we reproduce its rules:
//! - compact, no spaces (or 4-space indentation for the human dumps);
//! - object keys in JavaScript property order: keys that are array indices ("0", "2",
//!   "10"; no sign, no leading zero, below 2^32 - 1) first, ascending by value, then every
//!   other key in the order it was inserted.
//!
//! `serde_json` is built with `preserve_order`, so a `Map` remembers insertion order and
//! we only have to move the index-like keys to the front.

use serde_json::{Map, Value};

/// Appends `text` as a JSON string, quoted and escaped as serde_json (and, for every
/// string Rust can hold, `JSON.stringify`) writes it: for answers and queue items written
/// directly, without building a `Value` first.
pub fn push_string(out: &mut Vec<u8>, text: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(out, text);
}

/// True when JavaScript treats `key` as an array index, which it lists before other keys.
pub fn is_index_key(key: &str) -> bool {
    let canonical = key == "0" || (!key.starts_with('0') && !key.is_empty());
    canonical
        && key.len() <= 10
        && key.bytes().all(|b| b.is_ascii_digit())
        && key.parse::<u64>().is_ok_and(|n| n < u32::MAX as u64)
}

/// An order for listing ids to people: index-like ids by number ("2" before "10"), as the
/// old tools listed them, then the others alphabetically.
pub fn compare_ids(a: &str, b: &str) -> std::cmp::Ordering {
    let rank = |key: &str| match is_index_key(key) {
        true => (0, key.parse::<u64>().unwrap_or(0)),
        false => (1, 0),
    };
    rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
}

/// Orders `map`'s keys the way a JavaScript object would list them.
pub fn sort_like_js(map: &mut Map<String, Value>) {
    let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
    // A stable sort: index keys by number, the others keep their relative order.
    entries.sort_by_key(|(key, _)| match is_index_key(key) {
        true => (0, key.parse::<u64>().unwrap_or(0)),
        false => (1, 0),
    });
    map.extend(entries);
}

fn reorder(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut copy: Map<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), reorder(v))).collect();
            sort_like_js(&mut copy);
            Value::Object(copy)
        }
        Value::Array(items) => Value::Array(items.iter().map(reorder).collect()),
        other => other.clone(),
    }
}

/// `JSON.stringify(value)`.
pub fn to_compact(value: &Value) -> String {
    reorder(value).to_string()
}

/// `JSON.stringify(value, null, 4)`.
pub fn to_pretty(value: &Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    match reorder(value).serialize(&mut serializer) {
        // Serializing a `Value` into a Vec cannot fail, and serde_json writes UTF-8.
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => to_compact(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn index_keys_come_first_in_numeric_order() {
        let value: Value =
            serde_json::from_str(r#"{"b":1,"10":2,"a":3,"2":4,"02":5,"1":6}"#).unwrap();
        assert_eq!(
            to_compact(&value),
            r#"{"1":6,"2":4,"10":2,"b":1,"a":3,"02":5}"#
        );
    }

    #[test]
    fn index_key_rules_match_javascript() {
        assert!(is_index_key("0"));
        assert!(is_index_key("4294967294"));
        assert!(!is_index_key("4294967295"));
        assert!(!is_index_key("01"));
        assert!(!is_index_key("-1"));
        assert!(!is_index_key("1.5"));
        assert!(!is_index_key(""));
    }

    #[test]
    fn pretty_uses_four_spaces() {
        let value = json!({"1": {"enabled": true}});
        assert_eq!(
            to_pretty(&value),
            "{\n    \"1\": {\n        \"enabled\": true\n    }\n}"
        );
        assert_eq!(to_pretty(&json!({})), "{}");
    }
}
