//! Checking one shard: every key of every node's index, compared across the shard's nodes.
//!
//! Memory stays bounded however many files a node has: node i's keys are streamed with
//! `SCAN`, each batch is looked up on every node with one `MGET` per node, and a key is
//! judged only when scanning the first node (in the shard's order) that has it, so each
//! file is judged once and no key set is ever held. Keys that look short of a copy wait
//! (at most `PENDING_MOST` of them) until `--grace` has passed since they were seen, and
//! are judged on a fresh look: an upload still being replicated is not a finding.

use super::index::{is_bookkeeping, Entry, NodeIndex};
use crate::affinity::Home;
use crate::error::Result;
use crate::replication_queue::{self, ReplicationQueue};
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Keys waiting for their grace at most; the scan waits when there are more.
const PENDING_MOST: usize = 100_000;

/// How often a check says how far it is, scanning or waiting.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// How far a check is, told every `REPORT_EVERY`.
pub enum Progress<'a> {
    /// Scanning `node`: keys scanned on it so far, and the counts so far.
    Scanning {
        node: &'a str,
        scanned: u64,
        tally: &'a Tally,
    },
    /// Waiting out the grace period of `keys` keys whose copies differ; the next is
    /// judged in `next_in`.
    Waiting { keys: usize, next_in: Duration },
}

pub struct CheckSettings {
    /// Push queue items for what can be repaired.
    pub repair: bool,
    /// Items pushed per second at most.
    pub rate: f64,
    pub grace: Duration,
    /// Keys per `SCAN` step and lookup.
    pub batch: usize,
}

/// What one shard holds, node by node (indexes as in the shard's node list).
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub files: u64,
    pub present: Vec<u64>,
    pub missing: Vec<u64>,
    /// Bytes of the files each node holds.
    pub bytes: Vec<u64>,
    pub mismatches: u64,
    /// Length mismatches with no strict majority: reported, not repaired.
    pub no_majority: u64,
    pub not_records: u64,
    /// Missing copies skipped because an item for them is queued.
    pub queued: u64,
    pub pushed: u64,
}

impl Tally {
    pub fn is_whole(&self) -> bool {
        self.missing.iter().all(|&m| m == 0) && self.mismatches == 0
    }
}

/// What a key needs, from what each node holds.
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    /// Nodes that hold the agreed copy (the sources of a repair).
    good: Vec<usize>,
    /// Nodes to copy to: missing the file, or holding another length than the majority.
    to: Vec<usize>,
    /// How many of `to` hold a wrong length.
    mismatched: usize,
    /// The lengths disagree and no strict majority settles it.
    no_majority: bool,
}

fn judge(row: &[Entry]) -> Verdict {
    let lengths: Vec<Option<u64>> = row.iter().map(|e| e.length()).collect();
    let held = |length: u64| lengths.iter().filter(|l| **l == Some(length)).count();
    let present: Vec<u64> = lengths.iter().flatten().copied().collect();
    let all_agree = present.windows(2).all(|w| w[0] == w[1]);
    let agreed = present
        .iter()
        .copied()
        .find(|&length| held(length) * 2 > row.len())
        .or_else(|| present.first().copied().filter(|_| all_agree));
    let Some(agreed) = agreed else {
        return Verdict {
            good: Vec::new(),
            to: Vec::new(),
            mismatched: 0,
            no_majority: true,
        };
    };
    let good = (0..row.len())
        .filter(|&j| lengths[j] == Some(agreed))
        .collect();
    let to: Vec<usize> = (0..row.len())
        .filter(|&j| lengths[j] != Some(agreed))
        .collect();
    let mismatched = to.iter().filter(|&&j| lengths[j].is_some()).count();
    Verdict {
        good,
        to,
        mismatched,
        no_majority: false,
    }
}

