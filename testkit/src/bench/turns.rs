//! How the sides of a matrix cell take turns on the same nodes, and what a coordinator's
//! turns measured.
//!
//! The sides of a cell (direct, the nginx proxy, one or two coordinators) share the nodes,
//! and a turn leaves the nodes in a state the next turn meets: with WebDAV nodes, files
//! the kernel has yet to write back. So the cell is cut into slices, each side takes one
//! turn per slice, the disk writes back before every turn, and the orders are balanced:
//! over a round of slices, every side runs right after every other side once, and never
//! right after itself (`slice_orders`).

use super::load::{run, LoadReport, LoadSpec};
use crate::measure::cpu_seconds;
use crate::LocalCluster;
use std::path::Path;

/// What takes a turn in a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Direct,
    Proxy,
    First,
    Second,
    /// The proxy and the first coordinator again, with wrk as the client.
    ProxyWrk,
    FirstWrk,
}

/// The order of `sides` in each of `slices` slices. The turns run as one sequence, slice
/// after slice, and what a turn costs depends on the turn before it: measured with
/// WebDAV nodes, a coordinator's turn right after its own used the least CPU per upload,
/// and right after the direct side the most (0.094-0.098 against 0.107-0.108 ms). So
/// the slices come in rounds of n-1 (for n sides) whose sequence, read as a cycle, has
/// every side follow every other side exactly once and never itself. With six slices
/// and three sides, each side follows each other one twice. Two earlier orders let one
/// coordinator follow the direct side more often than the other: rotating the order
/// each slice (four slices of six against two), and orders balanced only within each
/// slice (a Williams design: three against two, across the slices' borders). With the
/// latter, two identical coordinators differed by 0.93x in CPU per upload over 30
/// slices (95 % range 0.85-0.97x), and by 1.07x (1.00-1.12x) with the two listed the
/// other way round.
pub fn slice_orders(sides: &[Side], slices: u32) -> Vec<Vec<Side>> {
    let round = balanced_round(sides.len());
    (0..slices as usize)
        .map(|slice| {
            round[slice % round.len()]
                .iter()
                .map(|&i| sides[i])
                .collect()
        })
        .collect()
}

/// n-1 orders of 0..n whose concatenation, as a cycle, holds every ordered pair of two
/// different numbers once (an Eulerian circuit of the complete directed graph, cut into
/// orders). Found by a depth-first search, which is instant for the four sides a cell
/// has at most.
fn balanced_round(n: usize) -> Vec<Vec<usize>> {
    let first: Vec<usize> = (0..n).collect();
    if n <= 2 {
        return vec![first];
    }
    let mut used = vec![false; n * n];
    for pair in first.windows(2) {
        used[pair[0] * n + pair[1]] = true;
    }
    let mut sequence = first;
    if extend(n, &mut sequence, &mut used) {
        sequence.chunks(n).map(<[usize]>::to_vec).collect()
    } else {
        // Not reached for n <= 5 (checked by a test); rotations keep every side moving.
        (0..n)
            .map(|shift| (0..n).map(|k| (k + shift) % n).collect())
            .collect()
    }
}

/// Appends numbers to `sequence` until it holds n-1 whole orders whose pairs (with the
/// wrap from the last to the first) are all unused; false when no way is left.
fn extend(n: usize, sequence: &mut Vec<usize>, used: &mut [bool]) -> bool {
    if sequence.len() == n * (n - 1) {
        let (last, first) = (sequence[sequence.len() - 1], sequence[0]);
        return last != first && !used[last * n + first];
    }
    let row_start = sequence.len() - sequence.len() % n;
    let last = sequence[sequence.len() - 1];
    for next in 0..n {
        if next == last || used[last * n + next] || sequence[row_start..].contains(&next) {
            continue;
        }
        used[last * n + next] = true;
        sequence.push(next);
        if extend(n, sequence, used) {
            return true;
        }
        sequence.pop();
        used[last * n + next] = false;
    }
    false
}

