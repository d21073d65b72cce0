//! The commands run the way operators run them (the scripts in `bin/`), one real
//! ZooKeeper per test binary for them, and fresh cluster roots on it.

use backpack::zk::ZkSession;
use backpack_testkit::{Sandbox, ZooKeeper};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

struct SharedZooKeeper {
    _sandbox: Sandbox,
    server: ZooKeeper,
}

/// The test binary's ZooKeeper, started on first use. It is stopped by its watchdog when
/// the test process exits (statics are never dropped).
pub fn zookeeper() -> String {
    static ZK: OnceLock<SharedZooKeeper> = OnceLock::new();
    ZK.get_or_init(|| {
        let sandbox = Sandbox::new("zookeeper").expect("sandbox");
        let server = ZooKeeper::start(&sandbox).expect("start ZooKeeper");
        SharedZooKeeper {
            _sandbox: sandbox,
            server,
        }
    })
    .server
    .connect_string()
}

/// A root no other test uses, e.g. `/t1234-walkthrough-0`.
pub fn fresh_root(label: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "/t{}-{label}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `bin/<name> args...` as an operator would, with the binary cargo built for the
/// tests.
pub fn run(name: &str, args: &[&str]) -> Output {
    run_script(&repo_dir().join("bin").join(name), args)
}

pub fn run_script(script: &Path, args: &[&str]) -> Output {
    Command::new(script)
        .args(args)
        .env("BACKPACK_BIN", env!("CARGO_BIN_EXE_backpack"))
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", script.display()))
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a command that must succeed and returns its stdout.
pub fn ok(name: &str, args: &[&str]) -> String {
    let output = run(name, args);
    assert!(
        output.status.success(),
        "{name} {args:?} failed ({:?}): {}",
        output.status.code(),
        stderr(&output)
    );
    stdout(&output)
}

/// Runs a command that must fail with `code`; returns its stderr, which must be one line.
pub fn fails(name: &str, args: &[&str], code: i32) -> String {
    let output = run(name, args);
    let err = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{name} {args:?}: stdout {} stderr {err}",
        stdout(&output)
    );
    assert_eq!(
        err.trim_end()
            .lines()
            .filter(|l| !l.starts_with("Run "))
            .count(),
        1,
        "one line: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    err
}

pub fn session() -> ZkSession {
    ZkSession::connect(&zookeeper(), Duration::from_secs(10)).expect("connect to test ZooKeeper")
}

/// The exact bytes of a node, None when it does not exist.
pub fn node(zk: &ZkSession, path: &str) -> Option<String> {
    zk.get(path)
        .expect("read node")
        .map(|(bytes, _)| String::from_utf8(bytes).expect("UTF-8 node"))
}

/// A node's version, to prove that a command did not write it.
pub fn version(zk: &ZkSession, path: &str) -> Option<i32> {
    zk.get(path).expect("read node").map(|(_, version)| version)
}

pub const INIT: &str = "backpack-coordinator-init";
pub const ADD_SERVER: &str = "backpack-coordinator-add-server";
pub const ADD_SHARD: &str = "backpack-coordinator-add-shard";
pub const ENABLE: &str = "backpack-coordinator-enable-shard";
pub const DISABLE: &str = "backpack-coordinator-disable-shard";
pub const DUMP: &str = "backpack-coordinator-dump-shards";
pub const STATS: &str = "backpack-coordinator-print-stats";
pub const SET_QUEUE: &str = "backpack-coordinator-set-queue";
pub const REMOVE_SHARD: &str = "backpack-coordinator-remove-shard";
pub const REMOVE_SERVER: &str = "backpack-coordinator-remove-server";

/// `backpack-coordinator-init` with the queue key `backpack-queue`; its output.
pub fn init(zk: &str, root: &str, redis: &str) -> String {
    ok(INIT, &[zk, root, "backpack-queue", redis])
}
