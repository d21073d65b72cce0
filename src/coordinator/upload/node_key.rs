//! What a Backpack node can store and serve, decided before any node is asked.
//!
//! A node keys a file by the raw request target without its leading `/`: not
//! percent-decoded, query string included (`/q.jpg?v=2` is key `q.jpg?v=2`). Some keys
//! and bodies no node can take (see SPEC, "The real Backpack node"). Sending them anyway
//! would fail on every node of every shard, count each refusal against that node's
//! health, and end in a 503; or worse, be acknowledged and never readable. So the
//! coordinator refuses them up front with a 400 that says why.

/// The longest key, in bytes. A node's recovery log stores a key's length in one byte:
/// a longer key desynchronizes the log from that entry on.
pub const MAX_KEY_BYTES: usize = 255;

/// Keys a node uses for itself: `files` and `files_counter` are its Redis bookkeeping
/// (a PUT answers 500), and `GET /stats` is its statistics, so a file stored as `stats`
/// could never be read back.
const RESERVED_KEYS: [&str; 3] = ["files", "files_counter", "stats"];

/// Checks a request target as a node key. Besides the node's own limits it refuses what
/// would make the path mean something else on the way (`.` and `..` segments, an encoded
/// `/`) and what names a directory.
pub fn check_target(target: &str) -> Result<(), String> {
    let Some(key) = target.strip_prefix('/') else {
        return Err("the path must start with /".into());
    };
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "the path is longer than {MAX_KEY_BYTES} bytes after its leading / \
             (a Backpack node's recovery log cannot hold a longer key)"
        ));
    }
    if let Some(byte) = key.bytes().find(|b| !(0x21..=0x7e).contains(b)) {
        return Err(format!(
            "the path holds the byte 0x{byte:02x}, outside printable ASCII: \
             percent-encode it (a Backpack node's recovery log cannot hold it)"
        ));
    }
    if RESERVED_KEYS.contains(&key) {
        return Err(format!(
            "/{key} is reserved by Backpack nodes and cannot be stored; choose another name"
        ));
    }
    let lowercase = key.to_ascii_lowercase();
    if lowercase.contains("%00") {
        return Err("the path holds an encoded NUL (%00), which no node can store".into());
    }
    let path = lowercase.split('?').next().unwrap_or("");
    let dot_segment = path.split('/').any(|segment| {
        let decoded = segment.replace("%2e", ".");
        decoded == ".." || decoded == "."
    });
    if dot_segment || path.contains("%2f") {
        return Err("the path holds a . or .. segment or an encoded /".into());
    }
    // A directory cannot be stored: every node would refuse it.
    if path.is_empty() || path.ends_with('/') {
        return Err("the path must name a file; it ends with /".into());
    }
    if ureq::http::Uri::try_from(format!("http://127.0.0.1{target}")).is_err() {
        return Err("the path holds characters that are not allowed in a URL".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_target;

    #[test]
    fn targets() {
        for good in [
            "/hi.txt",
            "/a/b/c.jpg?x=1&y=2",
            "/a%20b.txt",
            "/we:ird.txt",
            "/..a",
            "/a..b/c",
            "/stats.jpg",
            "/files/x",
            "/stats?x=1",
            "/a%0Ab",
        ] {
            assert!(check_target(good).is_ok(), "{good}");
        }
        for bad in [
            "hi.txt",
            "/../x",
            "/a/%2e%2E/x",
            "/a/.%2e/x",
            "/a/./b",
            "/a%2fb",
            "/a\u{1}b",
            "/a b",
            "/caf\u{e9}.jpg",
            "/a\u{7f}",
            "/",
            "/dir/",
            "/dir/?x=1",
            "/?x=1",
            "/files",
            "/files_counter",
            "/stats",
            "/a%00b.jpg",
            "/a%00",
        ] {
            assert!(check_target(bad).is_err(), "{bad}");
        }
        assert!(check_target(&format!("/{}", "a".repeat(255))).is_ok());
        assert!(check_target(&format!("/{}", "a".repeat(256))).is_err());
    }

    #[test]
    fn errors_say_why() {
        assert!(check_target("/caf\u{e9}.jpg")
            .unwrap_err()
            .contains("percent-encode"));
        assert!(check_target("/stats").unwrap_err().contains("reserved"));
        assert!(check_target("/a%00b").unwrap_err().contains("NUL"));
        assert!(check_target(&format!("/{}", "a".repeat(300)))
            .unwrap_err()
            .contains("255 bytes"));
    }
}
