//! Upload load on a cluster's coordinators, remembering every acknowledged upload.
//!
//! Closed loop: `clients` threads, each sending its next upload when the last is answered
//! (the load follows the cluster's pace). Open loop: uploads start at a fixed rate
//! whatever the answers do (the load a cluster meets in production, which does not slow
//! down when it does); a pool of senders takes them in turn.

use super::body::{body, BodySizes};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Senders an open-loop load keeps: at most this many uploads in flight (enough for
/// seconds of a silent node at the suites' rates).
const OPEN_LOOP_SENDERS: usize = 256;

#[derive(Debug, Clone, Copy)]
pub enum LoadShape {
    Closed { clients: usize, sizes: BodySizes },
    Open { per_second: f64, sizes: BodySizes },
}

/// One upload answered 200.
#[derive(Debug, Clone)]
pub struct Ack {
    pub path: String,
    pub shard: String,
    pub sizes: BodySizes,
    pub bytes: u64,
    /// Which target (coordinator) took it, when it was sent and how long the answer took.
    pub target: usize,
    pub started: Instant,
    pub latency: Duration,
}

impl Ack {
    /// When its answer came.
    pub fn answered_at(&self) -> Instant {
        self.started + self.latency
    }

    /// The bytes that were sent.
    pub fn body(&self) -> Vec<u8> {
        body(&self.path, self.sizes)
    }
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub attempted: u64,
    pub acks: Vec<Ack>,
    /// Answered with a server error (5xx): not acknowledged, the client may retry.
    pub failed_5xx: u64,
    /// No answer: the connection failed or broke.
    pub failed_connection: u64,
    /// Answers no upload of a valid file should get (4xx, or a 200 without a shard).
    pub unexpected: Vec<String>,
    /// Open loop: the longest an upload waited past its start time for a free sender.
    pub most_late: Duration,
}

/// A plain HTTP client that returns every status as a value, and gives up on an
/// exchange after a minute.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The shard id from a 200 answer.
pub fn shard_of(answer: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(answer).ok()?;
    value["shard_id"].as_str().map(str::to_string)
}

/// PUTs `path` with its body to `targets[target]` and files the answer in `outcome`.
fn upload(
    agent: &ureq::Agent,
    targets: &[String],
    target: usize,
    path: String,
    sizes: BodySizes,
    outcome: &Mutex<Outcome>,
) {
    let bytes = body(&path, sizes);
    let started = Instant::now();
    let answer = agent
        .put(&format!("{}{path}", targets[target]))
        .send(&bytes[..]);
    let answered = answer.map(|response| {
        let status = response.status().as_u16();
        (
            status,
            response.into_body().read_to_string().unwrap_or_default(),
        )
    });
    let mut o = outcome.lock().unwrap_or_else(|e| e.into_inner());
    o.attempted += 1;
    match answered {
        Ok((200, text)) => match shard_of(&text) {
            Some(shard) => o.acks.push(Ack {
                path,
                shard,
                sizes,
                bytes: bytes.len() as u64,
                target,
                started,
                latency: started.elapsed(),
            }),
            None => o
                .unexpected
                .push(format!("{path}: 200 without a shard: {text}")),
        },
        Ok((status, _)) if status >= 500 => o.failed_5xx += 1,
        Ok((status, text)) => o.unexpected.push(format!("{path}: {status} {text}")),
        Err(_) => {
            o.failed_connection += 1;
            drop(o);
            // A refused connection answers at once: do not spin on a dead coordinator.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A load running on its own threads until `finish`.
pub struct Load {
    stop: Arc<AtomicBool>,
    outcome: Arc<Mutex<Outcome>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts uploading unique paths under `/<label>/` to `targets` (base URLs), taking
    /// them in turn.
    pub fn start(targets: Vec<String>, shape: LoadShape, label: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let targets = Arc::new(targets);
        let threads = match shape {
            LoadShape::Closed { clients, sizes } => (0..clients)
                .map(|client| {
                    let (stop, outcome, targets) = (
                        Arc::clone(&stop),
                        Arc::clone(&outcome),
                        Arc::clone(&targets),
                    );
                    let label = label.to_string();
                    std::thread::spawn(move || {
                        let agent = agent();
                        let mut i = 0;
                        while !stop.load(Ordering::SeqCst) {
                            i += 1;
                            let target = (client + i) % targets.len();
                            let path = format!("/{label}/{client}/{i}.bin");
                            upload(&agent, &targets, target, path, sizes, &outcome);
                        }
                    })
                })
                .collect(),
            LoadShape::Open { per_second, sizes } => {
                open_loop(&stop, &outcome, targets, per_second, sizes, label)
            }
        };
        Load {
            stop,
            outcome,
            threads,
        }
    }

    /// Stops the load, waits for the uploads in flight, and returns what happened.
    pub fn finish(self) -> Outcome {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            if thread.join().is_err() {
                eprintln!("a load thread panicked");
            }
        }
        let mut outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *outcome)
    }
}

/// A clock thread that releases upload `i` at `start + i / per_second`, and senders that
/// take them.
fn open_loop(
    stop: &Arc<AtomicBool>,
    outcome: &Arc<Mutex<Outcome>>,
    targets: Arc<Vec<String>>,
    per_second: f64,
    sizes: BodySizes,
    label: &str,
) -> Vec<JoinHandle<()>> {
    let (sender, receiver) = mpsc::channel::<(u64, Instant)>();
    let receiver = Arc::new(Mutex::new(receiver));
    let mut threads: Vec<JoinHandle<()>> = (0..OPEN_LOOP_SENDERS)
        .map(|_| {
            let (receiver, outcome, targets) = (
                Arc::clone(&receiver),
                Arc::clone(outcome),
                Arc::clone(&targets),
            );
            let label = label.to_string();
            std::thread::spawn(move || {
                let agent = agent();
                loop {
                    let next = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((i, due)) = next else { break };
                    let late = due.elapsed();
                    {
                        let mut o = outcome.lock().unwrap_or_else(|e| e.into_inner());
                        o.most_late = o.most_late.max(late);
                    }
                    let path = format!("/{label}/{i}.bin");
                    let target = i as usize % targets.len();
                    upload(&agent, &targets, target, path, sizes, &outcome);
                }
            })
        })
        .collect();
    let stop = Arc::clone(stop);
    threads.push(std::thread::spawn(move || {
        let start = Instant::now();
        let every = Duration::from_secs_f64(1.0 / per_second.max(0.001));
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let due = start + every * i as u32;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if sender.send((i, due)).is_err() {
                break;
            }
            i += 1;
        }
        // Dropping the sender ends the senders once the queue is empty.
    }));
    threads
}

/// Uploads `n` files one after another to `target`, each of which must be answered 200;
/// what was acknowledged. Panics, with the answer, on any other.
pub fn upload_n(target: &str, n: usize, label: &str, sizes: BodySizes) -> Vec<Ack> {
    let outcome = Mutex::new(Outcome::default());
    let agent = agent();
    let targets = [target.to_string()];
    for i in 0..n {
        upload(
            &agent,
            &targets,
            0,
            format!("/{label}/{i}.bin"),
            sizes,
            &outcome,
        );
    }
    let outcome = outcome.into_inner().unwrap_or_else(|e| e.into_inner());
    assert!(
        outcome.acks.len() == n,
        "{} of {n} uploads to {target} acknowledged: {} 5xx, {} without an answer, {:?}",
        outcome.acks.len(),
        outcome.failed_5xx,
        outcome.failed_connection,
        outcome.unexpected
    );
    outcome.acks
}
