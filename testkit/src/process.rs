//! A server process that cannot outlive the program that started it.
//!
//! Each server runs in its own process group, so stopping it also stops any children
//! (nginx workers). Beside it runs a watchdog, a tiny shell loop in a process group of its
//! own: when the owning process disappears (a test that panicked past its cleanup, or a run
//! killed with SIGKILL) the watchdog kills the server's group. The group id is also written
//! to the sandbox, so `Sandbox::new` can reap servers of an owner that died with its
//! watchdog.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How to (re)start a server: the program, its arguments, and its log file.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Where it runs (loopback, or a host of a private network).
    pub host: crate::Host,
    pub name: String,
    pub program: String,
    pub args: Vec<String>,
    pub log: PathBuf,
    pub pid_dir: PathBuf,
    /// The name the program sees itself called by (argv[0]), when not `program`.
    pub arg0: Option<String>,
}

/// A running server; stopped (with its whole group) when dropped.
pub struct ServerProcess {
    launch: Launch,
    child: Option<Child>,
    watchdog: Option<Child>,
}

pub fn signal_group(pgid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) takes plain integers; a negative pid names a process group.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), signal);
    }
}

pub fn is_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// When process `pid` started (clock ticks since boot, field 22 of `/proc/<pid>/stat`).
///
/// A pid alone does not name a process for long: pids are reused, and here `pid_max` is
/// 32768 while the test suite starts thousands of processes. A pid together with its
/// start time does.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// True when `pid` is the process that started at `started`.
pub fn is_same_process(pid: u32, started: u64) -> bool {
    start_time(pid) == Some(started)
}

impl ServerProcess {
    pub fn start(launch: Launch) -> std::io::Result<ServerProcess> {
        let mut server = ServerProcess {
            launch,
            child: None,
            watchdog: None,
        };
        server.restart()?;
        Ok(server)
    }

    fn pid_file(&self) -> PathBuf {
        self.launch
            .pid_dir
            .join(format!("{}.pgid", self.launch.name))
    }

    /// Starts the server again after `stop` (same arguments, same ports).
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.launch.log)?;
        let mut command = self.launch.host.command(&self.launch.program)?;
        if let Some(arg0) = &self.launch.arg0 {
            command.arg0(arg0);
        }
        let child = command
            .args(&self.launch.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|err| {
                std::io::Error::new(
                    err.kind(),
                    format!("cannot start {}: {err}", self.launch.program),
                )
            })?;
        let pgid = child.id();
        // Not reaped yet, so the pid is still this child's.
        let started = start_time(pgid).unwrap_or(0);
        fs::write(self.pid_file(), format!("{pgid} {started}"))?;
        let owner = std::process::id();
        let owner_started = start_time(owner).unwrap_or(0);
        // Processes are named by pid and start time (see `start_time`): a server that
        // exits on its own leaves its pid free for any other process, which the watchdog
        // must never signal. It only acts when the owner is gone and the server is not.
        // Shell builtins only: the loop runs every half second beside every server.
        let script = format!(
            "same() {{ want=$2; [ -r /proc/$1/stat ] && read -r line < /proc/$1/stat || return 1; \
             set -- ${{line##*) }}; shift 19; [ \"$1\" = \"$want\" ]; }}; \
             while same {owner} {owner_started} && same {pgid} {started}; do sleep 0.5; done; \
             if same {pgid} {started}; then kill -TERM -{pgid} 2>/dev/null; sleep 1; \
             same {pgid} {started} && kill -KILL -{pgid} 2>/dev/null; fi"
        );
        let watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        self.child = Some(child);
        self.watchdog = Some(watchdog);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` to the server's process group (SIGSTOP and SIGCONT for pauses).
    pub fn signal(&self, signal: libc::c_int) {
        if let Some(pid) = self.pid() {
            signal_group(pid, signal);
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(status))) => return Some(status),
                Some(Ok(None)) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(20))
                }
                _ => return None,
            }
        }
    }

    /// True while the server process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Stops the server: SIGTERM to its group, SIGKILL after two seconds.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = child.id();
            signal_group(pgid, libc::SIGCONT);
            signal_group(pgid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                thread::sleep(Duration::from_millis(20));
            }
            signal_group(pgid, libc::SIGKILL);
            let _ = child.wait();
            let _ = fs::remove_file(self.pid_file());
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }

    /// Kills the server at once with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(child) = &self.child {
            signal_group(child.id(), libc::SIGKILL);
        }
        self.stop();
    }

    pub fn log(&self) -> &Path {
        &self.launch.log
    }

    /// The last `lines` lines of its log, in order (empty when it cannot be read).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `ready` says yes, up to `timeout`; the error names what did not come up.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> std::io::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} did not become ready within {}s", timeout.as_secs()),
    ))
}
