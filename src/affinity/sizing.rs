//! How many workers should take clients: a thread that watches the process's CPU use and
//! its requests, four times a second, and sets `Steering::active`.
//!
//! Grow when the active workers are busy: the process uses at least `GROW_AT` of their
//! cores. A worker that busy queues requests, and a second core, when the machine has one
//! free, serves them sooner.
//!
//! Shrink when one worker fewer would stay below that point (`SHRINK_BELOW` of it). A worker more
//! costs CPU per request (each wakes for its own clients; measured on two cores with
//! WebDAV nodes, two workers used 1.25x the CPU per upload of one), so the CPU used now
//! overstates what fewer workers would use. The estimate is the current request rate
//! times the CPU per request last measured with one worker fewer. A shrink needs that
//! estimate to hold for `SHRINK_AFTER`, so that a pause in the load does not undo a
//! grow the next burst would need again.

use super::steering::Steering;
use std::io;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Grow when the process uses this share of the active workers' cores, or more.
const GROW_AT: f64 = 0.75;
/// Shrink when one worker fewer would stay below this share of the grow point.
const SHRINK_BELOW: f64 = 0.9;
/// How often the load is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// The least time after a change before a grow: the averages reflect the change.
const GROW_AFTER: Duration = Duration::from_millis(500);
/// How long the load must have been low before a shrink: a spare worker costs little
/// while the load is low, and one missing when a burst comes costs its first second.
const SHRINK_AFTER: Duration = Duration::from_secs(30);
/// Below this many requests per second, a sample tells nothing about CPU per request.
const FEWEST_REQUESTS: f64 = 100.0;

/// What the sizing thread knows: averages of the load, and what a request cost with
/// each number of active workers.
struct Sizing {
    /// Cores the process used, averaged over about a second.
    cores: Average,
    /// Requests per second, averaged alike.
    rate: Average,
    /// CPU seconds per request, by active workers (index 0 unused).
    cost: Vec<Average>,
    changed_at: Instant,
    /// Since when one worker fewer would have done.
    low_since: Option<Instant>,
}

/// An exponentially weighted average (half weight to each new sample).
#[derive(Default, Clone, Copy)]
struct Average(Option<f64>);

impl Average {
    fn add(&mut self, sample: f64) -> f64 {
        let value = self.0.map_or(sample, |old| 0.5 * old + 0.5 * sample);
        self.0 = Some(value);
        value
    }
}

impl Sizing {
    fn new(workers: usize, now: Instant) -> Sizing {
        Sizing {
            cores: Average::default(),
            rate: Average::default(),
            cost: vec![Average::default(); workers + 1],
            changed_at: now,
            low_since: None,
        }
    }

    /// Takes one sample (cores used and requests per second since the last) and returns
    /// the number of workers that should take clients.
    fn next(&mut self, cores: f64, rate: f64, active: usize, now: Instant) -> usize {
        let workers = self.cost.len() - 1;
        let cores = self.cores.add(cores);
        let rate = self.rate.add(rate);
        if rate >= FEWEST_REQUESTS {
            self.cost[active].add(cores / rate);
        }
        let since_change = now.duration_since(self.changed_at);
        let mut next = active;
        if active < workers && cores >= GROW_AT * active as f64 && since_change >= GROW_AFTER {
            next = active + 1;
        } else if active > 1 {
            let per_request = self.cost[active - 1].0.unwrap_or(cores / rate.max(1.0));
            let fewer = rate * per_request;
            if fewer <= SHRINK_BELOW * GROW_AT * (active - 1) as f64 {
                let low_since = *self.low_since.get_or_insert(now);
                if now.duration_since(low_since) >= SHRINK_AFTER {
                    next = active - 1;
                }
            } else {
                self.low_since = None;
            }
        }
        if next != active {
            self.changed_at = now;
            self.low_since = None;
        }
        next
    }
}

