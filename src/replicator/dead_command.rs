//! `backpack-replicator-dead <zk> <root> list|retry|drop [--all | <item JSON>]`: look at
//! the items the replicators gave up on, put them back into the queue, or forget them.

use crate::command::args::cluster_command;
use crate::command::Command;
use crate::duration_arg::{parse_duration, secs};
use crate::error::{Error, Result};
use crate::logline::format_time_ms;
use crate::replication_queue::{FailureRecord, ReplicationQueue};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    List,
    Retry,
    Drop,
}

fn action(text: &str) -> Result<Action, String> {
    match text {
        "list" => Ok(Action::List),
        "retry" => Ok(Action::Retry),
        "drop" => Ok(Action::Drop),
        other => Err(format!("unknown action {other:?}: use list, retry or drop")),
    }
}

cluster_command! {
    /// The replication queue's dead items (`<queue key>-dead` on every queue server): `list`
    /// prints each with its attempts, first failure and last reason; `retry` puts items back
    /// into the queue with their failures forgotten; `drop` forgets them. `retry` and `drop`
    /// take one item (its exact JSON) or `--all`; exit 1 when a named item is not dead.
    pub struct DeadCommand {
        /// list, retry or drop
        #[argh(positional, from_str_fn(action))]
        action: Action,
        /// the item, exactly as listed, e.g. '{"from":["1"],"to":"4","path":"/stats"}'
        #[argh(positional)]
        item: Option<String>,
        /// every dead item
        #[argh(switch)]
        all: bool,
        /// time for each Redis server (default 2s)
        #[argh(option, default = "secs(2)", from_str_fn(parse_duration))]
        redis_timeout: Duration,
    }
}

/// `<item>  attempts 3, first failure ..., 404 from every source since ..., last: ...`
fn describe(item: &str, record: &FailureRecord) -> String {
    let mut line = format!("{item}\tattempts {}", record.attempts);
    if let Some(first) = record.first_failure {
        line.push_str(&format!(", first failure {}", format_time_ms(first)));
    }
    if let Some(missing) = record.missing_since {
        line.push_str(&format!(
            ", 404 from every source since {}",
            format_time_ms(missing)
        ));
    }
    if !record.last_reason.is_empty() {
        line.push_str(&format!(", last: {}", record.last_reason));
    }
    line
}

impl Command for DeadCommand {
    fn run(self) -> Result<()> {
        let targets_given = usize::from(self.all) + usize::from(self.item.is_some());
        match (self.action, targets_given) {
            (Action::List, 0) => {}
            (Action::List, _) => return Err(Error::invalid("list takes no item and no --all")),
            (_, 1) => {}
            (_, _) => return Err(Error::invalid("name one item, or give --all")),
        }
        let store = self.open_cluster()?;
        let queue = ReplicationQueue::connect(&store.queue()?, self.redis_timeout)?;
        let dead_set = queue.dead();
        let dead = dead_set.list()?;
        let chosen: Vec<&str> = match (&self.item, self.action) {
            (_, Action::List) => {
                for (item, record) in &dead {
                    println!("{}", describe(item, record));
                }
                eprintln!("{} dead item(s) in {}", dead.len(), dead_set.key());
                return Ok(());
            }
            (Some(item), _) => {
                if !dead.contains_key(item) {
                    return Err(Error::invalid(format!(
                        "{item} is not in {}",
                        dead_set.key()
                    )));
                }
                vec![item.as_str()]
            }
            (None, _) => dead.keys().map(String::as_str).collect(),
        };
        let retry = self.action == Action::Retry;
        match retry {
            true => dead_set.retry(&chosen)?,
            false => dead_set.drop_items(&chosen)?,
        }
        println!(
            "{} {} item(s)",
            if retry {
                "put back into the queue"
            } else {
                "dropped"
            },
            chosen.len()
        );
        Ok(())
    }
}
