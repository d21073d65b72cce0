//! The admin commands that keep the cluster's state in ZooKeeper.
//!
//! Each command is an `argh` struct whose positional arguments are the old tools' (names
//! and order are a contract: users script against them). `run` dispatches on the command
//! name, prints `--help`, and turns an error into one line on stderr and a non-zero exit.

mod dump_shards;
mod print_stats;
mod servers;
mod setup;
mod shards;

use crate::error::Result;
use crate::store::Store;
use argh::{EarlyExit, FromArgs};
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for a command that failed (ZooKeeper, Redis, bad state, refused request).
pub const EXIT_FAILED: u8 = 1;
/// Exit code for arguments that do not parse.
pub const EXIT_USAGE: u8 = 2;

/// One admin command.
trait Command: FromArgs {
    fn run(self) -> Result<()>;
}

/// Where the cluster is: every admin command starts with these.
fn open(zk_servers: &str, root: &str, zk_timeout_secs: u64) -> Result<Store> {
    Store::open(zk_servers, root, Duration::from_secs(zk_timeout_secs.max(1)))
}

fn parse_and_run<C: Command>(name: &str, args: &[&str]) -> ExitCode {
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
    ("backpack-coordinator-init", parse_and_run::<setup::Init>),
    ("backpack-coordinator-set-queue", parse_and_run::<setup::SetQueue>),
    ("backpack-coordinator-add-server", parse_and_run::<servers::AddServer>),
    ("backpack-coordinator-add-shard", parse_and_run::<shards::AddShard>),
    ("backpack-coordinator-enable-shard", parse_and_run::<shards::EnableShard>),
    ("backpack-coordinator-disable-shard", parse_and_run::<shards::DisableShard>),
    ("backpack-coordinator-dump-shards", parse_and_run::<dump_shards::DumpShards>),
    ("backpack-coordinator-print-stats", parse_and_run::<print_stats::PrintStats>),
];

/// Runs the command called `name`, or None when there is no such command.
pub fn run(name: &str, args: &[&str]) -> Option<ExitCode> {
    COMMANDS
        .iter()
        .find(|(command, _)| *command == name)
        .map(|(_, runner)| runner(name, args))
}
