//! Log lines on stderr: a UTC timestamp, then the message. One `eprintln!` per line, so
//! lines from concurrent uploads never interleave.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-26T12:00:00.123Z` for the current time.
pub fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        now.subsec_millis()
    )
}

/// Writes one log line.
#[macro_export]
macro_rules! log_line {
    ($($arg:tt)*) => {
        eprintln!("{} {}", $crate::logline::timestamp(), format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_shape() {
        let stamp = super::timestamp();
        assert_eq!(stamp.len(), 24, "{stamp}");
        assert!(stamp.starts_with("20") && stamp.ends_with('Z'));
    }
}
