//! The command table: every command's user-facing name and how to run it.
//!
//! Each command is an `argh` struct implementing `Command`. `run` parses the arguments,
//! prints `--help`, and turns an error into one line on stderr and a non-zero exit code
//! (1: the command failed; 2: the arguments do not parse). No backtraces, no panics.

use crate::error::Result;
use crate::{admin, coordinator, nginx_gen, replicator};
use argh::{EarlyExit, FromArgs};
use std::process::ExitCode;

/// Exit code for a command that failed (ZooKeeper, Redis, bad state, refused request).
pub const EXIT_FAILED: u8 = 1;
/// Exit code for arguments that do not parse.
pub const EXIT_USAGE: u8 = 2;

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
                ExitCode::from(EXIT_FAILED)
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

type Runner = fn(&str, &[&str]) -> ExitCode;

/// Command names as users type them, with what runs them.
pub const COMMANDS: &[(&str, Runner)] = &[
    (
        "backpack-coordinator",
        parse_and_run::<coordinator::command::CoordinatorCommand>,
    ),
    (
        "backpack-replicator",
        parse_and_run::<replicator::command::ReplicatorCommand>,
    ),
    (
        "backpack-replicator-push",
        parse_and_run::<replicator::push::ReplicatorPush>,
    ),
    ("backpack-coordinator-init", parse_and_run::<admin::Init>),
    (
        "backpack-coordinator-set-queue",
        parse_and_run::<admin::SetQueue>,
    ),
    (
        "backpack-coordinator-add-server",
        parse_and_run::<admin::AddServer>,
    ),
    (
        "backpack-coordinator-add-shard",
        parse_and_run::<admin::AddShard>,
    ),
    (
        "backpack-coordinator-enable-shard",
        parse_and_run::<admin::EnableShard>,
    ),
    (
        "backpack-coordinator-disable-shard",
        parse_and_run::<admin::DisableShard>,
    ),
    (
        "backpack-coordinator-dump-shards",
        parse_and_run::<admin::DumpShards>,
    ),
    (
        "backpack-coordinator-print-stats",
        parse_and_run::<admin::PrintStats>,
    ),
    (
        "bp-nginx-gen",
        parse_and_run::<nginx_gen::command::NginxGen>,
    ),
];

/// Long-running servers (they keep running until stopped).
pub fn is_daemon(name: &str) -> bool {
    matches!(name, "backpack-coordinator" | "backpack-replicator")
}

/// Runs the command called `name`, or None when there is no such command.
pub fn run(name: &str, args: &[&str]) -> Option<ExitCode> {
    COMMANDS
        .iter()
        .find(|(command, _)| *command == name)
        .map(|(_, runner)| runner(name, args))
}
