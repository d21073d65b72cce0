//! The load of `bp-bench scale`: simulated uploads placed at a steady rate, and optional
//! rewrites of the size nodes at a steady rate, each on its own thread.

use super::sim::SimCoordinator;
use super::world::World;
use backpack::zk_state::ZkState;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Old-style coordinators flush this often, as the old coordinator did.
const OLD_FLUSH_EVERY: Duration = Duration::from_secs(3);

pub struct Generator {
    stop: Arc<AtomicBool>,
    placer: JoinHandle<Vec<SimCoordinator>>,
    rewriter: Option<JoinHandle<()>>,
    /// Bytes placed so far by every simulated coordinator.
    placed: Arc<AtomicU64>,
    /// Bytes the rewriter added, and its attempts (each one read and one write).
    rewritten: Arc<AtomicU64>,
    attempts: Arc<AtomicU64>,
}

impl Generator {
    /// Starts placing `rate` uploads of `size` a second with the world's simulated
    /// coordinators, and `rewrites` size-node rewrites a second.
    pub fn start(world: &World, rate: f64, size: u64, rewrites: f64) -> Generator {
        let stop = Arc::new(AtomicBool::new(false));
        let placed = Arc::new(AtomicU64::new(0));
        let placer = {
            let sims = world.take_sims();
            let (stop, placed) = (Arc::clone(&stop), Arc::clone(&placed));
            std::thread::spawn(move || place(sims, rate, size, &stop, &placed))
        };
        let rewritten = Arc::new(AtomicU64::new(0));
        let attempts = Arc::new(AtomicU64::new(0));
        let rewriter = (rewrites > 0.0).then(|| {
            let stop = Arc::clone(&stop);
            let (bytes, tries) = (Arc::clone(&rewritten), Arc::clone(&attempts));
            let (zk, root, shards) = (world.zk.clone(), world.root.clone(), world.shards);
            std::thread::spawn(move || {
                if let Err(err) = rewrite(&zk, &root, shards, rewrites, &stop, &bytes, &tries) {
                    eprintln!("the rewriter stopped: {err}");
                }
            })
        });
        Generator {
            stop,
            placer,
            rewriter,
            placed,
            rewritten,
            attempts,
        }
    }

    pub fn placed(&self) -> u64 {
        self.placed.load(Ordering::Relaxed)
    }

    pub fn rewritten(&self) -> u64 {
        self.rewritten.load(Ordering::Relaxed)
    }

    pub fn rewrite_attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Stops both threads: the simulated coordinators come back, with the bytes the
    /// rewriter added in all.
    pub fn stop(self) -> (Vec<SimCoordinator>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(rewriter) = self.rewriter {
            let _ = rewriter.join();
        }
        let rewritten = self.rewritten.load(Ordering::Relaxed);
        (self.placer.join().unwrap_or_default(), rewritten)
    }
}

/// Every 10 ms, places what the rate owes, round-robin over the simulated coordinators;
/// old-style ones flush every 3 s.
fn place(
    mut sims: Vec<SimCoordinator>,
    rate: f64,
    size: u64,
    stop: &AtomicBool,
    placed: &AtomicU64,
) -> Vec<SimCoordinator> {
    let mut rng = rand::rng();
    let started = Instant::now();
    let mut done = 0u64;
    let mut next_old_flush = started + OLD_FLUSH_EVERY;
    while !stop.load(Ordering::Relaxed) {
        let owed = (rate * started.elapsed().as_secs_f64()) as u64;
        // Old-style coordinators place with the first current one's view.
        if let Some(view) = sims.iter().find_map(SimCoordinator::snapshot) {
            while done < owed {
                let i = (done % sims.len() as u64) as usize;
                let own = sims[i].snapshot().unwrap_or_else(|| Arc::clone(&view));
                if sims[i].upload(&own, size, &mut rng) {
                    placed.fetch_add(size, Ordering::Relaxed);
                }
                done += 1;
            }
        }
        if Instant::now() >= next_old_flush {
            for sim in sims.iter_mut() {
                if let Err(err) = sim.old_flush() {
                    eprintln!("an old-style coordinator failed to flush: {err}");
                }
            }
            next_old_flush += OLD_FLUSH_EVERY;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    sims
}

/// Adds one byte to shard 1, 2, 3, ... in turn, `rate` times a second, with
/// compare-and-set (as a coordinator's flush would).
fn rewrite(
    zk: &str,
    root: &str,
    shards: usize,
    rate: f64,
    stop: &AtomicBool,
    bytes: &AtomicU64,
    attempts: &AtomicU64,
) -> Result<(), String> {
    let store = ZkState::open(zk, root, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut done = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let owed = (rate * started.elapsed().as_secs_f64()) as u64;
        while done < owed && !stop.load(Ordering::Relaxed) {
            let path = store
                .paths()
                .shard_size(&(done % shards as u64 + 1).to_string());
            store
                .update(&path, |doc| {
                    attempts.fetch_add(1, Ordering::Relaxed);
                    backpack::state::shard_size::add_current(&path, doc, 1)
                })
                .map_err(|e| e.to_string())?;
            bytes.fetch_add(1, Ordering::Relaxed);
            done += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}
