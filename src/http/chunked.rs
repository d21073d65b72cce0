//! Decoding a `Transfer-Encoding: chunked` request body.
//!
//! Each chunk is a size in hex (extensions after `;` are ignored), CRLF, that many bytes,
//! CRLF; a chunk of size 0 ends the body, followed by trailer lines (read and ignored) and
//! an empty line. Anything else is an error that fails the body: lines end with CRLF only
//! (a lone LF is refused, as a proxy in front may read it differently), sizes are hex
//! digits only, and every line has a bounded length.

use std::io;

/// The longest chunk-size or trailer line taken.
pub(super) const MAX_LINE: usize = 4096;
/// The most trailer bytes taken.
const MAX_TRAILERS: usize = 16 * 1024;

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunks {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, with this many data bytes left.
    Data(u64),
    /// After a chunk's data, expecting its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one; bytes of trailers so far.
    Trailers(usize),
    /// The whole body is read.
    Done,
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

/// A chunk-size line (without its CRLF): the size.
pub(super) fn parse_size(line: &[u8]) -> io::Result<u64> {
    let digits = line.split(|b| *b == b';').next().unwrap_or_default();
    let digits = digits
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(&digits[..0], |end| &digits[..=end]);
    if digits.is_empty() || digits.len() > 16 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(invalid("malformed chunk size"));
    }
    let text = std::str::from_utf8(digits).map_err(|_| invalid("malformed chunk size"))?;
    u64::from_str_radix(text, 16).map_err(|_| invalid("chunk size out of range"))
}

/// The first line in `buffered`, ending in CRLF: its length without the CRLF, and the
/// bytes to consume. None when no whole line is there yet; an error for a bare LF.
pub(super) fn line_in(buffered: &[u8]) -> io::Result<Option<(usize, usize)>> {
    match buffered.iter().position(|b| *b == b'\n') {
        Some(0) => Err(invalid("a line of the chunked body ends with a bare LF")),
        Some(lf) if buffered[lf - 1] == b'\r' => Ok(Some((lf - 1, lf + 1))),
        Some(_) => Err(invalid("a line of the chunked body ends with a bare LF")),
        None if buffered.len() >= MAX_LINE => Err(invalid("a chunked body line is too long")),
        None => Ok(None),
    }
}

impl Chunks {
    /// The state after the line `line` (without CRLF) was read in this state.
    pub(super) fn after_line(self, line: &[u8]) -> io::Result<Chunks> {
        match self {
            Chunks::Size => match parse_size(line)? {
                0 => Ok(Chunks::Trailers(0)),
                size => Ok(Chunks::Data(size)),
            },
            Chunks::DataEnd if line.is_empty() => Ok(Chunks::Size),
            Chunks::DataEnd => Err(invalid("chunk data longer than its size")),
            Chunks::Trailers(_) if line.is_empty() => Ok(Chunks::Done),
            Chunks::Trailers(seen) if seen + line.len() > MAX_TRAILERS => {
                Err(invalid("too many trailer bytes"))
            }
            Chunks::Trailers(seen) => Ok(Chunks::Trailers(seen + line.len() + 2)),
            Chunks::Data(_) | Chunks::Done => Ok(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size(b"1a").unwrap(), 26);
        assert_eq!(parse_size(b"FF;name=value").unwrap(), 255);
        assert_eq!(parse_size(b"0").unwrap(), 0);
        assert_eq!(parse_size(b"10 \t").unwrap(), 16);
        for bad in [
            &b""[..],
            b"-1",
            b"0x10",
            b"g",
            b" 1",
            b"12345678901234567",
            b";x",
        ] {
            assert!(
                parse_size(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn lines_need_crlf() {
        assert_eq!(line_in(b"5\r\nhello").unwrap(), Some((1, 3)));
        assert_eq!(line_in(b"5\r").unwrap(), None);
        assert!(line_in(b"5\nhello").is_err());
        assert!(line_in(&[b'1'; MAX_LINE]).is_err());
    }

    #[test]
    fn states() {
        assert_eq!(Chunks::Size.after_line(b"3").unwrap(), Chunks::Data(3));
        assert_eq!(Chunks::Size.after_line(b"0").unwrap(), Chunks::Trailers(0));
        assert_eq!(Chunks::DataEnd.after_line(b"").unwrap(), Chunks::Size);
        assert!(Chunks::DataEnd.after_line(b"x").is_err());
        assert_eq!(
            Chunks::Trailers(0).after_line(b"X-Sum: 1").unwrap(),
            Chunks::Trailers(10)
        );
        assert_eq!(Chunks::Trailers(10).after_line(b"").unwrap(), Chunks::Done);
    }
}
