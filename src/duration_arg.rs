//! Durations on the command line: `500ms`, `3s`, `2m`, `1h`, or a bare number of seconds.
//! Every flag that takes a time is parsed here, so they all read alike.

use std::time::Duration;

/// A flag's default in seconds (`#[argh(option, default = "secs(5)", ...)]`).
pub const fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// A flag's default in milliseconds.
pub const fn millis(milliseconds: u64) -> Duration {
    Duration::from_millis(milliseconds)
}

/// A time from the command line: a number with `ms`, `s`, `m` or `h`, or a bare number
/// of seconds; a one-line error that shows the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {text:?} (examples: 500ms, 3s, 2m, 1h; a bare number is seconds)")
    };
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(bad()),
    };
    if !(0.0..=1e9).contains(&seconds) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(24 * 3600)));
        assert_eq!(parse_duration(" 5 s "), Ok(Duration::from_secs(5)));
        for bad in ["soon", "3d", "-1s", "", "s", "1e99"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
