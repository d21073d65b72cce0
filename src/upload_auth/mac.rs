//! HMAC-SHA256, the MAC of upload tokens (RustCrypto's `hmac` and `sha2`: its
//! `verify_slice` compares in constant time).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `secret`, before any message.
pub fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length; `new_from_slice` never fails for it.
    <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
}
