//! The load generator's HTTP client: keep-alive `PUT`s over one connection, and nothing
//! else.
//!
//! A load generator must cost much less per request than what it measures, or it becomes
//! the ceiling. Measured at 1 KiB and c=64 against sink nodes, 64 OS threads driving ureq
//! took about 0.18 ms of CPU per request, twice the coordinator's own cost, and the two
//! cores ran out before the coordinator did. This client runs as tasks on one tokio
//! thread (one `epoll` loop, no thread switches) and does only what a benchmark needs:
//! format a request head, write head and body, parse the answer's head with `httparse`,
//! and read a `Content-Length` body. Anything else a server might send (chunked answers,
//! `1xx`) is reported as an error kind rather than handled.

use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bodies up to this size go out in the same write as the head.
const COALESCE_BYTES: usize = 16 * 1024;
/// The most of an answer's body kept (enough for `{"shard_id": ...}` or an error).
const KEEP_BODY_BYTES: usize = 64 * 1024;

/// Where requests go: `host:port` taken from a base URL such as `http://127.0.0.1:12001`.
#[derive(Debug, Clone)]
pub struct Target {
    pub authority: String,
    /// The URL's path, without a trailing `/`, put before each request's path.
    pub base_path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        if authority.is_empty() || !authority.contains(':') {
            return Err(format!("{url}: expected http://host:port"));
        }
        Ok(Target {
            authority: authority.to_string(),
            base_path: path.trim_end_matches('/').to_string(),
        })
    }
}

/// What one request came to.
pub enum Outcome {
    /// The server answered: its status and (the start of) its body.
    Answered { status: u16, body: Vec<u8> },
    /// No answer; a short kind for the report ("timeout", "io: ConnectionRefused", ...).
    Failed(String),
}

/// One keep-alive connection to a target.
pub struct Client {
    target: Target,
    timeout: Duration,
    stream: Option<TcpStream>,
    /// Header lines sent with every request, each ending in CRLF.
    headers: Vec<u8>,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl Client {
    pub fn new(target: Target, timeout: Duration) -> Client {
        Client {
            target,
            timeout,
            stream: None,
            headers: Vec::new(),
            out: Vec::with_capacity(COALESCE_BYTES + 512),
            buf: vec![0; 16 * 1024],
        }
    }

    /// Sends `lines` (header lines, each ending in CRLF) with every request.
    pub fn with_headers(mut self, lines: &str) -> Client {
        self.headers = lines.as_bytes().to_vec();
        self
    }

    /// `PUT <base_path><path>` with `body`. A kept-alive connection that the server
    /// closed in the meantime is replaced once, as any HTTP client does.
    pub async fn put(&mut self, path: &str, body: &[u8]) -> Outcome {
        let reused = self.stream.is_some();
        let first = tokio::time::timeout(self.timeout, self.exchange(path, body)).await;
        let result = match first {
            Err(_) => Err(Failure::Timeout),
            Ok(Err(Failure::ClosedBeforeAnswer)) if reused => {
                self.stream = None;
                tokio::time::timeout(self.timeout, self.exchange(path, body))
                    .await
                    .unwrap_or(Err(Failure::Timeout))
            }
            Ok(result) => result,
        };
        match result {
            Ok(outcome) => outcome,
            Err(failure) => {
                self.stream = None;
                Outcome::Failed(failure.kind())
            }
        }
    }

    async fn exchange(&mut self, path: &str, body: &[u8]) -> Result<Outcome, Failure> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.target.authority).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(Failure::ClosedBeforeAnswer);
        };
        self.out.clear();
        self.out.extend_from_slice(b"PUT ");
        self.out.extend_from_slice(self.target.base_path.as_bytes());
        self.out.extend_from_slice(path.as_bytes());
        self.out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.out.extend_from_slice(self.target.authority.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(&self.headers);
        self.out.extend_from_slice(b"Content-Length: ");
        self.out
            .extend_from_slice(body.len().to_string().as_bytes());
        self.out.extend_from_slice(b"\r\n\r\n");
        if body.len() <= COALESCE_BYTES {
            self.out.extend_from_slice(body);
            stream.write_all(&self.out).await?;
        } else {
            stream.write_all(&self.out).await?;
            stream.write_all(body).await?;
        }
        let head = read_head(stream, &mut self.buf).await?;
        // The body: what came with the head, then the rest.
        let mut answer = Vec::new();
        let mut keep = |bytes: &[u8]| {
            let room = KEEP_BODY_BYTES.saturating_sub(answer.len());
            answer.extend_from_slice(&bytes[..bytes.len().min(room)]);
        };
        let arrived = &self.buf[head.head_length..head.filled];
        match head.length {
            Length::Known(length) => {
                let mut remaining = length.saturating_sub(arrived.len());
                keep(&arrived[..arrived.len().min(length)]);
                while remaining > 0 {
                    let n = stream.read(&mut self.buf).await?;
                    if n == 0 {
                        return Err(Failure::Io(io::ErrorKind::UnexpectedEof));
                    }
                    keep(&self.buf[..n.min(remaining)]);
                    remaining -= n.min(remaining);
                }
                if head.close {
                    self.stream = None;
                }
            }
            Length::ToClose => {
                keep(arrived);
                loop {
                    let n = stream.read(&mut self.buf).await?;
                    if n == 0 {
                        break;
                    }
                    keep(&self.buf[..n]);
                }
                self.stream = None;
            }
        }
        let status = head.status;
        Ok(Outcome::Answered {
            status,
            body: answer,
        })
    }
}

