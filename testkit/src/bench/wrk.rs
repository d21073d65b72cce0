//! wrk as the outside client: the same closed-loop load as bp-bench's own, from a load
//! generator this project did not write.
//!
//! A benchmark whose client is written beside the server can flatter it: the way the
//! client writes a request (head and body apart, or in one write; segment sizes) is the
//! one the server was tuned on. wrk (Debian's package) writes each request whole from
//! one buffer and reads answers in 8 KiB reads, as an `epoll` loop on one thread, at a
//! small fraction of the CPU of what it measures. A script (`wrk -s`) makes every request
//! a `PUT` of the cell's size to a path of its own, and prints what the report needs on
//! one line: requests, non-2xx answers, socket errors, p50 and p99. The client's CPU is
//! the child's own, from `wait4`.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one wrk turn measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct WrkTurn {
    pub requests: u64,
    /// Errors by kind: non-2xx answers, then connect, read, write and timeout errors.
    pub error_kinds: [u64; 5],
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// wrk's own CPU over the turn.
    pub client_cpu_seconds: f64,
}

/// The turns of one side in one cell.
#[derive(Debug, Clone, Default)]
pub struct WrkSide {
    pub turns: Vec<WrkTurn>,
}

impl WrkSide {
    pub fn push(&mut self, turn: WrkTurn) {
        self.turns.push(turn);
    }

    pub fn requests(&self) -> u64 {
        self.turns.iter().map(|turn| turn.requests).sum()
    }

    pub fn errors(&self) -> u64 {
        self.turns.iter().flat_map(|turn| turn.error_kinds).sum()
    }

    /// The errors by kind, as the report prints them ("3 read, 1 timeout").
    pub fn error_kinds(&self) -> String {
        let names = ["non-2xx", "connect", "read", "write", "timeout"];
        let mut said = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let n: u64 = self.turns.iter().map(|turn| turn.error_kinds[i]).sum();
            if n > 0 {
                said.push(format!("{n} {name}"));
            }
        }
        said.join(", ")
    }

    pub fn rps(&self) -> f64 {
        let seconds: f64 = self.turns.iter().map(|turn| turn.seconds).sum();
        self.requests() as f64 / seconds.max(1e-9)
    }

    /// wrk reports percentiles per run, which do not add up: the median of the turns'.
    pub fn p50_ms(&self) -> f64 {
        super::turns::median(self.turns.iter().map(|turn| turn.p50_ms).collect())
    }

    pub fn p99_ms(&self) -> f64 {
        super::turns::median(self.turns.iter().map(|turn| turn.p99_ms).collect())
    }

    pub fn client_cpu_ms(&self) -> f64 {
        let cpu: f64 = self.turns.iter().map(|turn| turn.client_cpu_seconds).sum();
        cpu * 1000.0 / self.requests().max(1) as f64
    }
}

/// The script: `PUT`s of `size` bytes to `<path>-1`, `<path>-2`, ..., and a report line
/// at the end. Every path is new, as with bp-bench's client: a path sent again queues an
/// item the queue already holds, which costs Redis less (one path for every request made
/// Redis's share per upload half of what it is with new paths).
fn script(size: usize, path: &str) -> String {
    format!(
        r#"wrk.method = "PUT"
wrk.body = string.rep("p", {size})
local sent = 0
request = function()
  sent = sent + 1
  return wrk.format(nil, "{path}-" .. sent)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("bp-bench-wrk %d %d %d %d %d %d %d %d %d\n", summary.requests,
    summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"#
    )
}

/// Whether wrk is installed.
pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Runs wrk (one thread, `concurrency` connections) against `base` for `duration`
/// (rounded to whole seconds, at least one: wrk takes no fractions; rates use the time
/// wrk measured), every request a `PUT` of `size` bytes to a new path that
/// starts with `path`.
pub fn run(
    base: &str,
    path: &str,
    size: usize,
    concurrency: usize,
    duration: Duration,
) -> Result<WrkTurn, String> {
    let file = script_file(size, path)?;
    let seconds = (duration.as_secs_f64().round() as u64).max(1);
    let started = Instant::now();
    let mut child = Command::new("wrk")
        .args(["-t1", "--timeout", "10s"])
        .arg(format!("-c{concurrency}"))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&file)
        .arg(base)
        .stdout(Stdio::piped())
        // What wrk says of a failure goes where the bench's own messages go.
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|err| format!("cannot run wrk ({err}); bin/backpack-install-deps installs it"))?;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let (status, cpu) = wait_with_cpu(child.id())?;
    let _ = std::fs::remove_file(&file);
    let line = out
        .lines()
        .find(|line| line.starts_with("bp-bench-wrk "))
        .ok_or_else(|| format!("wrk ({status}) printed no report: {out}"))?;
    let numbers: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|word| word.parse().unwrap_or(0))
        .collect();
    let [requests, duration_us, status_errors, connect, read, write, timeout, p50_us, p99_us] =
        numbers[..]
    else {
        return Err(format!("wrk's report line: {line}"));
    };
    let seconds = match duration_us {
        0 => started.elapsed().as_secs_f64(),
        us => us as f64 / 1e6,
    };
    Ok(WrkTurn {
        requests: requests.saturating_sub(status_errors),
        error_kinds: [status_errors, connect, read, write, timeout],
        seconds,
        p50_ms: p50_us as f64 / 1000.0,
        p99_ms: p99_us as f64 / 1000.0,
        client_cpu_seconds: cpu,
    })
}

