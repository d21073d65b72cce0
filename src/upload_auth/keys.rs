//! The upload keys file: which secrets sign upload tokens.
//!
//! One key per line, `<key-id> <secret>`, the secret in base64 (padding optional); blank
//! lines and lines starting with `#` are skipped. Several keys are in force at once, so a
//! new one can be added, handed to the application servers, and the old one dropped
//! later, without an upload failing in between.
//!
//! The file holds secrets: it is refused when any user of the machine may read it.

use super::mac::{keyed, HmacSha256};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Standard base64, with or without its `=` padding.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The shortest secret taken, in bytes: shorter ones can be guessed.
pub const MIN_SECRET_BYTES: usize = 16;

/// The longest key id: it travels in every token.
const MAX_KEY_ID_BYTES: usize = 64;

/// The keys in force: key id to secret, and to HMAC-SHA256 already keyed with it (which
/// spares each check the two hash blocks of keying).
#[derive(Clone, Default)]
pub struct UploadKeys {
    secrets: BTreeMap<String, (Vec<u8>, HmacSha256)>,
    /// Which reading of a keys file these are: tokens remembered as verified under
    /// other keys are checked again (`verified`).
    generation: u64,
}

/// The generation of the next keys read; 0 is the empty `Default`.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

// Never print a secret, not even in a debug line.
impl std::fmt::Debug for UploadKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ids()).finish()
    }
}

impl UploadKeys {
    /// Reads `path`: refused when others may read it, or when it does not parse.
    pub fn load(path: &Path) -> Result<UploadKeys, String> {
        let shown = path.display();
        let metadata =
            std::fs::metadata(path).map_err(|err| format!("cannot read {shown}: {err}"))?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o007 != 0 {
            return Err(format!(
                "{shown} holds secrets but every user may access it (mode {mode:04o}): \
                 chmod o-rwx {shown}"
            ));
        }
        let text =
            std::fs::read_to_string(path).map_err(|err| format!("cannot read {shown}: {err}"))?;
        UploadKeys::parse(&text).map_err(|why| format!("{shown}: {why}"))
    }

    /// Parses the text of a keys file. A file without a key is refused too: it would
    /// refuse every upload, which is far more often a file caught half written than an
    /// intent.
    pub fn parse(text: &str) -> Result<UploadKeys, String> {
        let mut secrets = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let number = index + 1;
            let mut words = line.split_whitespace();
            let (Some(id), Some(secret), None) = (words.next(), words.next(), words.next()) else {
                return Err(format!(
                    "line {number}: expected `<key-id> <secret in base64>`"
                ));
            };
            check_key_id(id).map_err(|why| format!("line {number}: {why}"))?;
            let secret = SECRET_BASE64
                .decode(secret)
                .map_err(|_| format!("line {number}: the secret of {id} is not base64"))?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(format!(
                    "line {number}: the secret of {id} is {} bytes; at least \
                     {MIN_SECRET_BYTES} are needed (e.g. head -c 32 /dev/urandom | base64)",
                    secret.len()
                ));
            }
            let keyed = keyed(&secret);
            if secrets.insert(id.to_string(), (secret, keyed)).is_some() {
                return Err(format!("line {number}: the key id {id} is listed twice"));
            }
        }
        if secrets.is_empty() {
            return Err("no key in the file".into());
        }
        let generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
        Ok(UploadKeys {
            secrets,
            generation,
        })
    }

    /// Which reading of a keys file these keys are (two readings are never equal).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The secret of key `id`, when it is in force.
    pub fn secret(&self, id: &str) -> Option<&[u8]> {
        self.secrets.get(id).map(|(secret, _)| secret.as_slice())
    }

    /// HMAC-SHA256 keyed with the secret of key `id`, when it is in force.
    pub fn keyed_mac(&self, id: &str) -> Option<&HmacSha256> {
        self.secrets.get(id).map(|(_, keyed)| keyed)
    }

    /// The key ids in force, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.secrets.keys().map(String::as_str)
    }

    /// The key ids, comma-separated, for a message.
    pub fn id_list(&self) -> String {
        self.ids().collect::<Vec<_>>().join(", ")
    }
}

/// A key id is a short word that needs no quoting anywhere: letters, digits, `.`, `_`, `-`.
fn check_key_id(id: &str) -> Result<(), String> {
    let fits = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if id.len() > MAX_KEY_ID_BYTES || !id.bytes().all(fits) {
        return Err(format!(
            "the key id {id:?} must be at most {MAX_KEY_ID_BYTES} letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::UploadKeys;

    #[test]
    fn keys_files() {
        let keys = UploadKeys::parse(
            "# rotated 2026-12\n\nk1 c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n  k2   c2VjcmV0LXNlY3JldC1zZWNyZXQy \n",
        )
        .expect("parses");
        assert_eq!(keys.ids().collect::<Vec<_>>(), ["k1", "k2"]);
        assert_eq!(keys.secret("k1"), Some(&b"secret-secret-secret"[..]));
        assert_eq!(keys.secret("k3"), None);
        for (bad, says) in [
            ("", "no key"),
            ("# only\n", "no key"),
            ("k1\n", "line 1"),
            ("k1 a b\n", "line 1"),
            ("k1 !!!!\n", "not base64"),
            ("k1 c2hvcnQ=\n", "at least 16"),
            ("k/1 c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n", "key id"),
            (
                "k1 c2VjcmV0LXNlY3JldC1zZWNyZXQ=\nk1 c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n",
                "line 2: the key id k1 is listed twice",
            ),
        ] {
            let err = UploadKeys::parse(bad).expect_err(bad);
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        assert!(!format!("{keys:?}").contains("c2Vj"));
    }
}