/// How an answer's body ends.
enum Length {
    Known(usize),
    /// At the end of the connection.
    ToClose,
}

/// An answer's head, read into the start of the buffer.
struct Head {
    status: u16,
    length: Length,
    /// The server closes the connection after this answer.
    close: bool,
    /// Bytes in the buffer: the head and whatever of the body came with it.
    filled: usize,
    head_length: usize,
}

/// Reads until a whole answer head is in `buf`.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Head, Failure> {
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if buf.len() >= 256 * 1024 {
                return Err(Failure::Answer("answer head too large"));
            }
            buf.resize(buf.len() * 2, 0);
        }
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(if filled == 0 {
                Failure::ClosedBeforeAnswer
            } else {
                Failure::Io(io::ErrorKind::UnexpectedEof)
            });
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(&buf[..filled]) {
            Ok(httparse::Status::Partial) => continue,
            Err(_) => return Err(Failure::Answer("malformed answer")),
            Ok(httparse::Status::Complete(head_length)) => {
                let status = parsed.code.unwrap_or(0);
                if status < 200 {
                    return Err(Failure::Answer("1xx answer"));
                }
                let mut length = None;
                let mut close = parsed.version == Some(0);
                for header in parsed.headers.iter() {
                    if header.name.eq_ignore_ascii_case("content-length") {
                        length = std::str::from_utf8(header.value)
                            .ok()
                            .and_then(|v| v.trim().parse::<usize>().ok());
                    } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err(Failure::Answer("chunked answer"));
                    } else if header.name.eq_ignore_ascii_case("connection") {
                        close = header.value.eq_ignore_ascii_case(b"close");
                    }
                }
                // 204 and 304 never have a body; otherwise no length means the body
                // runs to the end of the connection.
                let length = match length {
                    _ if status == 204 || status == 304 => Length::Known(0),
                    Some(length) => Length::Known(length),
                    None => Length::ToClose,
                };
                return Ok(Head {
                    status,
                    length,
                    close,
                    filled,
                    head_length,
                });
            }
        }
    }
}

enum Failure {
    Timeout,
    /// The connection ended before any byte of the answer (a kept-alive connection the
    /// server had closed, or a refused request).
    ClosedBeforeAnswer,
    Io(io::ErrorKind),
    Answer(&'static str),
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Failure {
        if err.kind() == io::ErrorKind::TimedOut {
            Failure::Timeout
        } else {
            Failure::Io(err.kind())
        }
    }
}

impl Failure {
    fn kind(&self) -> String {
        match self {
            Failure::Timeout => "timeout".to_string(),
            Failure::ClosedBeforeAnswer => "io: closed before an answer".to_string(),
            Failure::Io(kind) => format!("io: {kind:?}"),
            Failure::Answer(what) => what.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:12001").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.base_path.as_str()),
            ("127.0.0.1:12001", "")
        );
        let t = Target::parse("http://localhost:8080/base/").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.base_path.as_str()),
            ("localhost:8080", "/base")
        );
        assert!(Target::parse("https://x:1").is_err());
        assert!(Target::parse("http://nohostport/").is_err());
    }
}
