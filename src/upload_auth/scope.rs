//! Whether a grant covers a key: one exact key, or every key below a prefix.
//!
//! A prefix is a folder: `/users/42` (or `/users/42/`) covers `/users/42/a.jpg`, never
//! `/users/420/a.jpg`. Keys are compared as stored, the raw path as sent, so under a
//! prefix a key that something downstream could normalise to another place is refused:
//! a `.` or `..` segment, an empty segment, or a percent-encoded `/`, `.` or NUL.

/// Why a key is outside a grant, as the answer says it.
pub fn outside(key: &str, exact: Option<&str>, prefix: Option<&str>) -> Option<String> {
    match (exact, prefix) {
        (Some(exact), None) => (key != exact).then(|| format!("the token is for {exact}")),
        (None, Some(prefix)) => outside_prefix(key, prefix),
        _ => Some("the token names neither one key nor one prefix".into()),
    }
}

fn outside_prefix(key: &str, prefix: &str) -> Option<String> {
    if !prefix.starts_with('/') {
        return Some("the token's prefix does not start with /".into());
    }
    // The folder is the prefix with one `/` at its end (this runs on every upload, so
    // it is compared in place, not built).
    let folder = prefix.strip_suffix('/').unwrap_or(prefix);
    let below = key
        .strip_prefix(folder)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| !name.is_empty());
    if !below {
        return Some(format!("the token is for keys below {folder}/"));
    }
    let encoded = |w: &[u8]| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_lowercase()),
                (b'2', b'f' | b'e') | (b'0', b'0')
            )
    };
    if key.as_bytes().windows(3).any(encoded) {
        return Some(
            "under a prefix token a key may not hold an encoded /, . or NUL (%2F, %2E, %00)".into(),
        );
    }
    let path = key.split('?').next().unwrap_or("");
    // The path starts with `/`: its first segment is the empty one before it.
    if path[1..]
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Some("under a prefix token a key may not hold an empty, . or .. segment".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::outside;

    #[test]
    fn exact_keys() {
        assert_eq!(outside("/a.jpg", Some("/a.jpg"), None), None);
        assert!(outside("/a.jpg?v=2", Some("/a.jpg"), None).is_some());
        assert!(outside("/b.jpg", Some("/a.jpg"), None).is_some());
        assert!(outside("/a.jpg", Some("/a.jpg"), Some("/")).is_some());
        assert!(outside("/a.jpg", None, None).is_some());
    }

    #[test]
    fn prefixes() {
        for (key, prefix) in [
            ("/p/a.jpg", "/p"),
            ("/p/a.jpg", "/p/"),
            ("/p/q/a.jpg?v=2", "/p"),
            ("/a.jpg", "/"),
            ("/p/..a", "/p"),
        ] {
            assert_eq!(
                outside(key, None, Some(prefix)),
                None,
                "{key} under {prefix}"
            );
        }
        for (key, prefix) in [
            ("/pp/a.jpg", "/p"),
            ("/p", "/p"),
            ("/p/", "/p"),
            ("/q/a.jpg", "/p"),
            ("/p/../q/a.jpg", "/p"),
            ("/p/./a.jpg", "/p"),
            ("/p//a.jpg", "/p"),
            ("/p/%2e%2e/q/a.jpg", "/p"),
            ("/p/%2E%2E/q/a.jpg", "/p"),
            ("/p/..%2Fq%2Fa.jpg", "/p"),
            ("/p/a.jpg%00.txt", "/p"),
            ("/p/a/", "/p"),
            ("/p/a.jpg", "p"),
        ] {
            assert!(
                outside(key, None, Some(prefix)).is_some(),
                "{key} under {prefix}"
            );
        }
    }
}