/// Has the disk write back what earlier turns left in memory, so that the next turn
/// does not pay for them: otherwise, with WebDAV nodes, whichever side ran while the
/// kernel wrote back the files of an earlier one was slower and used more CPU per upload.
pub fn write_back() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// Every turn's numbers, one tab-separated line each (`bp-bench matrix --turn-log`): how
/// they move within a run, which a table's medians hide. With WebDAV nodes on this
/// machine's disk, one run's direct turns swung between 3,000 and 23,000 uploads/s, and
/// the coordinators' CPU per upload between 0.04 and 0.15 ms with them.
pub struct TurnLog {
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl TurnLog {
    /// A log written to `path` (created or truncated), or one that records nothing.
    pub fn create(path: Option<&Path>) -> Result<TurnLog, String> {
        let Some(path) = path else {
            return Ok(TurnLog { out: None });
        };
        let file = std::fs::File::create(path)
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        let mut log = TurnLog {
            out: Some(std::io::BufWriter::new(file)),
        };
        log.line("size\tc\tslice\tside\tuploads_per_s\tcpu_ms_per_upload\tuploads");
        Ok(log)
    }

    /// One turn of `side` (direct, proxy, A or B); `cpu_ms` only for a coordinator.
    pub fn record(
        &mut self,
        cell: (&str, usize),
        slice: usize,
        side: &str,
        turn: (f64, Option<f64>, u64),
    ) {
        let (rps, cpu_ms, uploads) = turn;
        let cpu = cpu_ms.map_or(String::new(), |ms| format!("{ms:.4}"));
        let (size, c) = cell;
        self.line(&format!(
            "{size}\t{c}\t{slice}\t{side}\t{rps:.0}\t{cpu}\t{uploads}"
        ));
    }

    fn line(&mut self, text: &str) {
        use std::io::Write;
        if let Some(out) = &mut self.out {
            // A log line that cannot be written costs the log, not the run.
            if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
                self.out = None;
            }
        }
    }
}

/// The median of `values` (0 when there are none).
pub fn median(values: Vec<f64>) -> f64 {
    Median::of(values).value
}

/// A median, with the range that holds the true median with 95 % confidence (or more:
/// the order statistics given by the sign test, which assumes nothing of the values'
/// distribution but that they are independent). With six values the range is the
/// lowest to the highest; with forty, the 14th to the 27th.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Median {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl Median {
    pub fn of(mut values: Vec<f64>) -> Median {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let value = match n {
            0 => 0.0,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        };
        // The largest k with P(Binomial(n, 1/2) < k) <= 2.5 %: the true median lies
        // between the k-th lowest and the k-th highest value.
        let mut k = 0;
        let mut below = 0.0; // P(B < k + 1) as k grows
        let mut term = 0.5f64.powi(n as i32); // P(B = k)
        while k < n / 2 {
            below += term;
            if below > 0.025 {
                break;
            }
            term *= (n - k) as f64 / (k + 1) as f64;
            k += 1;
        }
        if k == 0 {
            return Median {
                value,
                low: f64::NAN,
                high: f64::NAN,
            };
        }
        Median {
            value,
            low: values[k - 1],
            high: values[n - k],
        }
    }

    /// As a ratio with its range: `0.98x (0.93-1.04)`.
    pub fn as_ratio(&self) -> String {
        if self.low.is_nan() {
            return format!("{:.2}x", self.value);
        }
        format!("{:.2}x ({:.2}-{:.2})", self.value, self.low, self.high)
    }
}

/// One coordinator under test: its URL, its process, and what its turns gave in a cell.
pub struct Contender {
    pub url: Vec<String>,
    pub pid: u32,
    pub report: LoadReport,
    cpu: f64,
    /// Each turn's uploads per second and CPU milliseconds per upload.
    turns: Vec<(f64, f64)>,
    /// The header lines of a turn's uploads, from the turn's path prefix: an upload
    /// token, when the coordinator requires them.
    pub headers_for: Option<Box<dyn Fn(&str) -> String>>,
}

impl Contender {
    /// Starts a coordinator of the build `bin` on the cluster.
    pub fn start(
        cluster: &LocalCluster,
        bin: &Path,
        name: &str,
        flags: &[String],
    ) -> Result<(Contender, crate::CoordinatorProcess), String> {
        let flags: Vec<&str> = std::iter::once("--quiet")
            .chain(flags.iter().map(String::as_str))
            .collect();
        let coordinator = cluster
            .start_coordinator_from(bin, name, &flags)
            .map_err(|e| e.to_string())?;
        let pid = coordinator
            .process
            .pid()
            .ok_or("the coordinator is not running")?;
        let contender = Contender {
            url: vec![coordinator.url("")],
            pid,
            report: LoadReport::default(),
            cpu: 0.0,
            turns: Vec::new(),
            headers_for: None,
        };
        Ok((contender, coordinator))
    }

    /// One turn: the load, and the coordinator's CPU over it. Returns the turn's
    /// uploads per second, CPU milliseconds per upload, and uploads.
    pub fn turn(&mut self, mut load: LoadSpec) -> Result<(f64, f64, u64), String> {
        if let Some(headers_for) = &self.headers_for {
            load.headers = headers_for(&load.prefix);
        }
        let before = cpu_seconds(self.pid).unwrap_or(0.0);
        let report = run(&load)?;
        let cpu = cpu_seconds(self.pid).unwrap_or(0.0) - before;
        let turn = (report.rps(), cpu * 1000.0 / report.ok.max(1) as f64);
        self.turns.push(turn);
        let uploads = report.ok;
        self.report.merge(report);
        self.cpu += cpu;
        Ok((turn.0, turn.1, uploads))
    }

