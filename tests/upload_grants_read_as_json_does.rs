//! The coordinator reads a token's grant with a reader of its own (it runs on every
//! upload); `serde_json` is the reference it must agree with, on the grants applications
//! sign and on everything near them. `backpack::fuzzing::upload_grant` holds the two side
//! by side and panics where they differ.

use backpack::fuzzing::upload_grant;
use backpack::upload_auth::grant_json;

/// Grants as applications write them, and the malformed ones close to them.
#[rustfmt::skip]
const CASES: &[&str] = &[
    r#"{"kid":"k1","exp":2000000000,"key":"/a.jpg","max":1024}"#,
    r#"{"kid":"k1","exp":2000000000,"prefix":"/users/42","max":1024,"len":100}"#,
    r#" { "max" : 1 , "prefix" : "/p" , "exp" : 0 , "kid" : "k" } "#,
    "{\n\t\"kid\": \"k\",\r\n\"exp\": 1,\n\"key\": \"/a\",\n\"max\": 18446744073709551615\n}\n",
    r#"{"kid":"k","exp":1,"key":null,"prefix":"/p","max":1,"len":null}"#,
    r#"{"kid":"k\u0031","exp":1,"key":"\/a\"b\\c\b\f\n\r\t","max":1}"#,
    r#"{"kid":"k","exp":1,"key":"/\u00e9\u4e2d\ud83d\ude00","max":1}"#,
    r#"{"kid":"k","exp":1,"key":"/é中😀","max":1}"#,
    r#"{"k\u0069d":"k","exp":1,"key":"/a","max":1}"#,
    r#"{"kid":"k","exp":1,"key":"/a\u0000b","max":1}"#,
    // Refused: missing, repeated and unknown fields.
    r#"{}"#,
    r#"{"exp":1,"key":"/a","max":1}"#,
    r#"{"kid":"k","key":"/a","max":1}"#,
    r#"{"kid":"k","exp":1,"key":"/a"}"#,
    r#"{"kid":"k","kid":"k","exp":1,"key":"/a","max":1}"#,
    r#"{"kid":"k","exp":1,"key":null,"key":"/a","max":1}"#,
    r#"{"kid":"k","exp":1,"key":"/a","max":1,"admin":true}"#,
    r#"{"kid":"k","exp":1,"key":"/a","max":1,"Kid":"k"}"#,
    // Refused: numbers that are not whole, not positive, or too large.
    r#"{"kid":"k","exp":1.0,"key":"/a","max":1}"#,
    r#"{"kid":"k","exp":1e9,"key":"/a","max":1}"#,
    r#"{"kid":"k","exp":-1,"key":"/a","max":1}"#,
    r#"{"kid":"k","exp":01,"key":"/a","max":1}"#,
    r#"{"kid":"k","exp":1,"key":"/a","max":18446744073709551616}"#,
    r#"{"kid":"k","exp":"1","key":"/a","max":1}"#,
    r#"{"kid":"k","exp":1,"key":"/a","max":null}"#,
    r#"{"kid":"k","exp":1,"key":"/a","max":1,"len":true}"#,
    // Refused: strings JSON does not allow.
    r#"{"kid":"k","exp":1,"key":"/a\x","max":1}"#,
    r#"{"kid":"k","exp":1,"key":"/a\u12","max":1}"#,
    r#"{"kid":"k","exp":1,"key":"/a\ud83d","max":1}"#,
    r#"{"kid":"k","exp":1,"key":"/a\ude00","max":1}"#,
    r#"{"kid":"k","exp":1,"key":"/a\ud83d\u0041","max":1}"#,
    "{\"kid\":\"k\",\"exp\":1,\"key\":\"/a\tb\",\"max\":1}",
    r#"{"kid":"k","exp":1,"key":"/a,"max":1}"#,
    r#"{"kid":null,"exp":1,"key":"/a","max":1}"#,
    r#"{"kid":7,"exp":1,"key":"/a","max":1}"#,
    r#"{"kid":"k","exp":1,"key":["/a"],"max":1}"#,
    r#"{"kid":"k","exp":1,"key":{"x":1},"max":1}"#,
    // Refused: not one object.
    r#"{"kid":"k","exp":1,"key":"/a","max":1,}"#,
    r#"{"kid":"k","exp":1,"key":"/a","max":1}x"#,
    r#"{"kid":"k","exp":1,"key":"/a","max":1}{}"#,
    r#"{"kid":"k","exp":1,"key":"/a","max":1"#,
    r#"{"kid":"k" "exp":1,"key":"/a","max":1}"#,
    r#"{"kid":"k","exp":1,"key":nul,"max":1}"#,
    r#"{"kid":"k","exp":1,"key":nullx,"max":1}"#,
    r#"["kid","k"]"#,
    r#""kid""#,
    "",
    "null",
];

#[test]
fn the_grant_reader_agrees_with_serde_json_on_every_case() {
    for case in CASES {
        upload_grant(case.as_bytes());
    }
    // The table holds grants that are taken, not only refusals.
    let taken = CASES
        .iter()
        .filter(|case| grant_json::parse(case.as_bytes()).is_ok())
        .count();
    assert_eq!(taken, 10);
}

#[test]
fn escaped_strings_are_decoded_and_plain_ones_borrowed() {
    let grant = grant_json::parse(CASES[6].as_bytes()).expect("a grant");
    assert_eq!(grant.key.as_deref(), Some("/é中😀"));
    let plain = grant_json::parse(CASES[1].as_bytes()).expect("a grant");
    assert!(matches!(
        plain.prefix,
        Some(std::borrow::Cow::Borrowed("/users/42"))
    ));
}

#[test]
fn bytes_not_utf8_are_refused() {
    let mut bytes = CASES[0].as_bytes().to_vec();
    let at = bytes.iter().position(|&b| b == b'a').expect("the key's a");
    for bad in [0xff, 0xc3, 0x80] {
        bytes[at] = bad;
        upload_grant(&bytes);
        assert!(grant_json::parse(&bytes).is_err());
    }
}

/// Changes each case a few bytes at a time, with bytes that matter to JSON, and checks
/// that both readers still agree: 200,000 inputs near real grants, the same each run.
#[test]
fn grants_changed_at_random_are_read_alike() {
    const BYTES: &[u8] = b"{}[]\":,\\ -.0123456789eEu+ntrlfaxbdk/\x00\x1f\x7f\xc3\xa9\xff";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |below: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % below as u64) as usize
    };
    let mut taken = 0;
    for round in 0..200_000 {
        let mut bytes = CASES[round % 10].as_bytes().to_vec();
        for _ in 0..1 + next(3) {
            let at = next(bytes.len() + 1);
            let byte = BYTES[next(BYTES.len())];
            match next(3) {
                0 if at < bytes.len() => bytes[at] = byte,
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, byte),
            }
        }
        upload_grant(&bytes);
        taken += usize::from(grant_json::parse(&bytes).is_ok());
    }
    // Many changes keep a grant (a changed digit or letter), most break it.
    assert!((10_000..150_000).contains(&taken), "{taken} taken");
}
