//! What a command is: an `argh` struct implementing `Command`. `parse_and_run` parses the
//! arguments, prints `--help`, and turns an error into one line on stderr and a non-zero
//! exit code (1: the command failed; 2: the arguments do not parse). No backtraces, no
//! panics. The table of commands is `cli`; the arguments commands share are `args`.

pub mod args;

use crate::error::Result;
use argh::{EarlyExit, FromArgs};
use std::process::ExitCode;

pub use crate::error::{EXIT_FAILED, EXIT_USAGE};

/// One command.
pub trait Command: FromArgs {
    fn run(self) -> Result<()>;
}

/// Parses `args` as command `C` called `name` and runs it: the exit code to return.
pub fn parse_and_run<C: Command>(name: &str, args: &[&str]) -> ExitCode {
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
                println!("{output}");
                ExitCode::SUCCESS
            }
            Err(()) => {
                // argh spreads some messages over lines; an error is one line.
                let message: Vec<&str> = output.split_whitespace().collect();
                eprintln!("{name}: {}", message.join(" "));
                eprintln!("Run {name} --help for usage.");
                ExitCode::from(EXIT_USAGE)
            }
        },
    }
}