    /// CPU milliseconds per upload over the cell.
    pub fn cpu_ms(&self) -> f64 {
        self.cpu * 1000.0 / (self.report.ok.max(1) as f64)
    }

    /// The median over this cell's turns of CPU milliseconds per upload.
    pub fn median_cpu_ms(&self) -> f64 {
        median(self.turns.iter().map(|turn| turn.1).collect())
    }

    /// The median over the cell's slices of `other`'s uploads per second over ours, and
    /// of its CPU per upload over ours: each slice's turns met the nodes closest in time.
    pub fn paired_ratios(&self, other: &Contender) -> (Median, Median) {
        let pairs = || self.turns.iter().zip(&other.turns);
        (
            Median::of(pairs().map(|(a, b)| b.0 / a.0.max(1e-9)).collect()),
            Median::of(pairs().map(|(a, b)| b.1 / a.1.max(1e-9)).collect()),
        )
    }

    pub fn reset(&mut self) {
        self.report = LoadReport::default();
        self.cpu = 0.0;
        self.turns.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Side::*;

    /// How often each side runs right after each one, over the slices run as one cycle.
    fn followers(orders: &[Vec<Side>], sides: &[Side]) -> Vec<usize> {
        let index = |side: Side| sides.iter().position(|&s| s == side).unwrap();
        let turns: Vec<Side> = orders.iter().flatten().copied().collect();
        let mut counts = vec![0; sides.len() * sides.len()];
        for (i, &side) in turns.iter().enumerate() {
            let next = turns[(i + 1) % turns.len()];
            counts[index(side) * sides.len() + index(next)] += 1;
        }
        counts
    }

    #[test]
    fn every_side_follows_every_other_once_a_round_and_never_itself() {
        for sides in [
            &[Direct, First][..],
            &[Direct, First, Second][..],
            &[Direct, Proxy, First, Second][..],
        ] {
            let n = sides.len();
            let orders = slice_orders(sides, 2 * (n as u32 - 1));
            for order in &orders {
                let mut sorted = order.clone();
                sorted.sort_by_key(|side| *side as usize);
                assert_eq!(sorted, sides, "{orders:?}");
            }
            for (pair, count) in followers(&orders, sides).iter().enumerate() {
                let want = if pair / n == pair % n { 0 } else { 2 };
                assert_eq!(*count, want, "{sides:?}: {orders:?}");
            }
        }
        // Five would do too: the search is general.
        assert_eq!(balanced_round(5).len(), 4);
        assert_eq!(balanced_round(5)[0], vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_median_comes_with_the_range_the_sign_test_gives() {
        let values = |n: usize| (1..=n).map(|v| v as f64).collect::<Vec<_>>();
        // Five values cannot bound a median at 95 %: 2 * (1/2)^5 = 6.25 %.
        let five = Median::of(values(5));
        assert_eq!(five.value, 3.0);
        assert!(five.low.is_nan() && five.high.is_nan());
        // Six: the lowest and the highest (2 * 1/64 = 3.1 % outside).
        assert_eq!(
            Median::of(values(6)),
            Median {
                value: 3.5,
                low: 1.0,
                high: 6.0
            }
        );
        // Forty: the 14th and the 27th value.
        let forty = Median::of(values(40));
        assert_eq!((forty.value, forty.low, forty.high), (20.5, 14.0, 27.0));
        assert_eq!(Median::of(values(6)).as_ratio(), "3.50x (1.00-6.00)");
        assert_eq!(five.as_ratio(), "3.00x");
    }

    #[test]
    fn the_orders_repeat_past_a_round() {
        let orders = slice_orders(&[Direct, First, Second], 5);
        assert_eq!(orders.len(), 5);
        assert_eq!(orders[0], vec![Direct, First, Second]);
        assert_eq!(orders[1], vec![Direct, Second, First]);
        assert_eq!(orders[2], orders[0]);
    }

    #[test]
    fn the_turn_log_has_a_line_per_turn_and_none_without_a_path() {
        let path = std::env::temp_dir().join(format!("turn-log-{}", std::process::id()));
        let mut log = TurnLog::create(Some(&path)).unwrap();
        log.record(("64kb", 64), 3, "direct", (23109.4, None, 3276));
        log.record(("64kb", 64), 3, "B", (11954.0, Some(0.06012), 3276));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("size\tc\tslice\tside"));
        assert_eq!(lines[1], "64kb\t64\t3\tdirect\t23109\t\t3276");
        assert_eq!(lines[2], "64kb\t64\t3\tB\t11954\t0.0601\t3276");
        let mut nothing = TurnLog::create(None).unwrap();
        nothing.record(("1kb", 1), 0, "A", (1.0, Some(1.0), 1));
        assert!(TurnLog::create(Some(Path::new("/nonexistent-dir/log"))).is_err());
    }
}
