//! Reading a grant's JSON: the one object a token's payload holds, read on every upload.
//!
//! A grant is six known fields of strings and whole numbers, so this reads exactly that
//! and nothing more general: an object, each field at most once, no field it does not
//! know, strings with every JSON escape (`\uXXXX` and surrogate pairs included), whole
//! numbers that fit 64 bits, `null` for a field that may be absent. Strings without an
//! escape (every key a client sends in practice) are borrowed from the payload, not
//! copied. It takes what `serde_json` takes for `Grant` and refuses what it refuses; a
//! test holds the two side by side. It exists because the general parser, with the
//! strings it allocates, was a third of the cost of checking a token.

use std::borrow::Cow;

/// A grant as read from a payload, its strings borrowed where they hold no escape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantView<'a> {
    pub kid: Cow<'a, str>,
    pub exp: u64,
    pub key: Option<Cow<'a, str>>,
    pub prefix: Option<Cow<'a, str>>,
    pub max: u64,
    pub len: Option<u64>,
}

impl GrantView<'_> {
    /// The same grant, its strings copied: one to keep.
    pub fn to_owned_view(&self) -> GrantView<'static> {
        let own = |text: &Cow<'_, str>| Cow::Owned(text.to_string());
        GrantView {
            kid: own(&self.kid),
            exp: self.exp,
            key: self.key.as_ref().map(own),
            prefix: self.prefix.as_ref().map(own),
            max: self.max,
            len: self.len,
        }
    }
}

/// Reads `json` as a grant, or says what is wrong with it.
pub fn parse(json: &[u8]) -> Result<GrantView<'_>, String> {
    let mut reader = Reader { bytes: json, at: 0 };
    let (mut kid, mut exp, mut key, mut prefix, mut max, mut len) =
        (None, None, None, None, None, None);
    reader.expect(b'{')?;
    let mut first = true;
    loop {
        reader.skip_space();
        if reader.peek() == Some(b'}') && first {
            reader.at += 1;
            break;
        }
        if !first {
            match reader.next() {
                Some(b',') => reader.skip_space(),
                Some(b'}') => break,
                _ => return Err(reader.expected("`,` or `}`")),
            }
        }
        first = false;
        let name = reader.string()?;
        reader.expect(b':')?;
        match &*name {
            "kid" => once(&mut kid, reader.string()?, &name)?,
            "exp" => once(&mut exp, reader.number()?, &name)?,
            "max" => once(&mut max, reader.number()?, &name)?,
            "key" => once(&mut key, reader.nullable(Reader::string)?, &name)?,
            "prefix" => once(&mut prefix, reader.nullable(Reader::string)?, &name)?,
            "len" => once(&mut len, reader.nullable(Reader::number)?, &name)?,
            other => return Err(format!("unknown field {other:?}")),
        }
    }
    reader.skip_space();
    if reader.at != json.len() {
        return Err(reader.expected("the end of the grant"));
    }
    let missing = |field: &str| format!("missing field {field}");
    Ok(GrantView {
        kid: kid.ok_or_else(|| missing("kid"))?,
        exp: exp.ok_or_else(|| missing("exp"))?,
        key: key.flatten(),
        prefix: prefix.flatten(),
        max: max.ok_or_else(|| missing("max"))?,
        len: len.flatten(),
    })
}

/// Sets the field `name`, which must not have been set before.
fn once<T>(field: &mut Option<T>, value: T, name: &str) -> Result<(), String> {
    match field.replace(value) {
        None => Ok(()),
        Some(_) => Err(format!("the field {name} is given twice")),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expected(&self, what: &str) -> String {
        format!("expected {what} at byte {}", self.at)
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.skip_space();
        match self.next() == Some(byte) {
            true => Ok(()),
            false => Err(self.expected(&format!("`{}`", byte as char))),
        }
    }

    /// `null` (None), or what `read` reads.
    fn nullable<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        self.skip_space();
        if self.bytes[self.at..].starts_with(b"null") {
            self.at += 4;
            return Ok(None);
        }
        read(self).map(Some)
    }

    /// A whole number, no sign, fraction or exponent, that fits 64 bits.
    fn number(&mut self) -> Result<u64, String> {
        self.skip_space();
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        let digits = &self.bytes[start..self.at];
        if digits.is_empty() || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(self.expected("a whole number"));
        }
        if digits.len() > 1 && digits[0] == b'0' {
            return Err(format!("a number with a leading 0 at byte {start}"));
        }
        digits
            .iter()
            .try_fold(0u64, |n, digit| {
                n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
            })
            .ok_or_else(|| format!("the number at byte {start} does not fit 64 bits"))
    }

    /// A string: borrowed when it holds no escape, decoded into a copy when it does.
    fn string(&mut self) -> Result<Cow<'a, str>, String> {
        self.expect(b'"')?;
        let start = self.at;
        loop {
            match self.peek() {
                Some(b'"') => {
                    let raw = &self.bytes[start..self.at];
                    self.at += 1;
                    return std::str::from_utf8(raw)
                        .map(Cow::Borrowed)
                        .map_err(|_| not_utf8());
                }
                Some(b'\\') => break,
                Some(_) => self.plain_byte()?,
                None => return Err(unterminated()),
            }
        }
        let mut decoded = self.bytes[start..self.at].to_vec();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return String::from_utf8(decoded)
                        .map(Cow::Owned)
                        .map_err(|_| not_utf8());
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escaped = self.escape()?;
                    decoded.extend_from_slice(escaped.encode_utf8(&mut [0; 4]).as_bytes());
                }
                Some(byte) => {
                    self.plain_byte()?;
                    decoded.push(byte);
                }
                None => return Err(unterminated()),
            }
        }
    }

    /// Steps over one byte of a string that needs no decoding; control characters must
    /// be escaped.
    fn plain_byte(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(byte) if byte < 0x20 => Err(format!(
                "an unescaped control character in a string at byte {}",
                self.at
            )),
            _ => {
                self.at += 1;
                Ok(())
            }
        }
    }

    /// The character an escape after its `\` stands for.
    fn escape(&mut self) -> Result<char, String> {
        let at = self.at;
        Ok(match self.next() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => self.unicode()?,
            _ => return Err(format!("an invalid escape at byte {at}")),
        })
    }

    /// The character of `\uXXXX` (after the `u`), a surrogate pair taken whole.
    fn unicode(&mut self) -> Result<char, String> {
        let at = self.at;
        let lone = || format!("a lone surrogate in a string at byte {at}");
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                    return Err(lone());
                }
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(lone());
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(lone()),
            _ => first,
        };
        char::from_u32(code).ok_or_else(lone)
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self.next().and_then(|byte| char::from(byte).to_digit(16));
            code = code * 16 + digit.ok_or_else(|| self.expected("four hex digits"))?;
        }
        Ok(code)
    }
}

fn not_utf8() -> String {
    "a string that is not UTF-8".into()
}

fn unterminated() -> String {
    "a string without its closing quote".into()
}
