//! Who may upload: signed upload tokens (`--upload-keys`).
//!
//! An application server that holds a secret signs a token for one key or a prefix, with
//! an expiry and a size limit (`token`); its client sends it with the upload, in
//! `Authorization: Bearer <token>` or a `token` query parameter. The coordinator checks it
//! from the request head alone, before any of the body is read, against the keys in
//! force (`keys`, kept current by `key_ring`). `authorize` is the whole check; it answers
//! what the upload may do, or the refusal:
//!
//! - 400 for a token both in the header and in the query (which one counts?);
//! - 401 with `WWW-Authenticate: Bearer` when there is no token, or none that parses;
//! - 403 when there is one but it does not allow this upload (`Refusal::reason` says why).

pub mod grant_json;
pub mod key_ring;
pub mod keys;
mod mac;
mod scope;
pub mod sign_command;
pub mod token;
mod verified;

use crate::http::{Framing, Request};
use grant_json::GrantView;
use keys::UploadKeys;
use std::borrow::Cow;
use token::{TokenError, EXPIRY_LEEWAY_SECS};

/// The query parameter that may carry a token.
const TOKEN_PARAMETER: &str = "token";

/// What a token allows this upload.
#[derive(Debug, PartialEq, Eq)]
pub struct Permit<'r> {
    /// The key to store: the request target without the `token` parameter.
    pub key: Cow<'r, str>,
    /// The largest body the token allows.
    pub max_body: u64,
}

/// An upload the token does not allow, with its answer and the reason it is counted
/// under (`uploads_refused_auth_total{reason}`).
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
}

fn refusal(status: u16, reason: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason,
        message: message.into(),
    }
}

/// Checks the token of `request` against `keys` at `now` (Unix seconds).
pub fn authorize<'r>(
    request: &'r Request,
    keys: &UploadKeys,
    now: u64,
) -> Result<Permit<'r>, Refusal> {
    let (key, from_query) = take_query_token(request.target())?;
    let mut headers = request.header_values("authorization");
    let from_header = headers.next();
    if headers.next().is_some() {
        return Err(refusal(
            400,
            "ambiguous",
            "more than one Authorization header",
        ));
    }
    let token = match (from_header, from_query) {
        (Some(_), Some(_)) => {
            return Err(refusal(
                400,
                "ambiguous",
                "a token both in Authorization and in the query: send one",
            ))
        }
        (Some(value), None) => bearer_token(value)?,
        (None, Some(token)) => token.as_bytes(),
        (None, None) => {
            return Err(refusal(
                401,
                "missing",
                "an upload token is required (Authorization: Bearer <token>, or ?token=)",
            ))
        }
    };
    let decided = verified::check(token, keys, |grant| permit(request, key, grant, now));
    decided.map_err(|err| match err {
        TokenError::Malformed(why) => refusal(401, "malformed", why),
        TokenError::UnknownKey(id) => refusal(
            403,
            "unknown_key",
            format!("the token is signed with key {id:?}, which is not in force"),
        ),
        TokenError::BadSignature => refusal(403, "bad_signature", "the token's MAC is wrong"),
    })?
}

/// What a genuine `grant` allows this upload of `key`, at `now`.
fn permit<'r>(
    request: &Request,
    key: Cow<'r, str>,
    grant: &GrantView<'_>,
    now: u64,
) -> Result<Permit<'r>, Refusal> {
    if now > grant.exp.saturating_add(EXPIRY_LEEWAY_SECS) {
        return Err(refusal(
            403,
            "expired",
            format!("the token expired at {} (Unix seconds)", grant.exp),
        ));
    }
    if let Some(why) = scope::outside(&key, grant.key.as_deref(), grant.prefix.as_deref()) {
        return Err(refusal(403, "other_key", why));
    }
    let max_body = grant.len.map_or(grant.max, |len| len.min(grant.max));
    match (request.framing, grant.len) {
        (Framing::Chunked, Some(len)) => Err(refusal(
            403,
            "length",
            format!("the token is for a body of exactly {len} bytes: send it with Content-Length"),
        )),
        (Framing::Length(length), Some(len)) if length != len => Err(refusal(
            403,
            "length",
            format!("the token is for a body of exactly {len} bytes, not {length}"),
        )),
        (Framing::Length(length), _) if length > max_body => Err(refusal(
            403,
            "too_large",
            format!("the token allows at most {max_body} bytes, not {length}"),
        )),
        _ => Ok(Permit { key, max_body }),
    }
}

