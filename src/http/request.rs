//! A parsed request head, and the framing rules that decide where its body ends.
//!
//! Getting framing right is what keeps a connection safe to reuse: if the server and the
//! client disagree about where a body ends, the rest of the body is read as the next
//! request (request smuggling). So anything ambiguous is refused, and the connection is
//! closed after the answer.

use super::response::Response;
use crate::affinity::Home;
use std::ops::Range;

/// How the request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Neither `Content-Length` nor `Transfer-Encoding`: a request without a body.
    Absent,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (and no other coding), without a length.
    Chunked,
}

/// A request head: the bytes as received, kept once, with where its parts lie; and what
/// the server made of its framing.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request line and header fields as received.
    head: Vec<u8>,
    method: Range<usize>,
    target: Range<usize>,
    /// Where each header field's name and value lie in `head`, in the order received.
    fields: Vec<(Range<usize>, Range<usize>)>,
    pub framing: Framing,
    /// The client sent `Expect: 100-continue` and waits for our go-ahead.
    pub expect_continue: bool,
    /// Whether the client wants the connection kept open after this request.
    pub keep_alive: bool,
    /// The worker thread that the client's socket wakes (`affinity`): connections the
    /// handler opens or takes for this request should live there too.
    pub home: Home,
}

impl Request {
    /// The method, as sent (`PUT`, `GET`, ...).
    pub fn method(&self) -> &str {
        self.text(&self.method)
    }

    /// The request target exactly as sent: path and query string.
    pub fn target(&self) -> &str {
        self.text(&self.target)
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.target().split('?').next().unwrap_or("")
    }

    /// The value of the first header field named `name` (any case), as received, without
    /// the white space around it; None when there is none.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let (_, value) = self
            .fields
            .iter()
            .find(|field| self.is_named(field, name))?;
        Some(&self.head[value.clone()])
    }

    /// The values of every header field named `name` (any case), in the order received.
    pub fn header_values<'r>(&'r self, name: &'r str) -> impl Iterator<Item = &'r [u8]> + 'r {
        self.fields
            .iter()
            .filter(move |field| self.is_named(field, name))
            .map(|(_, value)| &self.head[value.clone()])
    }

    fn is_named(&self, (field, _): &(Range<usize>, Range<usize>), name: &str) -> bool {
        self.head[field.clone()].eq_ignore_ascii_case(name.as_bytes())
    }

    /// The same request, served on the worker `home`.
    pub(super) fn at_home(self, home: Home) -> Request {
        Request { home, ..self }
    }

    /// A part of the head that httparse checked is text (method, target).
    fn text(&self, part: &Range<usize>) -> &str {
        std::str::from_utf8(&self.head[part.clone()]).unwrap_or("")
    }

    /// The body length in bytes (0 when there is none, or it is chunked).
    pub fn content_length(&self) -> u64 {
        match self.framing {
            Framing::Length(n) => n,
            Framing::Absent | Framing::Chunked => 0,
        }
    }
}

fn bad_request(message: &str) -> Response {
    Response::error(400, message).closing()
}

