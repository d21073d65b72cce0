//! Tokens already verified, remembered by each worker thread.
//!
//! A prefix token is made for many uploads: an application server hands one to a client
//! for a session, and the client sends it with every file. Verifying it again on each
//! upload (decoding it, reading its grant, its HMAC) gives the same answer every time, and
//! costs the coordinator more than a token's few hundred nanoseconds of work suggest: the
//! code and buffers it needs crowd the rest of an upload out of the CPU's caches. So each
//! worker thread keeps the grants of the tokens it verified last, in a few slots picked by
//! the end of the token (its MAC).
//!
//! Only tokens for a prefix are kept: a token for one key is for one upload.
//!
//! A slot answers only for the very token verified in it (compared byte for byte, its
//! MAC in constant time) and only under the keys it was verified with: once the keys
//! file is read again no slot answers until its token is verified under the new keys, so
//! a removed key's tokens are refused from the next upload on. Expiry, scope and length
//! are checked on every upload, remembered or not. Only genuine tokens are remembered; a
//! refused one is verified again each time it comes.

use super::grant_json::GrantView;
use super::keys::UploadKeys;
use super::token::{self, TokenError};
use std::cell::RefCell;
use subtle::ConstantTimeEq;

/// Slots per worker thread: tokens in use at once on one worker, many more than a bench's
/// or a session's handful, few enough that all of them fit in 32 KiB.
const SLOTS: usize = 64;

/// The characters of a token's MAC, at its end: 32 bytes in unpadded base64url.
const MAC_CHARS: usize = 43;

/// A longer token is verified every time (a real one is a few hundred bytes).
const LONGEST_REMEMBERED: usize = 512;

struct Slot {
    generation: u64,
    token: Vec<u8>,
    grant: GrantView<'static>,
}

impl Slot {
    /// Whether this slot remembers `token` under keys `generation`. The MAC, which makes
    /// a token usable, is compared in constant time; the payload before it (a grant
    /// anyone holding the token can read) with a plain one: `subtle` takes about 1.4 ns
    /// a byte, 200 ns over a whole token, more than the rest of a remembered check.
    fn holds(&self, token: &[u8], generation: u64) -> bool {
        let split = |token: &[u8]| token.len().saturating_sub(MAC_CHARS);
        let (payload, mac) = token.split_at(split(token));
        let (own_payload, own_mac) = self.token.split_at(split(&self.token));
        self.generation == generation && payload == own_payload && bool::from(own_mac.ct_eq(mac))
    }
}

thread_local! {
    static SLOTS_OF_THIS_THREAD: RefCell<Vec<Option<Slot>>> =
        RefCell::new((0..SLOTS).map(|_| None).collect());
}

/// What `token::check` does, for a token this thread verified before under the same keys
/// without verifying it again: `then` with the grant of `token`.
pub fn check<R>(
    token: &[u8],
    keys: &UploadKeys,
    then: impl FnOnce(&GrantView<'_>) -> R,
) -> Result<R, TokenError> {
    if token.len() > LONGEST_REMEMBERED {
        return token::check(token, keys, then);
    }
    let generation = keys.generation();
    // Nothing in here yields, so the thread's slots cannot be wanted by another upload
    // while they are borrowed.
    SLOTS_OF_THIS_THREAD.with(|slots| {
        let mut slots = slots.borrow_mut();
        let slot = &mut slots[slot_of(token)];
        if let Some(remembered) = slot.as_ref().filter(|slot| slot.holds(token, generation)) {
            return Ok(then(&remembered.grant));
        }
        let grant = token::check(token, keys, |grant| grant.to_owned_view())?;
        if grant.prefix.is_none() {
            // A token for one key is for one upload: keeping it would only push a
            // session's token out of its slot.
            return Ok(then(&grant));
        }
        let remembered = slot.insert(Slot {
            generation,
            token: token.to_vec(),
            grant,
        });
        Ok(then(&remembered.grant))
    })
}

/// The slot of a token: from its last bytes, which are its MAC's and vary the most.
fn slot_of(token: &[u8]) -> usize {
    let tail = token.iter().rev().take(8);
    let mixed = tail.fold(0u64, |hash, &byte| {
        hash.wrapping_mul(0x100_0000_01b3)
            .wrapping_add(u64::from(byte))
    });
    (mixed % SLOTS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload_auth::token::{sign, Grant};

    const FIRST: &str = "k1 c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n";
    const SECOND: &str = "k2 YW5vdGhlci1zZWNyZXQtc2VjcmV0\n";

    fn token(keys: &UploadKeys, kid: &str, prefix: &str) -> String {
        let grant = Grant {
            kid: kid.into(),
            exp: 2_000_000_000,
            key: None,
            prefix: Some(prefix.into()),
            max: 1024,
            len: None,
        };
        sign(&grant, keys.secret(kid).expect("a key"))
    }

    fn prefix_of(token: &str, keys: &UploadKeys) -> Result<String, TokenError> {
        check(token.as_bytes(), keys, |grant| {
            grant.prefix.as_deref().unwrap_or("").to_string()
        })
    }

    #[test]
    fn a_remembered_token_answers_as_verified_and_a_changed_one_is_verified_again() {
        let keys = UploadKeys::parse(FIRST).expect("keys");
        let good = token(&keys, "k1", "/users/1");
        for _ in 0..3 {
            assert_eq!(prefix_of(&good, &keys), Ok("/users/1".into()));
        }
        // The same MAC (so the same slot) after another payload: not the token verified.
        let (_, mac) = good.split_once('.').expect("a dot");
        let other = token(&keys, "k1", "/users/2");
        let (payload, _) = other.split_once('.').expect("a dot");
        let forged = format!("{payload}.{mac}");
        assert_eq!(slot_of(forged.as_bytes()), slot_of(good.as_bytes()));
        assert_eq!(prefix_of(&forged, &keys), Err(TokenError::BadSignature));
        // The same payload with another MAC, in the same slot too.
        let mut other_mac = good.clone().into_bytes();
        other_mac[good.len() - 9] ^= 0x01;
        let other_mac = String::from_utf8(other_mac).expect("ASCII");
        assert_eq!(slot_of(other_mac.as_bytes()), slot_of(good.as_bytes()));
        assert!(prefix_of(&other_mac, &keys).is_err());
        assert_eq!(prefix_of(&good, &keys), Ok("/users/1".into()));
    }

    #[test]
    fn keys_read_again_forget_every_token() {
        let both = UploadKeys::parse(&format!("{FIRST}{SECOND}")).expect("keys");
        let old = token(&both, "k1", "/a");
        let new = token(&both, "k2", "/b");
        assert_eq!(prefix_of(&old, &both), Ok("/a".into()));
        assert_eq!(prefix_of(&new, &both), Ok("/b".into()));
        let without_k1 = UploadKeys::parse(SECOND).expect("keys");
        assert_eq!(
            prefix_of(&old, &without_k1),
            Err(TokenError::UnknownKey("k1".into()))
        );
        assert_eq!(prefix_of(&new, &without_k1), Ok("/b".into()));
        // The same text read again is another reading: its tokens are verified again.
        assert_ne!(
            both.generation(),
            UploadKeys::parse(FIRST).expect("keys").generation()
        );
    }
}
