//! The coordinators a benchmark matrix compares, and upload tokens for one of them: a
//! keys file for a coordinator started with `--upload-keys`, and the header that carries
//! a token for a turn's uploads.

use super::turns::{Contender, Side};
use crate::{CoordinatorProcess, LocalCluster};
use backpack::upload_auth::token::{sign, Grant};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Signs the tokens a benchmark's client sends.
pub struct Signer {
    secret: Vec<u8>,
}

const KEY_ID: &str = "bench";

impl Signer {
    /// Writes a keys file of one key into `dir` (readable by its owner only) and returns
    /// the coordinator flags that require tokens signed by it, and the signer.
    pub fn in_dir(dir: &Path) -> Result<(Vec<String>, Signer), String> {
        let secret: Vec<u8> = (0..32u8).map(|n| n.wrapping_mul(37) ^ 0x5c).collect();
        let path = dir.join("upload-keys");
        let line = {
            use base64::Engine;
            format!(
                "{KEY_ID} {}\n",
                base64::engine::general_purpose::STANDARD.encode(&secret)
            )
        };
        std::fs::write(&path, line)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)))
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        let flags = vec!["--upload-keys".to_string(), path.display().to_string()];
        Ok((flags, Signer { secret }))
    }

    /// The header line of a token for every key below `/<prefix>/`, valid for an hour.
    pub fn header_for(&self, prefix: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let grant = Grant {
            kid: KEY_ID.to_string(),
            exp: now + 3600,
            key: None,
            prefix: Some(format!("/{prefix}/")),
            max: 1 << 40,
            len: None,
        };
        format!("Authorization: Bearer {}\r\n", sign(&grant, &self.secret))
    }
}

/// The coordinators a matrix compares: the first with `flags`, and the second with
/// `versus` (when given), of the build `$BACKPACK_VERSUS_BIN` when set (an A/B of
/// builds); the one `tokens` names requires upload tokens.
pub fn start_contenders(
    cluster: &LocalCluster,
    bin: &Path,
    (flags, versus): (&[String], Option<&[String]>),
    tokens: Option<Side>,
) -> Result<(Contender, Option<Contender>, Vec<CoordinatorProcess>), String> {
    let tokens_on = |side| tokens == Some(side);
    let (first, process) =
        start_contender(cluster, bin, "coordinator", flags, tokens_on(Side::First))?;
    let mut processes = vec![process];
    let Some(flags) = versus else {
        return Ok((first, None, processes));
    };
    let versus_bin = std::env::var_os("BACKPACK_VERSUS_BIN").map(std::path::PathBuf::from);
    let bin = versus_bin.as_deref().unwrap_or(bin);
    let (second, process) = start_contender(
        cluster,
        bin,
        "coordinator-b",
        flags,
        tokens_on(Side::Second),
    )?;
    processes.push(process);
    Ok((first, Some(second), processes))
}

/// A coordinator of the build `bin` named `name`, with `flags`; when `tokens`, it
/// requires upload tokens, which its turns then send.
fn start_contender(
    cluster: &LocalCluster,
    bin: &Path,
    name: &str,
    flags: &[String],
    tokens: bool,
) -> Result<(Contender, CoordinatorProcess), String> {
    let (more, signer) = match tokens {
        true => {
            let dir = cluster
                .sandbox
                .subdir(&format!("{name}-keys"))
                .map_err(|e| e.to_string())?;
            Signer::in_dir(&dir).map(|(more, s)| (more, Some(s)))?
        }
        false => (Vec::new(), None),
    };
    let flags = [flags, &more].concat();
    let (mut contender, process) = Contender::start(cluster, bin, name, &flags)?;
    if let Some(signer) = signer {
        contender.headers_for = Some(Box::new(move |prefix| signer.header_for(prefix)));
    }
    Ok((contender, process))
}
