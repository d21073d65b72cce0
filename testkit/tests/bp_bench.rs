//! The bp-bench binary answers like every backpack command: `--help`, and a one-line error
//! with exit code 2 for arguments that do not parse. (Its benchmarks run in the root
//! crate's tests/bench.rs, beside the backpack binary they start.)

use std::process::Command;

fn bp_bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bp-bench"))
        .args(args)
        .output()
        .expect("run bp-bench")
}

#[test]
fn help_and_bad_arguments() {
    let help = bp_bench(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("load") && text.contains("matrix"), "{text}");

    let bad = bp_bench(&["load", "http://127.0.0.1:1", "--concurrency", "many"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.starts_with("bp-bench: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