fn script_file(size: usize, path: &str) -> Result<PathBuf, String> {
    let file = std::env::temp_dir().join(format!("bp-bench-wrk-{}-{size}.lua", std::process::id()));
    std::fs::write(&file, script(size, path))
        .map_err(|err| format!("{}: {err}", file.display()))?;
    Ok(file)
}

/// Waits for the child `pid`: its exit status and the CPU it used, user and system.
/// (`std::process::Child::wait` does not give the child's resource usage.)
fn wait_with_cpu(pid: u32) -> Result<(i32, f64), String> {
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; pid is our own child, not waited
    // for elsewhere.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if waited < 0 {
        return Err(format!(
            "waiting for wrk: {}",
            std::io::Error::last_os_error()
        ));
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok((status, seconds(usage.ru_utime) + seconds(usage.ru_stime)))
}

/// The matrix's second table: with sink nodes, the proxy and the first coordinator again
/// in every cell, driven by wrk, in the same turns as the rest.
#[derive(Default)]
pub struct WrkTable {
    pub proxy: WrkSide,
    pub first: WrkSide,
    /// The first coordinator's CPU over its wrk turns in this cell.
    pub first_cpu_seconds: f64,
    rows: Vec<String>,
}

impl WrkTable {
    /// Ends a cell: its row (beside the proxy's rate under bp-bench's client in the
    /// same cell), and empty sides for the next.
    pub fn finish_cell(&mut self, size: &str, concurrency: usize, proxy_bp_bench_rps: f64) {
        let (proxy, first) = (&self.proxy, &self.first);
        let errors = match (proxy.errors(), first.errors()) {
            (0, 0) => String::new(),
            _ => format!(
                " errors: proxy [{}], coordinator [{}]",
                proxy.error_kinds(),
                first.error_kinds()
            ),
        };
        self.rows.push(format!(
            "| {size} | {concurrency} | {:.0} | {:.0} | {:.2}x | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2}x | {:.2}x | {:.3} | {:.3} |{errors}",
            proxy_bp_bench_rps,
            proxy.rps(),
            proxy.rps() / proxy_bp_bench_rps.max(1e-9),
            proxy.p50_ms(),
            proxy.p99_ms(),
            first.rps(),
            first.p50_ms(),
            first.p99_ms(),
            first.rps() / proxy.rps().max(1e-9),
            first.p99_ms() / proxy.p99_ms().max(1e-9),
            self.first_cpu_seconds * 1000.0 / first.requests().max(1) as f64,
            first.client_cpu_ms(),
        ));
        self.proxy = WrkSide::default();
        self.first = WrkSide::default();
        self.first_cpu_seconds = 0.0;
    }

    pub fn print(&self) {
        if self.rows.is_empty() {
            return;
        }
        println!("\nthe same cells with wrk as the client (one thread; percentiles: the median of the turns'):\n");
        println!("| size | c | nginx proxy rps, bp-bench | nginx proxy rps, wrk | wrk over bp-bench | p50 ms | p99 ms | coordinator rps | p50 ms | p99 ms | ratio to proxy | p99 over proxy's | coordinator CPU ms/upload | wrk CPU ms/request |");
        println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for row in &self.rows {
            println!("{row}");
        }
    }
}
