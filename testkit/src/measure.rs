//! What a process costs, read from the kernel: CPU seconds and memory. Benchmarks and
//! tests read them the same way, so their numbers compare.

/// CPU seconds (user + system) a process has used, to the nanosecond: the kernel's
/// per-process CPU clock, which adds up every thread's time on a CPU. `/proc/<pid>/stat`
/// counts in clock ticks (10 ms here), which is 2-3 % of a short turn's CPU; that is the
/// fallback where the clock cannot be had.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_clock_seconds(pid).or_else(|| cpu_tick_seconds(pid))
}

fn cpu_clock_seconds(pid: u32) -> Option<f64> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both calls only write the out-parameters given.
    unsafe {
        if libc::clock_getcpuclockid(pid, &mut clock) != 0
            || libc::clock_gettime(clock, &mut now) != 0
        {
            return None;
        }
    }
    Some(now.tv_sec as f64 + now.tv_nsec as f64 / 1e9)
}

fn cpu_tick_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks as f64 / per_second)
}

/// A `/proc/<pid>/status` field in KiB (`VmHWM`, `VmRSS`).
pub fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident memory now, KiB (0 when the process is gone).
pub fn rss_kib(pid: u32) -> u64 {
    memory_kib(pid, "VmRSS").unwrap_or(0)
}

/// Peak resident memory so far, KiB (0 when the process is gone).
pub fn peak_rss_kib(pid: u32) -> u64 {
    memory_kib(pid, "VmHWM").unwrap_or(0)
}