/// The token from `Authorization: Bearer <token>`. Left as bytes: `token::check` takes
/// only base64url and one `.`, so anything else is refused there, without a pass over
/// the header to check its UTF-8 first.
fn bearer_token(value: &[u8]) -> Result<&[u8], Refusal> {
    let malformed = |why: &str| refusal(401, "malformed", why);
    let (scheme, token) = match value.iter().position(|&b| b == b' ') {
        Some(space) => (&value[..space], &value[space + 1..]),
        None => (value, &value[value.len()..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(malformed("Authorization must be Bearer <token>"));
    }
    match token.trim_ascii() {
        b"" => Err(malformed("Authorization: Bearer without a token")),
        token => Ok(token),
    }
}

/// Whether a query parameter (`name=value`, or a bare `name`) is the token.
fn is_token(param: &str) -> bool {
    param.split('=').next() == Some(TOKEN_PARAMETER)
}

/// `target` with the value of every `token` parameter hidden, for a log line: a refused
/// upload's token may still be good for another.
pub fn redacted(target: &str) -> Cow<'_, str> {
    let Some((path, query)) = target.split_once('?') else {
        return Cow::Borrowed(target);
    };
    if !query.split('&').any(is_token) {
        return Cow::Borrowed(target);
    }
    let params: Vec<&str> = query
        .split('&')
        .map(|param| match is_token(param) {
            true => "token=REDACTED",
            false => param,
        })
        .collect();
    Cow::Owned(format!("{path}?{}", params.join("&")))
}

/// Splits the `token` parameter off `target`: the key to store and the token, if any.
/// The rest of the query string is kept as sent, in its order.
fn take_query_token(target: &str) -> Result<(Cow<'_, str>, Option<&str>), Refusal> {
    let Some((path, query)) = target.split_once('?') else {
        return Ok((Cow::Borrowed(target), None));
    };
    let mut tokens = query.split('&').filter(|param| is_token(param));
    let Some(param) = tokens.next() else {
        return Ok((Cow::Borrowed(target), None));
    };
    if tokens.next().is_some() {
        return Err(refusal(400, "ambiguous", "more than one token parameter"));
    }
    let token = param.split_once('=').map_or("", |(_, value)| value);
    if token.is_empty() {
        return Err(refusal(401, "malformed", "the token parameter is empty"));
    }
    let rest: Vec<&str> = query.split('&').filter(|p| !is_token(p)).collect();
    let key = match rest.is_empty() {
        true => path.to_string(),
        false => format!("{path}?{}", rest.join("&")),
    };
    Ok((Cow::Owned(key), Some(token)))
}

#[cfg(test)]
mod tests {
    use super::take_query_token;

    #[test]
    fn the_token_parameter_is_taken_off_the_key() {
        let key = |target| take_query_token(target).map(|(key, token)| (key.into_owned(), token));
        assert_eq!(key("/a.jpg"), Ok(("/a.jpg".into(), None)));
        assert_eq!(key("/a.jpg?v=2"), Ok(("/a.jpg?v=2".into(), None)));
        assert_eq!(key("/a.jpg?token=x.y"), Ok(("/a.jpg".into(), Some("x.y"))));
        assert_eq!(
            key("/a.jpg?v=2&token=x.y&w"),
            Ok(("/a.jpg?v=2&w".into(), Some("x.y")))
        );
        assert_eq!(
            key("/a.jpg?tokens=1&mytoken=2"),
            Ok(("/a.jpg?tokens=1&mytoken=2".into(), None))
        );
        assert_eq!(
            key("/a.jpg?token=a&token=b").map_err(|r| r.status),
            Err(400)
        );
        assert_eq!(key("/a.jpg?token=").map_err(|r| r.status), Err(401));
    }

    #[test]
    fn logs_never_show_a_token() {
        assert_eq!(super::redacted("/a.jpg?v=1"), "/a.jpg?v=1");
        assert_eq!(
            super::redacted("/a.jpg?token=x.y&v=1&token=z"),
            "/a.jpg?token=REDACTED&v=1&token=REDACTED"
        );
    }
}
