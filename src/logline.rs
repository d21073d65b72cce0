//! Log lines on stderr: a UTC timestamp, then the message. Each line is formatted whole
//! and written with one `write` call, so lines from concurrent uploads never interleave,
//! nor do lines of several processes appending to one log file (`eprintln!` may write a
//! line in pieces, and another process's line can land between them).

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-26T12:00:00.123Z` for the current time.
pub fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_time_ms(now.as_millis() as u64)
}

/// `2026-11-26T12:00:00.123Z` for a time in milliseconds since the Unix epoch.
pub fn format_time_ms(ms: u64) -> String {
    let secs = ms / 1000;
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
        ms % 1000
    )
}

/// Writes `line` and a newline to stderr in one `write` call (a line longer than a pipe
/// or the kernel takes at once may still go in pieces). Errors are dropped: there is
/// nowhere left to report them.
pub fn write_line(message: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let line = format!("{} {message}\n", timestamp());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Writes one log line.
#[macro_export]
macro_rules! log_line {
    ($($arg:tt)*) => {
        $crate::logline::write_line(format_args!($($arg)*))
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

    #[test]
    fn a_known_time() {
        assert_eq!(
            super::format_time_ms(1_764_419_696_123),
            "2025-11-29T12:34:56.123Z"
        );
    }
}
