//! Upload keys files and tokens for the tests of `--upload-keys`.

use backpack::upload_auth::token::{sign, Grant};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// A key id and its secret (raw bytes; the file holds them in base64).
pub struct TestKey {
    pub id: &'static str,
    pub secret: [u8; 32],
}

impl TestKey {
    pub fn new(id: &'static str, fill: u8) -> TestKey {
        let mut secret = [fill; 32];
        secret[0] = id.len() as u8;
        TestKey { id, secret }
    }

    /// Its line in a keys file.
    pub fn line(&self) -> String {
        use base64::Engine;
        format!(
            "{} {}\n",
            self.id,
            base64::engine::general_purpose::STANDARD.encode(self.secret)
        )
    }

    /// A token for `grant` with this key's id, signed with its secret.
    pub fn sign(&self, mut grant: Grant) -> String {
        grant.kid = self.id.to_string();
        sign(&grant, &self.secret)
    }
}

/// Writes a keys file holding `keys`, readable by its owner only, by renaming a new file
/// over the old one (as the docs advise).
pub fn write_keys(path: &Path, keys: &[&TestKey]) {
    let text: String = keys.iter().map(|key| key.line()).collect();
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, text).unwrap();
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A grant for the one key `key`, valid for ten minutes, up to `max` bytes.
pub fn for_key(key: &str, max: u64) -> Grant {
    Grant {
        kid: String::new(),
        exp: unix_now() + 600,
        key: Some(key.to_string()),
        prefix: None,
        max,
        len: None,
    }
}

/// A grant for every key below `prefix`, valid for ten minutes, up to `max` bytes.
pub fn for_prefix(prefix: &str, max: u64) -> Grant {
    Grant {
        key: None,
        prefix: Some(prefix.to_string()),
        ..for_key("", max)
    }
}