/// CPU seconds the process has used, all threads.
fn process_cpu_seconds() -> Option<f64> {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// Starts the thread that sets `steering`'s active workers from the load; it ends when
/// the steering is dropped. Without it, every client stays with the first worker.
pub fn start(steering: &Arc<Steering>) -> io::Result<()> {
    if steering.workers() < 2 {
        return Ok(());
    }
    let steering = Arc::downgrade(steering);
    std::thread::Builder::new()
        .name("sizing".into())
        .spawn(move || follow_the_load(steering))
        .map(|_| ())
}

/// The sizing thread's loop; it ends when the steering is dropped.
fn follow_the_load(steering: Weak<Steering>) {
    let Some(workers) = steering.upgrade().map(|s| s.workers()) else {
        return;
    };
    let mut sizing = Sizing::new(workers, Instant::now());
    let mut last = (process_cpu_seconds().unwrap_or(0.0), 0u64, Instant::now());
    loop {
        std::thread::sleep(SAMPLE_EVERY);
        let Some(steering) = steering.upgrade() else {
            return;
        };
        let now = Instant::now();
        let (cpu, requests) = (process_cpu_seconds().unwrap_or(last.0), steering.requests());
        let seconds = now.duration_since(last.2).as_secs_f64().max(1e-3);
        let cores = (cpu - last.0) / seconds;
        let rate = requests.saturating_sub(last.1) as f64 / seconds;
        last = (cpu, requests, now);
        let active = steering.active();
        let next = sizing.next(cores, rate, active, now);
        if next != active {
            crate::log_line!(
                "{next} of {workers} workers take clients ({:.0} requests/s, the process at {:.2} cores)",
                sizing.rate.0.unwrap_or(0.0),
                sizing.cores.0.unwrap_or(0.0)
            );
            steering.set_active(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `seconds` of samples of a steady load (cores and requests per second with
    /// so many active workers); the active workers at the end.
    fn run(
        sizing: &mut Sizing,
        now: &mut Instant,
        mut active: usize,
        load: impl Fn(usize) -> (f64, f64),
        seconds: f64,
    ) -> usize {
        for _ in 0..(seconds / SAMPLE_EVERY.as_secs_f64()) as usize {
            *now += SAMPLE_EVERY;
            let (cores, rate) = load(active);
            active = sizing.next(cores, rate, active, *now);
        }
        active
    }

    #[test]
    fn a_busy_worker_gets_help_and_an_idle_second_one_is_let_go() {
        let mut now = Instant::now();
        let mut sizing = Sizing::new(2, now);
        // WebDAV nodes on the same machine: one worker at 0.6 cores stays alone.
        let webdav = |active| (if active == 1 { 0.6 } else { 0.75 }, 7000.0);
        assert_eq!(run(&mut sizing, &mut now, 1, webdav, 10.0), 1);
        // Sink nodes: one worker at 0.9 cores gets a second within a second, and two at
        // 1.1 cores stay two.
        let sink = |active| {
            if active == 1 {
                (0.9, 21000.0)
            } else {
                (1.1, 24000.0)
            }
        };
        assert_eq!(run(&mut sizing, &mut now, 1, sink, 1.0), 2);
        assert_eq!(run(&mut sizing, &mut now, 2, sink, 10.0), 2);
        // Back to the WebDAV load, which two workers serve at 0.75 cores: one worker would
        // do it at 0.6, so it is back to one, but not at once.
        assert_eq!(run(&mut sizing, &mut now, 2, webdav, 20.0), 2);
        assert_eq!(run(&mut sizing, &mut now, 2, webdav, 12.0), 1);
        assert_eq!(run(&mut sizing, &mut now, 1, webdav, 10.0), 1);
    }

    #[test]
    fn a_pause_shorter_than_the_shrink_delay_keeps_the_workers() {
        let mut now = Instant::now();
        let mut sizing = Sizing::new(4, now);
        let busy = |active: usize| (active as f64 * 0.95, active as f64 * 20000.0);
        let active = run(&mut sizing, &mut now, 1, busy, 3.0);
        assert_eq!(active, 4, "grows one worker at a time while busy");
        let idle = |_| (0.0, 0.0);
        assert_eq!(run(&mut sizing, &mut now, active, idle, 20.0), 4);
        assert_eq!(run(&mut sizing, &mut now, active, idle, 12.0), 3);
    }
}
