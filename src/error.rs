//! The one error type of the library. Every variant renders as a single line that tells an
//! operator what went wrong and, where it helps, what to do about it.

use std::fmt;
use std::time::Duration;

#[derive(Debug)]
pub enum Error {
    /// No ZooKeeper server of the connect string answered in time.
    ZkUnreachable { servers: String, waited: Duration },
    /// The connect string itself is unusable (bad host name, no port...).
    ZkAddress { servers: String },
    /// A ZooKeeper operation failed.
    Zk {
        action: &'static str,
        path: String,
        reason: String,
    },
    /// A node the tools need is missing: the cluster was never initialized.
    NotInitialized { path: String },
    /// A node holds something that is not the JSON the tools wrote.
    BadState { path: String, reason: String },
    /// An argument or a request that cannot be carried out; the text is the whole message.
    Invalid(String),
    /// No Redis server of the queue answered.
    Redis(String),
    /// An argument that does not parse (a size, an id, a URL, a server list, a root), or
    /// input a command cannot start with: exit code 2.
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit code for a command that failed (ZooKeeper, Redis, bad state, refused request).
pub const EXIT_FAILED: u8 = 1;
/// Exit code for arguments that do not parse, or input a command cannot start with.
pub const EXIT_USAGE: u8 = 2;

impl Error {
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::Invalid(message.into())
    }

    /// An argument that does not parse or cannot be right whatever the cluster holds.
    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage(message.into())
    }

    /// The process's exit code for this error (see `command`).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::ZkAddress { .. } => EXIT_USAGE,
            _ => EXIT_FAILED,
        }
    }

    pub fn bad_state(path: &str, reason: impl fmt::Display) -> Error {
        Error::BadState {
            path: path.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ZkUnreachable { servers, waited } => write!(
                f,
                "cannot reach ZooKeeper at {servers} within {}s: no server gave a session (down, cut off, or without a quorum)",
                waited.as_secs_f64()
            ),
            Error::ZkAddress { servers } => write!(
                f,
                "invalid ZooKeeper connect string {servers:?}: expected host:port[,host:port...]"
            ),
            Error::Zk {
                action,
                path,
                reason,
            } => {
                write!(f, "ZooKeeper {action} {path} failed: {reason}")
            }
            Error::NotInitialized { path } => write!(
                f,
                "{path} does not exist: is the cluster initialized? (run backpack-coordinator-init)"
            ),
            Error::BadState { path, reason } => write!(f, "{path} holds invalid data: {reason}"),
            Error::Invalid(message) => f.write_str(message),
            Error::Redis(message) => f.write_str(message),
            Error::Usage(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::size::SizeError> for Error {
    fn from(err: crate::size::SizeError) -> Error {
        Error::Usage(err.to_string())
    }
}
