//! The command table: every command's user-facing name and how to run it (`command`
//! holds what a command is; this module only lists them).

use crate::command::parse_and_run;
use crate::{admin, coordinator, nginx_gen, repair, replicator, upload_auth};
use std::process::ExitCode;

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
    (
        "backpack-replicator-dead",
        parse_and_run::<replicator::dead_command::DeadCommand>,
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
        "backpack-coordinator-remove-shard",
        parse_and_run::<admin::RemoveShard>,
    ),
    (
        "backpack-coordinator-remove-server",
        parse_and_run::<admin::RemoveServer>,
    ),
    (
        "backpack-coordinator-dump-shards",
        parse_and_run::<admin::DumpShards>,
    ),
    (
        "backpack-coordinator-set-node-index",
        parse_and_run::<admin::SetNodeIndex>,
    ),
    (
        "backpack-coordinator-check-shard",
        parse_and_run::<repair::command::CheckShard>,
    ),
    (
        "backpack-coordinator-check-cluster",
        parse_and_run::<repair::command::CheckCluster>,
    ),
    (
        "backpack-coordinator-sign-upload",
        parse_and_run::<upload_auth::sign_command::SignUpload>,
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
