//! `backpack-coordinator-sign-upload`: prints an upload token, for application servers
//! that would rather run a command than sign in their own language (docs/upload-tokens.md
//! gives the algorithm for those).

use super::keys::UploadKeys;
use super::token::{sign, Grant};
use crate::command::Command;
use crate::duration_arg::{parse_duration, secs};
use crate::error::{Error, Result};
use crate::size::parse_size;
use argh::FromArgs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn size_arg(text: &str) -> std::result::Result<u64, String> {
    parse_size(text).map_err(|err| err.to_string())
}

#[derive(FromArgs)]
/// Print an upload token: it lets its holder upload one key (--key) or any key below a
/// prefix (--prefix) to a coordinator started with --upload-keys, until it expires.
pub struct SignUpload {
    /// the upload keys file, lines of `<key-id> <secret in base64>` (the coordinator's
    /// --upload-keys file)
    #[argh(option)]
    keys: PathBuf,
    /// the id of the key to sign with
    #[argh(option)]
    key_id: String,
    /// the one key the token is for: the path as the client sends it, from its leading /
    #[argh(option)]
    key: Option<String>,
    /// or the prefix the token is for: every key below that folder, e.g. /users/42/
    #[argh(option)]
    prefix: Option<String>,
    /// the largest body the token allows (default 10mb)
    #[argh(option, default = "10 << 20", from_str_fn(size_arg))]
    max_bytes: u64,
    /// the exact length of the body, when it is known (the upload must then send
    /// Content-Length)
    #[argh(option)]
    length: Option<u64>,
    /// how long the token is valid (default 10m)
    #[argh(option, default = "secs(600)", from_str_fn(parse_duration))]
    ttl: Duration,
    /// the expiry as Unix seconds, instead of --ttl
    #[argh(option)]
    expires_at: Option<u64>,
}

impl Command for SignUpload {
    fn run(self) -> Result<()> {
        let (key, prefix) = match (self.key, self.prefix) {
            (Some(key), None) if key.starts_with('/') => (Some(key), None),
            (None, Some(prefix)) if prefix.starts_with('/') => (None, Some(prefix)),
            (Some(_), Some(_)) | (None, None) => {
                return Err(Error::usage("give exactly one of --key and --prefix"))
            }
            _ => return Err(Error::usage("--key and --prefix start with /")),
        };
        let keys = UploadKeys::load(&self.keys).map_err(Error::Invalid)?;
        let Some(secret) = keys.secret(&self.key_id) else {
            return Err(Error::invalid(format!(
                "no key {:?} in {} (it has: {})",
                self.key_id,
                self.keys.display(),
                keys.id_list()
            )));
        };
        let exp = match self.expires_at {
            Some(at) => at,
            None => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_err(|_| Error::invalid("the clock is before 1970"))?;
                (now + self.ttl).as_secs()
            }
        };
        let grant = Grant {
            kid: self.key_id.clone(),
            exp,
            key,
            prefix,
            max: self.max_bytes,
            len: self.length,
        };
        println!("{}", sign(&grant, secret));
        Ok(())
    }
}
