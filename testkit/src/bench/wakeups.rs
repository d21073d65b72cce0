//! `bp-bench wakeups`: how long one `may` coroutine waits to be woken by others, in the
//! three shapes the coordinator could use, over the production Redis transport on two
//! real Redis servers.
//!
//! An earlier build saw uploads wait 30-60 s when a coroutine joined helper coroutines,
//! and dropped them. This looks for such a stall where it would show: many coroutines at
//! once (each runs one operation after another, and the time of each is recorded), in a
//! quiet phase and in a phase where one Redis server stops answering for 2 s (`DEBUG
//! SLEEP`), so that timeouts fire while others wait.
//!
//! - `join`: spawn a coroutine per server, each sends a `PING`; join them.
//! - `scope+channel`: scoped coroutines report on a channel, read without a timeout
//!   (the shape `--sync-copies` uses).
//! - `group commit`: the coordinator's `ReplicationQueue::push`, where concurrent pushes
//!   share one `SADD` and followers are woken by the leader.

use crate::RedisServer;
use argh::FromArgs;
use backpack::duration_arg::parse_duration;
use backpack::replication_queue::ReplicationQueue;
use backpack::transport::redis::RedisPool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(FromArgs)]
#[argh(subcommand, name = "wakeups")]
/// How long a may coroutine waits to be woken by others (join, scoped coroutines with a
/// channel, the queue's group commit), on two real Redis servers, quiet and with one
/// server asleep for 2 s.
pub struct WakeupsArgs {
    /// coroutines at once (default 64)
    #[argh(option, default = "64")]
    concurrency: usize,
    /// length of each phase (default 8s)
    #[argh(
        option,
        default = "Duration::from_secs(8)",
        from_str_fn(parse_duration)
    )]
    duration: Duration,
    /// may worker threads (default 2)
    #[argh(option, default = "2")]
    workers: usize,
}

impl WakeupsArgs {
    pub fn run(self) -> Result<(), String> {
        run_wakeups(self.concurrency.max(1), self.duration, self.workers)
    }
}

/// Each Redis command's timeout: a stalled server costs this, no more.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone, Copy)]
enum Shape {
    Join,
    ScopeChannel,
    GroupCommit,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Join => "join",
            Shape::ScopeChannel => "scope+channel",
            Shape::GroupCommit => "group commit",
        }
    }
}

fn ping(pool: &RedisPool) {
    let _ = pool.with(|conn| redis::cmd("PING").query::<String>(conn));
}

/// One operation of `shape`.
fn operation(shape: Shape, queue: &ReplicationQueue, n: u64) {
    match shape {
        Shape::Join => {
            let helpers: Vec<_> = queue
                .pools
                .iter()
                .map(|pool| {
                    let pool = Arc::clone(pool);
                    may::go!(move || ping(&pool))
                })
                .collect();
            for helper in helpers {
                let _ = helper.join();
            }
        }
        Shape::ScopeChannel => may::coroutine::scope(|scope| {
            let (done, inbox) = may::sync::mpsc::channel();
            for pool in &queue.pools {
                let done = done.clone();
                may::go!(scope, move || {
                    ping(pool);
                    let _ = done.send(());
                });
            }
            drop(done);
            let mut got = 0;
            while got < queue.pools.len() {
                match inbox.recv() {
                    Ok(()) => got += 1,
                    Err(_) => break,
                }
            }
        }),
        Shape::GroupCommit => {
            let item = format!(r#"{{"from":["1"],"to":"2","path":"/wakeups/{n}"}}"#);
            let _ = queue.push(&[item], backpack::affinity::Home::default());
        }
    }
}

/// Latencies of every operation in one phase, sorted.
fn phase(
    shape: Shape,
    queue: &Arc<ReplicationQueue>,
    concurrency: usize,
    length: Duration,
) -> Vec<Duration> {
    let times = Arc::new(Mutex::new(Vec::new()));
    let end = Instant::now() + length;
    let workers: Vec<_> = (0..concurrency)
        .map(|c| {
            let (queue, times) = (Arc::clone(queue), Arc::clone(&times));
            may::go!(move || {
                let mut mine = Vec::new();
                let mut n = (c as u64) << 32;
                while Instant::now() < end {
                    let started = Instant::now();
                    operation(shape, &queue, n);
                    mine.push(started.elapsed());
                    n += 1;
                }
                if let Ok(mut all) = times.lock() {
                    all.extend(mine);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    let mut times = times.lock().map(|t| t.clone()).unwrap_or_default();
    times.sort();
    times
}

fn row(shape: Shape, phase_name: &str, times: &[Duration]) -> String {
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let over = times
        .iter()
        .filter(|t| **t > Duration::from_secs(2))
        .count();
    format!(
        "| {} | {phase_name} | {} | {:.2} | {:.2} | {:.1} | {over} |",
        shape.name(),
        times.len(),
        at(0.5),
        at(0.99),
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    )
}

/// Runs every shape, quiet and then with one server asleep; prints a table.
fn run_wakeups(concurrency: usize, length: Duration, workers: usize) -> Result<(), String> {
    may::config().set_workers(workers.max(1));
    let sandbox = crate::Sandbox::new("bench-wakeups").map_err(|e| e.to_string())?;
    let servers = [
        RedisServer::start(&sandbox, "redis-1").map_err(|e| e.to_string())?,
        RedisServer::start(&sandbox, "redis-2").map_err(|e| e.to_string())?,
    ];
    let pools = servers
        .iter()
        .map(|server| {
            let addr = server.address().parse().map_err(|_| "a Redis address")?;
            Ok(Arc::new(RedisPool::new(addr, REDIS_TIMEOUT)))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let queue = Arc::new(ReplicationQueue::new("wakeups".into(), pools));
    println!(
        "\n{concurrency} coroutines, {workers} worker threads, {}s per phase; Redis timeout {} ms\n",
        length.as_secs_f64(),
        REDIS_TIMEOUT.as_millis()
    );
    println!("| shape | phase | operations | p50 ms | p99 ms | max ms | over 2 s |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for shape in [Shape::Join, Shape::ScopeChannel, Shape::GroupCommit] {
        println!(
            "{}",
            row(shape, "quiet", &phase(shape, &queue, concurrency, length))
        );
        let asleep = Arc::new(AtomicBool::new(true));
        let address = servers[0].address();
        let sleeper = {
            let asleep = Arc::clone(&asleep);
            std::thread::spawn(move || {
                std::thread::sleep(length / 4);
                let slept = redis::Client::open(format!("redis://{address}/"))
                    .and_then(|client| client.get_connection())
                    .and_then(|mut conn| {
                        redis::cmd("DEBUG")
                            .arg("SLEEP")
                            .arg(2)
                            .query::<()>(&mut conn)
                    });
                asleep.store(slept.is_ok(), Ordering::SeqCst);
            })
        };
        let times = phase(shape, &queue, concurrency, length);
        let _ = sleeper.join();
        let name = if asleep.load(Ordering::SeqCst) {
            "one server asleep 2 s"
        } else {
            "(DEBUG SLEEP failed)"
        };
        println!("{}", row(shape, name, &times));
    }
    Ok(())
}