fn has_token(value: &[u8], token: &str) -> bool {
    String::from_utf8_lossy(value)
        .split(',')
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

/// Parses a `Content-Length` value: digits only, no sign, no overflow.
fn parse_length(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?.trim_matches([' ', '\t']);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Where `part`, a slice of `head`, lies in it (empty when it is not in it).
fn place(head: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(head.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if end <= head.len() => start..end,
        _ => 0..0,
    }
}

/// Builds a `Request` from httparse's result over `head`, the bytes it parsed (the whole
/// head, kept in the request); an `Err` is the answer to send (and the connection is
/// closed after it).
pub fn from_parsed(parsed: &httparse::Request<'_, '_>, head: &[u8]) -> Result<Request, Response> {
    let method = place(head, parsed.method.unwrap_or("").as_bytes());
    let target = place(head, parsed.path.unwrap_or("").as_bytes());
    let mut fields = Vec::with_capacity(parsed.headers.len());
    let version = parsed.version.unwrap_or(1);
    let mut length: Option<u64> = None;
    // Every transfer coding named, over all Transfer-Encoding headers, in order.
    let mut codings: Vec<String> = Vec::new();
    let mut expect_continue = false;
    let mut close = version == 0;
    for header in parsed.headers.iter() {
        let name = header.name;
        let value = header.value;
        fields.push((place(head, name.as_bytes()), place(head, value)));
        if name.eq_ignore_ascii_case("content-length") {
            let Some(n) = parse_length(value) else {
                return Err(bad_request("invalid Content-Length"));
            };
            if length.is_some_and(|seen| seen != n) {
                return Err(bad_request("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            codings.extend(
                String::from_utf8_lossy(value)
                    .split(',')
                    .map(|coding| coding.trim().to_ascii_lowercase()),
            );
        } else if name.eq_ignore_ascii_case("expect") {
            if has_token(value, "100-continue") {
                expect_continue = true;
            } else {
                return Err(
                    Response::error(417, "only Expect: 100-continue is supported").closing(),
                );
            }
        } else if name.eq_ignore_ascii_case("connection") {
            if has_token(value, "close") {
                close = true;
            } else if has_token(value, "keep-alive") && version == 0 {
                close = false;
            }
        }
    }
    let transfer_encoding = !codings.is_empty();
    let framing = match (transfer_encoding, length) {
        (true, Some(_)) => {
            return Err(bad_request(
                "Content-Length together with Transfer-Encoding",
            ))
        }
        // Chunked alone: any other coding (gzip, chunked; identity; ...) is one we do
        // not decode, and a body we cannot delimit is never read.
        (true, None) if codings == ["chunked"] && version == 1 => Framing::Chunked,
        (true, None) => {
            return Err(Response::error(
                501,
                "only Transfer-Encoding: chunked is supported (on HTTP/1.1)",
            )
            .closing())
        }
        (false, Some(length)) => Framing::Length(length),
        (false, None) => Framing::Absent,
    };
    Ok(Request {
        head: head.to_vec(),
        method,
        target,
        fields,
        framing,
        expect_continue,
        keep_alive: !close,
        home: Home::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(head: &str) -> Result<Request, Response> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Request::new(&mut headers);
        assert!(parsed.parse(head.as_bytes()).unwrap().is_complete());
        from_parsed(&parsed, head.as_bytes())
    }

    #[test]
    fn any_header_can_be_read() {
        let r = parse(
            "PUT /a/b?x=1 HTTP/1.1\r\nHost: n1\r\nAuthorization:  Bearer abc.def \r\nX-Tag: 1\r\nx-tag: 2\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.method(), r.target()), ("PUT", "/a/b?x=1"));
        assert_eq!(r.header("authorization"), Some(&b"Bearer abc.def"[..]));
        assert_eq!(r.header("HOST"), Some(&b"n1"[..]));
        assert_eq!(r.header("X-Tag"), Some(&b"1"[..]));
        assert_eq!(r.header_values("x-tag").collect::<Vec<_>>(), [b"1", b"2"]);
        assert_eq!(r.header("Cookie"), None);
        assert_eq!(r.framing, Framing::Length(3));
    }

    #[test]
    fn lengths() {
        let r = parse("PUT /a HTTP/1.1\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(r.framing, Framing::Length(5));
        assert!(r.keep_alive);
        let r = parse("PUT /a HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n").unwrap();
        assert_eq!(r.framing, Framing::Length(5));
        for bad in ["-1", "abc", "1 2", "99999999999999999999999", "+5", ""] {
            let head = format!("PUT /a HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n");
            let answer = parse(&head).unwrap_err();
            assert_eq!(answer.status, 400, "{bad}");
            assert!(answer.close);
        }
        assert_eq!(
            parse("PUT /a HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            parse("PUT /a HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
        let r = parse("PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(r.framing, Framing::Chunked);
        let r = parse("PUT /a HTTP/1.1\r\nTransfer-Encoding: Chunked \r\n\r\n").unwrap();
        assert_eq!(r.framing, Framing::Chunked);
        for other in [
            "gzip, chunked",
            "chunked, gzip",
            "identity",
            "chunked\r\nTransfer-Encoding: chunked",
        ] {
            let head = format!("PUT /a HTTP/1.1\r\nTransfer-Encoding: {other}\r\n\r\n");
            let answer = parse(&head).unwrap_err();
            assert_eq!(answer.status, 501, "{other}");
            assert!(answer.close);
        }
        assert_eq!(
            parse("PUT /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap_err()
                .status,
            501
        );
        let r = parse("PUT /a HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((r.framing, r.content_length()), (Framing::Absent, 0));
    }

    #[test]
    fn connection_and_expect() {
        assert!(
            !parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(!parse("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert!(
            parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(
            parse("PUT / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")
                .unwrap()
                .expect_continue
        );
        assert_eq!(
            parse("PUT / HTTP/1.1\r\nExpect: magic\r\n\r\n")
                .unwrap_err()
                .status,
            417
        );
        let r = parse("PUT /a/b?x=1 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((r.path(), r.target()), ("/a/b", "/a/b?x=1"));
    }
}
