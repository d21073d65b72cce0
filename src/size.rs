//! Byte sizes as operators type them (`100gb`, `1.5gb`, `512`) and as the tools print them.
//!
//! The old tools used 1024-based units named b, kb, mb, gb and tb, case-insensitive, and a
//! bare number meant bytes. Parsing is exact integer arithmetic on the decimal digits, so
//! `1.5gb` is exactly 1610612736 and never a float rounding away from it.

use std::fmt;

const UNITS: [(&str, u64); 5] = [
    ("tb", 1 << 40),
    ("gb", 1 << 30),
    ("mb", 1 << 20),
    ("kb", 1 << 10),
    ("b", 1),
];

/// Why a size argument was refused; the message names the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeError(String);

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SizeError {}

/// Parses `100gb`, `1.5GB`, `10 kb`, `4096` into bytes. Fractions of a byte are dropped.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let bad = |why: &str| {
        SizeError(format!(
            "invalid size {text:?}: {why} (examples: 100gb, 1.5gb, 512mb, 4096)"
        ))
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier = if unit.is_empty() {
        1
    } else {
        match UNITS.iter().find(|(name, _)| *name == unit) {
            Some((_, m)) => *m,
            None => {
                return Err(bad(&format!(
                    "unknown unit {unit:?}, use b, kb, mb, gb or tb"
                )))
            }
        }
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad("no number"));
    }
    if fraction.contains('.') || fraction.len() > 12 {
        return Err(bad("not a number"));
    }
    // value = (whole + fraction / 10^len) * multiplier, computed in u128 to stay exact.
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad("number too large"))?
    };
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| bad("not a number"))?
    };
    let bytes = (whole * scale + fraction)
        .checked_mul(multiplier as u128)
        .map(|v| v / scale)
        .ok_or_else(|| bad("number too large"))?;
    u64::try_from(bytes).map_err(|_| bad("number too large"))
}

/// Formats bytes in the largest unit that keeps the number at least 1, with up to two
/// decimals and no trailing zeros: `0b`, `512b`, `1.5gb`, `100gb`.
pub fn format_size(bytes: u64) -> String {
    for (name, multiplier) in UNITS {
        if bytes >= multiplier || multiplier == 1 {
            let hundredths = (bytes as u128 * 100 + multiplier as u128 / 2) / multiplier as u128;
            let (whole, rest) = (hundredths / 100, hundredths % 100);
            return match rest {
                0 => format!("{whole}{name}"),
                r if r % 10 == 0 => format!("{whole}.{}{name}", r / 10),
                r => format!("{whole}.{r:02}{name}"),
            };
        }
    }
    unreachable!("the unit list ends with bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_exactly() {
        assert_eq!(parse_size("1.5gb"), Ok(1_610_612_736));
        assert_eq!(parse_size("100gb"), Ok(100 * (1 << 30)));
        assert_eq!(parse_size("100GB"), Ok(100 * (1 << 30)));
        assert_eq!(parse_size("10 kb"), Ok(10_240));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2tb"), Ok(2 << 40));
        assert_eq!(parse_size("0.5b"), Ok(0));
        assert_eq!(parse_size(".5kb"), Ok(512));
    }

    #[test]
    fn refuses_nonsense() {
        for text in [
            "10 parsecs",
            "",
            "gb",
            "1.2.3gb",
            "-5gb",
            "99999999999999999999tb",
        ] {
            let err = parse_size(text).expect_err(text);
            assert!(err.to_string().contains("invalid size"), "{err}");
        }
        assert!(parse_size("10 parsecs")
            .unwrap_err()
            .to_string()
            .contains("parsecs"));
    }

    #[test]
    fn formats_human_units() {
        assert_eq!(format_size(0), "0b");
        assert_eq!(format_size(512), "512b");
        assert_eq!(format_size(1_610_612_736), "1.5gb");
        assert_eq!(format_size(100 << 30), "100gb");
        assert_eq!(format_size(1536 + 10), "1.51kb");
    }
}
