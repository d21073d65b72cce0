//! An upload token: what an application server grants one client, and the proof that it
//! holds a secret the coordinator knows.
//!
//! A token is `<payload>.<mac>`: the payload is a small JSON object (the `Grant`) as
//! unpadded base64url, and the MAC is HMAC-SHA256 under the key id's secret over the
//! ASCII of that encoded payload, also unpadded base64url. The MAC covers the encoded
//! text, not the JSON: a verifier never has to reproduce the signer's JSON byte for
//! byte, so an application in any language can sign with whatever JSON it has.
//!
//! Verification reads as little as it can before it knows the token is genuine: the
//! length is bounded before anything is decoded, and the payload's fields are only
//! trusted once the MAC over them checks (compared in constant time, by `hmac`).

use super::grant_json::{self, GrantView};
use super::keys::UploadKeys;
use super::mac::{keyed, HmacSha256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use serde::{Deserialize, Serialize};

/// The longest token taken, in bytes. A real one is a few hundred; anything longer is
/// refused before it is decoded.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Payloads that decode to at most this many bytes are decoded on the stack.
const SMALL_PAYLOAD_BYTES: usize = 512;

/// An expiry this many seconds past is still accepted: clocks of the signer and the
/// coordinator differ a little.
pub const EXPIRY_LEEWAY_SECS: u64 = 30;

/// What a token grants: the payload's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The id of the key whose secret signed it.
    pub kid: String,
    /// The last moment it may be used, in Unix seconds.
    pub exp: u64,
    /// The one key it is for: the path as the client sends it, from its leading `/`
    /// (query string included, the `token` parameter left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Or the folder it is for: every key below it (see `Scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The largest body, in bytes.
    pub max: u64,
    /// The exact length of the body, when the signer knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
}

/// Why a token was not taken. `Malformed` is answered 401 (the client did not present a
/// token at all, as far as the coordinator can tell); the others are 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Malformed(String),
    UnknownKey(String),
    BadSignature,
}

/// Signs `grant` with `secret`: the token to hand to a client.
pub fn sign(grant: &Grant, secret: &[u8]) -> String {
    // Serializing a struct of strings and integers cannot fail.
    let json = serde_json::to_vec(grant).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(json);
    let mac = mac_of(payload.as_bytes(), secret).finalize().into_bytes();
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac))
}

fn mac_of(payload: &[u8], secret: &[u8]) -> HmacSha256 {
    let mut mac = keyed(secret);
    mac.update(payload);
    mac
}

/// Checks `token` against `keys`: the grant it carries when it is well formed, signed by
/// a key in force, and its MAC matches. Expiry and scope are the caller's to check.
pub fn verify(token: &str, keys: &UploadKeys) -> Result<Grant, TokenError> {
    check(token.as_bytes(), keys, |grant| Grant::from(grant))
}

impl From<&GrantView<'_>> for Grant {
    fn from(grant: &GrantView<'_>) -> Grant {
        Grant {
            kid: grant.kid.to_string(),
            exp: grant.exp,
            key: grant.key.as_deref().map(str::to_string),
            prefix: grant.prefix.as_deref().map(str::to_string),
            max: grant.max,
            len: grant.len,
        }
    }
}

/// What `verify` does, on every upload: hands the grant to `then` as read from the
/// payload, its strings borrowed, so that a genuine token costs no allocation.
pub fn check<R>(
    token: &[u8],
    keys: &UploadKeys,
    then: impl FnOnce(&GrantView<'_>) -> R,
) -> Result<R, TokenError> {
    let malformed = |why: &str| TokenError::Malformed(why.to_string());
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed(format!(
            "the token is longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let Some(dot) = token.iter().position(|&b| b == b'.') else {
        return Err(malformed(
            "the token has no . between its payload and its MAC",
        ));
    };
    let (payload, mac) = (&token[..dot], &token[dot + 1..]);
    if mac.contains(&b'.') {
        return Err(malformed("the token has more than one ."));
    }
    // A payload of a usual size is decoded on the stack (this runs on every upload); a
    // longer one, up to the bounded length, on the heap.
    let mut small = [0u8; SMALL_PAYLOAD_BYTES];
    let mut large = Vec::new();
    // What base64 asks of the output: three bytes for every four characters begun.
    let room = payload.len().div_ceil(4) * 3;
    let out = match room <= SMALL_PAYLOAD_BYTES {
        true => &mut small[..],
        false => {
            large.resize(room, 0);
            &mut large[..]
        }
    };
    let json = URL_SAFE_NO_PAD
        .decode_slice(payload, out)
        .map(|n| &out[..n])
        .map_err(|_| malformed("the token's payload is not unpadded base64url"))?;
    let mut mac_bytes = [0u8; 33];
    let mac = URL_SAFE_NO_PAD
        .decode_slice(mac, &mut mac_bytes)
        .map(|n| &mac_bytes[..n])
        .map_err(|_| malformed("the token's MAC is not 32 bytes of unpadded base64url"))?;
    if mac.len() != 32 {
        return Err(malformed("the token's MAC is not 32 bytes (HMAC-SHA256)"));
    }
    let grant = grant_json::parse(json).map_err(|why| {
        TokenError::Malformed(format!("the token's payload is not a grant: {why}"))
    })?;
    let Some(keyed) = keys.keyed_mac(&grant.kid) else {
        return Err(TokenError::UnknownKey(grant.kid.into_owned()));
    };
    let mut check = keyed.clone();
    check.update(payload);
    check
        .verify_slice(mac)
        .map_err(|_| TokenError::BadSignature)?;
    Ok(then(&grant))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> UploadKeys {
        UploadKeys::parse("k1 c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n").expect("keys")
    }

    fn grant() -> Grant {
        Grant {
            kid: "k1".into(),
            exp: 2_000_000_000,
            key: Some("/a.jpg".into()),
            prefix: None,
            max: 1024,
            len: None,
        }
    }

    #[test]
    fn a_signed_grant_verifies_and_a_changed_one_does_not() {
        let keys = keys();
        let secret = keys.secret("k1").expect("k1");
        let token = sign(&grant(), secret);
        assert_eq!(verify(&token, &keys), Ok(grant()));
        let (payload, mac) = token.split_once('.').expect("dot");
        let mut other = grant();
        other.max = 1 << 30;
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).expect("json"));
        assert_eq!(
            verify(&format!("{forged_payload}.{mac}"), &keys),
            Err(TokenError::BadSignature)
        );
        assert!(matches!(
            verify(payload, &keys),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            verify(&format!("{token}.x"), &keys),
            Err(TokenError::Malformed(_))
        ));
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(
            verify(&long, &keys),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn a_long_payload_verifies_too() {
        let keys = keys();
        for length in [300, 380, 700, 2000] {
            let mut long = grant();
            long.prefix = Some(format!("/{}", "p".repeat(length)));
            long.key = None;
            let token = sign(&long, keys.secret("k1").expect("k1"));
            assert_eq!(verify(&token, &keys), Ok(long), "{length}");
        }
    }

    #[test]
    fn an_unknown_key_id_is_named() {
        let mut other = grant();
        other.kid = "k9".into();
        let token = sign(&other, b"whatever");
        assert_eq!(
            verify(&token, &keys()),
            Err(TokenError::UnknownKey("k9".into()))
        );
    }
}
