//! Publishing a snapshot, and logging what changed in a line of counts: with a thousand
//! shards, a line listing every writable id would be kilobytes long and say nothing.

use crate::cluster::snapshot::{Snapshot, SnapshotCell};
use crate::log_line;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::Arc;

/// What a configuration log line is about.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Summary {
    nodes: usize,
    shards: usize,
    /// None in a process that reads no sizes (a shard is writable only with its size
    /// known, so "0 writable" there would read as an alarm and mean nothing).
    writable: Option<BTreeSet<String>>,
}

impl Summary {
    fn of(snapshot: &Snapshot, reads_sizes: bool) -> Summary {
        Summary {
            nodes: snapshot.nodes.len(),
            shards: snapshot.shards.len(),
            writable: reads_sizes
                .then(|| snapshot.writable_shards().map(|s| s.id.clone()).collect()),
        }
    }
}

/// Ids listed in a log line at most; more are counted.
const LISTED: usize = 10;

/// `3 (7, 9, 12)`, or `250 (1, 2, ... and 240 more)`.
fn counted<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    let ids: Vec<&String> = ids.collect();
    let mut text = format!("{} (", ids.len());
    for (i, id) in ids.iter().take(LISTED).enumerate() {
        let _ = write!(text, "{}{id}", if i == 0 { "" } else { ", " });
    }
    if ids.len() > LISTED {
        let _ = write!(text, " and {} more", ids.len() - LISTED);
    }
    text.push(')');
    text
}

/// The log line for going from `before` to `now`; None when nothing worth a line changed
/// (sizes moved, but every shard kept its state).
fn describe(before: Option<&Summary>, now: &Summary) -> Option<String> {
    let mut line = format!("configuration: {} nodes, {} shards", now.nodes, now.shards);
    if let Some(writable) = &now.writable {
        let _ = write!(line, ", {} writable", writable.len());
    }
    let Some(before) = before else {
        return Some(line);
    };
    if before == now {
        return None;
    }
    let (Some(was), Some(is)) = (&before.writable, &now.writable) else {
        return Some(line);
    };
    let stopped: Vec<&String> = was.difference(is).collect();
    let started: Vec<&String> = is.difference(was).collect();
    if !stopped.is_empty() {
        let _ = write!(
            line,
            "; no longer writable: {}",
            counted(stopped.into_iter())
        );
    }
    if !started.is_empty() {
        let _ = write!(line, "; now writable: {}", counted(started.into_iter()));
    }
    Some(line)
}

/// Publishes snapshots to the process, and logs each change once.
pub(super) struct Publisher {
    cell: Arc<SnapshotCell>,
    /// What the last build was waiting for, to log a change only once.
    waiting_for: Option<String>,
    /// What the last logged configuration looked like, to log what changed.
    logged: Option<Summary>,
    /// Whether this process reads shard sizes (and so knows which shards are writable).
    reads_sizes: bool,
}

impl Publisher {
    pub(super) fn new(cell: Arc<SnapshotCell>, reads_sizes: bool) -> Publisher {
        Publisher {
            cell,
            waiting_for: None,
            logged: None,
            reads_sizes,
        }
    }

    fn wait_for(&mut self, what: Option<String>) {
        if what != self.waiting_for {
            if let Some(what) = &what {
                log_line!("waiting for {what}");
            }
            self.waiting_for = what;
        }
    }

    /// Publishes a build's snapshot and logs what changed; or logs what keeps it back.
    pub(super) fn publish(&mut self, built: Result<Snapshot, String>) {
        match built {
            Ok(snapshot) => {
                self.wait_for(None);
                let summary = Summary::of(&snapshot, self.reads_sizes);
                if let Some(line) = describe(self.logged.as_ref(), &summary) {
                    log_line!("{line}");
                }
                self.logged = Some(summary);
                self.cell.publish(snapshot);
            }
            Err(why) => self.wait_for(Some(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(shards: usize, writable: &[u32]) -> Summary {
        Summary {
            nodes: 4,
            shards,
            writable: Some(writable.iter().map(u32::to_string).collect()),
        }
    }

    #[test]
    fn a_process_that_reads_no_sizes_says_nothing_of_writable_shards() {
        let blind = Summary {
            nodes: 4,
            shards: 2,
            writable: None,
        };
        assert_eq!(
            describe(None, &blind).as_deref(),
            Some("configuration: 4 nodes, 2 shards")
        );
    }

    #[test]
    fn lines_count_ids_and_list_only_a_few() {
        let all: Vec<u32> = (1..=1000).collect();
        let first = summary(1000, &all);
        assert_eq!(
            describe(None, &first).as_deref(),
            Some("configuration: 4 nodes, 1000 shards, 1000 writable")
        );
        assert_eq!(describe(Some(&first), &summary(1000, &all)), None);
        let fewer = summary(1000, &all[20..]);
        let line = describe(Some(&first), &fewer).unwrap_or_default();
        assert!(
            line.ends_with("980 writable; no longer writable: 20 (1, 10, 11, 12, 13, 14, 15, 16, 17, 18 and 10 more)"),
            "{line}"
        );
        let back = describe(Some(&fewer), &summary(1000, &all[19..])).unwrap_or_default();
        assert!(
            back.ends_with("981 writable; now writable: 1 (20)"),
            "{back}"
        );
    }
}