/// The shard's check, as it runs.
pub struct ShardCheck<'a> {
    pub nodes: Vec<NodeIndex>,
    pub settings: &'a CheckSettings,
    /// Copies an item is queued for: (to node, path).
    pub queued: &'a HashSet<(String, String)>,
    pub queue: &'a ReplicationQueue,
    pub tally: Tally,
    pending: VecDeque<(Instant, Vec<u8>)>,
    next_push: Instant,
}

impl<'a> ShardCheck<'a> {
    pub fn new(
        nodes: Vec<NodeIndex>,
        settings: &'a CheckSettings,
        queued: &'a HashSet<(String, String)>,
        queue: &'a ReplicationQueue,
    ) -> ShardCheck<'a> {
        let n = nodes.len();
        ShardCheck {
            nodes,
            settings,
            queued,
            queue,
            tally: Tally {
                present: vec![0; n],
                missing: vec![0; n],
                bytes: vec![0; n],
                ..Tally::default()
            },
            pending: VecDeque::new(),
            next_push: Instant::now(),
        }
    }

    /// Every node's keys; `progress` hears how far it is every `REPORT_EVERY`, also while
    /// it waits out the grace period.
    pub fn run(&mut self, mut progress: impl FnMut(Progress<'_>)) -> Result<()> {
        let mut last_report = Instant::now();
        for i in 0..self.nodes.len() {
            let (mut cursor, mut scanned) = (0u64, 0u64);
            loop {
                let (next, mut keys) = self.nodes[i].scan(cursor, self.settings.batch)?;
                keys.retain(|key| !is_bookkeeping(key));
                scanned += keys.len() as u64;
                let rows = self.rows(&keys)?;
                for (key, row) in keys.into_iter().zip(rows) {
                    self.seen(i, key, row);
                }
                while self.pending.len() >= PENDING_MOST {
                    self.wait_for_oldest(&mut progress, &mut last_report);
                    self.settle_due()?;
                }
                self.settle_due()?;
                if last_report.elapsed() >= REPORT_EVERY {
                    progress(Progress::Scanning {
                        node: &self.nodes[i].node,
                        scanned,
                        tally: &self.tally,
                    });
                    last_report = Instant::now();
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        while !self.pending.is_empty() {
            self.wait_for_oldest(&mut progress, &mut last_report);
            self.settle_due()?;
        }
        Ok(())
    }

    /// Sleeps until the oldest waiting key's grace is over, saying so every
    /// `REPORT_EVERY`.
    fn wait_for_oldest(&self, progress: &mut impl FnMut(Progress<'_>), last_report: &mut Instant) {
        let Some((seen, _)) = self.pending.front() else {
            return;
        };
        let due = *seen + self.settings.grace;
        loop {
            let now = Instant::now();
            if now >= due {
                return;
            }
            let report_at = *last_report + REPORT_EVERY;
            if now >= report_at {
                progress(Progress::Waiting {
                    keys: self.pending.len(),
                    next_in: due - now,
                });
                *last_report = now;
                continue;
            }
            std::thread::sleep(due.min(report_at) - now);
        }
    }

    /// Each key's entry on every node: `rows[k][j]` for key k on node j.
    fn rows(&mut self, keys: &[Vec<u8>]) -> Result<Vec<Vec<Entry>>> {
        let mut rows = vec![Vec::with_capacity(self.nodes.len()); keys.len()];
        for node in self.nodes.iter_mut() {
            for (row, entry) in rows.iter_mut().zip(node.entries(keys)?) {
                row.push(entry);
            }
        }
        Ok(rows)
    }

    /// A key found while scanning node `i`, with what every node holds.
    fn seen(&mut self, i: usize, key: Vec<u8>, row: Vec<Entry>) {
        // Judged once: when scanning the first node that has it.
        if row.iter().position(|e| *e != Entry::Absent) != Some(i) {
            return;
        }
        if row.contains(&Entry::NotRecord) || std::str::from_utf8(&key).is_err() {
            self.tally.not_records += 1;
            return;
        }
        let verdict = judge(&row);
        if verdict.to.is_empty() && !verdict.no_majority {
            self.count(&row);
        } else {
            self.pending.push_back((Instant::now(), key));
        }
    }

    fn count(&mut self, row: &[Entry]) {
        self.tally.files += 1;
        for (j, entry) in row.iter().enumerate() {
            match entry.length() {
                Some(length) => {
                    self.tally.present[j] += 1;
                    self.tally.bytes[j] += length;
                }
                None => self.tally.missing[j] += 1,
            }
        }
    }

    /// Judges the waiting keys whose grace is over, on a fresh look.
    fn settle_due(&mut self) -> Result<()> {
        let grace = self.settings.grace;
        let now = Instant::now();
        let due = self
            .pending
            .iter()
            .take_while(|(seen, _)| *seen + grace <= now)
            .count();
        let keys: Vec<Vec<u8>> = self.pending.drain(..due).map(|(_, key)| key).collect();
        for chunk in keys.chunks(self.settings.batch.max(1)) {
            let rows = self.rows(chunk)?;
            for (key, row) in chunk.iter().zip(rows) {
                self.judge_settled(key, &row)?;
            }
        }
        Ok(())
    }

    fn judge_settled(&mut self, key: &[u8], row: &[Entry]) -> Result<()> {
        if row.iter().all(|e| *e == Entry::Absent) {
            return Ok(()); // gone from every node meanwhile
        }
        if row.contains(&Entry::NotRecord) {
            self.tally.not_records += 1;
            return Ok(());
        }
        let path = format!("/{}", String::from_utf8_lossy(key));
        let verdict = judge(row);
        let mut counted: Vec<Entry> = row.to_vec();
        if verdict.no_majority {
            self.tally.no_majority += 1;
            self.tally.mismatches += 1;
        }
        let from: Vec<String> = verdict
            .good
            .iter()
            .map(|&j| self.nodes[j].node.clone())
            .collect();
        let mut mismatched = 0;
        for &j in &verdict.to {
            let to = self.nodes[j].node.clone();
            if self.queued.contains(&(to.clone(), path.clone())) {
                self.tally.queued += 1;
                counted[j] = verdict.good.first().map_or(row[j], |&g| row[g]);
                continue;
            }
            if row[j].length().is_some() {
                mismatched += 1;
            }
            if self.settings.repair {
                self.push(&replication_queue::item(&from, &to, &path))?;
            }
        }
        self.tally.mismatches += mismatched as u64;
        self.count(&counted);
        Ok(())
    }

    /// Pushes one item, at most `rate` a second.
    fn push(&mut self, item: &str) -> Result<()> {
        std::thread::sleep(self.next_push.saturating_duration_since(Instant::now()));
        self.queue.push(&[item.to_string()], Home::default())?;
        self.tally.pushed += 1;
        let gap = Duration::from_secs_f64(1.0 / self.settings.rate.max(0.001));
        // No credit for time spent idle beyond one gap: a burst after a pause stays paced.
        let floor = Instant::now().checked_sub(gap).unwrap_or_else(Instant::now);
        self.next_push = self.next_push.max(floor) + gap;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Entry::{Absent, File};

    #[test]
    fn verdicts_follow_the_majority() {
        // Missing on one of two: copy from the other.
        let v = judge(&[File(5), Absent]);
        assert_eq!((v.good, v.to, v.mismatched), (vec![0], vec![1], 0));
        // Two of three agree: the third is rewritten.
        let v = judge(&[File(5), File(7), File(5)]);
        assert_eq!((v.good, v.to, v.mismatched), (vec![0, 2], vec![1], 1));
        // One against one: reported, nothing copied.
        assert!(judge(&[File(5), File(7)]).no_majority);
        assert!(judge(&[File(5), File(7), Absent]).no_majority);
        // Whole.
        assert!(judge(&[File(5), File(5)]).to.is_empty());
    }
}
