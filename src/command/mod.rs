//! What a command is: an `argh` struct implementing `Command`. `parse_and_run` parses the
//! arguments, prints `--help` and `--version`, and turns an error into one line on stderr
//! and a non-zero exit code (1: the command failed; 2: the arguments do not parse). No
//! backtraces, no panics. The table of commands is `cli`; the arguments commands share are `args`.

pub mod args;

use crate::error::Result;
use argh::{EarlyExit, FromArgs};
use std::process::ExitCode;

pub use crate::error::{EXIT_FAILED, EXIT_USAGE};

/// One command.
pub trait Command: FromArgs {
    fn run(self) -> Result<()>;
}

/// What argh says about arguments that do not parse, as one line, with a hint where argh
/// says too little.
fn usage_line(output: &str) -> String {
    let line = output.split_whitespace().collect::<Vec<_>>().join(" ");
    // argh takes `-5gb` for a flag it does not know.
    let negative = line
        .strip_prefix("Unrecognized argument: -")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    match negative {
        true => format!("{line} (sizes, counts and times cannot be negative)"),
        false => line,
    }
}

/// argh's help with `--version` listed under `--help` (argh does not know it).
fn with_version_line(help: &str) -> String {
    let mut lines: Vec<&str> = help.trim_end().lines().collect();
    let at = lines
        .iter()
        .position(|line| line.trim_start().starts_with("--help"))
        .map_or(lines.len(), |i| i + 1);
    let version = "  --version         the version, and the git commit it was built from";
    lines.insert(at, version);
    lines.join("\n")
}

/// Parses `args` as command `C` called `name` and runs it: the exit code to return.
pub fn parse_and_run<C: Command>(name: &str, args: &[&str]) -> ExitCode {
    if args == ["--version"] {
        println!("{name} {}", crate::version::version());
        return ExitCode::SUCCESS;
    }
    match C::from_args(&[name], args) {
        Ok(command) => match command.run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("{name}: {err}");
                ExitCode::from(err.exit_code())
            }
        },
        Err(EarlyExit { output, status }) => match status {
            Ok(()) => {
                println!("{}", with_version_line(&output));
                ExitCode::SUCCESS
            }
            Err(()) => {
                // argh spreads some messages over lines; an error is one line.
                eprintln!("{name}: {}", usage_line(&output));
                eprintln!("Run {name} --help for usage.");
                ExitCode::from(EXIT_USAGE)
            }
        },
    }
}
