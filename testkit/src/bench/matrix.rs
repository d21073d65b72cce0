//! The standard matrix: body sizes x concurrencies, direct to the nodes and through one
//! coordinator, on a local cluster of two nodes (one shard of both, two Redis). With sink
//! nodes also through nginx proxying to the same nodes, the limit of one proxy hop. The
//! load generator's own CPU per request is printed too: when it nears the coordinator's,
//! the client, not the coordinator, sets the pace.

use super::load::{cpu_seconds, memory_kib, run, LoadReport, LoadSpec};
use super::turns::{slice_orders, write_back, Contender, Side, TurnLog};
use crate::{LocalCluster, NginxProxy, NodeKind, QUEUE_KEY};
use backpack::size::format_size;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct MatrixSpec {
    pub sink: bool,
    pub sizes: Vec<u64>,
    pub concurrencies: Vec<usize>,
    pub duration: Duration,
    pub cap_bytes: u64,
    pub big_upload: u64,
    /// Added to the coordinator's command line.
    pub coordinator_flags: Vec<String>,
    /// A second coordinator with these flags (instead of the first's) takes turns with
    /// the first, and a second table compares the two: one run, the same nodes.
    pub versus: Option<Vec<String>>,
    /// Turns each side takes per cell (see `run_matrix`).
    pub turns: u32,
    /// Where every turn's numbers go, one line each (`TurnLog`).
    pub turn_log: Option<std::path::PathBuf>,
}

/// Removes what a cell stored, so a run never fills the disk, and empties the queue;
/// then has the disk write back, so the next cell does not pay for this one's writes.
pub fn clean(cluster: &LocalCluster) {
    for node in &cluster.nodes {
        let Some(files) = node.files_dir() else {
            continue;
        };
        if let Ok(entries) = std::fs::read_dir(files) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_dir_all(entry.path())
                    .or_else(|_| std::fs::remove_file(entry.path()));
            }
        }
    }
    for redis in &cluster.redis {
        if let Ok(mut conn) = redis::Client::open(format!("redis://{}/", redis.address()))
            .and_then(|c| c.get_connection())
        {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(QUEUE_KEY).query(&mut conn);
        }
    }
    write_back();
}

/// Makes `left` bytes without holding them.
struct Pattern {
    left: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        buf[..n].fill(b'p');
        self.left -= n as u64;
        Ok(n)
    }
}

/// One upload of `size` bytes; its time.
fn one_upload(url: &str, size: u64) -> Result<Duration, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let started = Instant::now();
    let answer = agent
        .put(url)
        .header("Content-Length", size.to_string())
        .send(ureq::SendBody::from_owned_reader(Pattern { left: size }))
        .map_err(|err| err.to_string())?;
    let status = answer.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    Ok(started.elapsed())
}

fn cell(report: &LoadReport) -> String {
    let errors: u64 = report.errors.values().sum();
    let errors = if errors > 0 {
        format!(" ({errors} errors: {:?})", report.errors)
    } else {
        String::new()
    };
    format!(
        "{:>8.0} | {:>6.2} | {:>7.2}{errors}",
        report.rps(),
        report.percentile_ms(0.5),
        report.percentile_ms(0.99)
    )
}

pub fn run_matrix(bin: &Path, spec: &MatrixSpec) -> Result<(), String> {
    // First, so that a log that cannot be written stops the run before it starts.
    let mut turn_log = TurnLog::create(spec.turn_log.as_deref())?;
    let (nodes, kind) = if spec.sink {
        (
            "sink nodes (nginx answers 201, discards the body)",
            NodeKind::Sink,
        )
    } else {
        ("nginx WebDAV nodes (real files)", NodeKind::WebDav)
    };
    eprintln!(
        "starting a local cluster: two {nodes}, one shard of both, two Redis, one coordinator..."
    );
    let cluster = LocalCluster::start_with(bin, "bench", 2, 2, kind).map_err(|e| e.to_string())?;
    cluster
        .add_enabled_shard("1", &[1, 2], "100tb")
        .map_err(|e| e.to_string())?;
    let (mut first, coordinator) =
        Contender::start(&cluster, bin, "coordinator", &spec.coordinator_flags)?;
    let pid = first.pid;
    // `$BACKPACK_VERSUS_BIN`: the second coordinator is another build (an A/B of builds).
    let versus_bin = std::env::var_os("BACKPACK_VERSUS_BIN").map(std::path::PathBuf::from);
    let mut second = match &spec.versus {
        Some(flags) => Some(Contender::start(
            &cluster,
            versus_bin.as_deref().unwrap_or(bin),
            "coordinator-b",
            flags,
        )?),
        None => None,
    };
    let mut versus_rows = Vec::new();
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = memory_kib(pid, "VmRSS").unwrap_or(0);
    let direct: Vec<String> = cluster.nodes.iter().map(|n| n.url()).collect();
    // With sink nodes, the limit of one proxy hop: nginx proxying to the same nodes.
    let proxy = if spec.sink {
        let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
        Some(
            NginxProxy::start(&cluster.sandbox, "nginx-proxy", &ports)
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    let proxied: Vec<String> = proxy.iter().map(NginxProxy::url).collect();
    let mut big_line = String::new();
    if spec.big_upload > 0 {
        let direct_time = one_upload(&format!("{}/big-direct", direct[0]), spec.big_upload)?;
        clean(&cluster);
        let through_time = one_upload(&coordinator.url("/big-through"), spec.big_upload)?;
        clean(&cluster);
        // First, so that the peak RSS so far is this upload's.
        big_line = format!(
            "one {} upload: direct {:.2}s, through the coordinator {:.2}s ({:.2}x); coordinator peak RSS {:.1} MiB",
            format_size(spec.big_upload),
            direct_time.as_secs_f64(),
            through_time.as_secs_f64(),
            through_time.as_secs_f64() / direct_time.as_secs_f64().max(1e-9),
            memory_kib(pid, "VmHWM").unwrap_or(0) as f64 / 1024.0
        );
    }

    println!(
        "\n{nodes}; closed loop, {}s per cell, unique paths\n",
        spec.duration.as_secs_f64()
    );
    if proxy.is_some() {
        println!("| size | c | direct rps | p50 ms | p99 ms | nginx proxy rps | p50 ms | p99 ms | coordinator rps | p50 ms | p99 ms | ratio to direct | ratio to proxy | p99 over proxy's | coordinator CPU ms/upload | load generator CPU ms/request |");
        println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    } else {
        println!("| size | c | direct rps | p50 ms | p99 ms | coordinator rps | p50 ms | p99 ms | ratio | coordinator CPU ms/upload | load generator CPU ms/request |");
        println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    }
    for &size in &spec.sizes {
        for &concurrency in &spec.concurrencies {
            let load = |targets: &Vec<String>, prefix: String| LoadSpec {
                targets: targets.clone(),
                body_size: size as usize,
                concurrency,
                rate: None,
                duration: spec.duration / spec.turns,
                max_requests: (spec.cap_bytes / size.max(1) / spec.turns as u64).max(1),
                prefix,
            };
            // Direct and coordinator take turns, so that both meet the nodes' disk in the
            // same state. Run one after the other, the second was up to 5x slower with
            // WebDAV nodes on ext4: after a cell's files are deleted, creating files scans
            // past the recently deleted inodes (`recently_deleted` and `find_inode_bit`
            // led the nodes' profile), so whichever phase followed a deletion paid for it.
            // The order of the turns and the disk between them: `turns`.
            let (mut d, mut p) = (LoadReport::default(), LoadReport::default());
            first.reset();
            let mut client_cpu = 0.0;
            let me = std::process::id();
            let mut sides = vec![Side::Direct];
            if !proxied.is_empty() {
                sides.push(Side::Proxy);
            }
            sides.push(Side::First);
            if second.is_some() {
                sides.push(Side::Second);
            }
            let size_name = format_size(size);
            let this_cell = (size_name.as_str(), concurrency);
            let node_turn = |report: &LoadReport| (report.rps(), None, report.ok);
            for (slice, sides) in slice_orders(&sides, spec.turns).into_iter().enumerate() {
                for side in sides {
                    write_back();
                    match side {
                        Side::Direct => {
                            let report = run(&load(&direct, format!("direct-{slice}")))?;
                            turn_log.record(this_cell, slice, "direct", node_turn(&report));
                            d.merge(report);
                        }
                        Side::Proxy => {
                            let report = run(&load(&proxied, format!("proxy-{slice}")))?;
                            turn_log.record(this_cell, slice, "proxy", node_turn(&report));
                            p.merge(report);
                        }
                        Side::First => {
                            let client_before = cpu_seconds(me).unwrap_or(0.0);
                            let (rps, cpu_ms, uploads) =
                                first.turn(load(&first.url, format!("coordinator-{slice}")))?;
                            client_cpu += cpu_seconds(me).unwrap_or(0.0) - client_before;
                            turn_log.record(this_cell, slice, "A", (rps, Some(cpu_ms), uploads));
                        }
                        Side::Second => {
                            if let Some((other, _)) = &mut second {
                                let (rps, cpu_ms, uploads) = other
                                    .turn(load(&other.url, format!("coordinator-b-{slice}")))?;
                                turn_log.record(
                                    this_cell,
                                    slice,
                                    "B",
                                    (rps, Some(cpu_ms), uploads),
                                );
                            }
                        }
                    }
                }
            }
            clean(&cluster);
            let c = &first.report;
            let ratio = c.rps() / d.rps().max(1e-9);
            let cpu_ms = first.cpu_ms();
            if let Some((other, _)) = &mut second {
                let (rps_ratio, cpu_ratio) = first.paired_ratios(other);
                versus_rows.push(format!(
                    "| {} | {concurrency} | {} | {} | {} | {:.2}x | {:.3} | {:.3} | {} |",
                    size_name,
                    cell(c),
                    cell(&other.report),
                    rps_ratio.as_ratio(),
                    other.report.percentile_ms(0.99) / c.percentile_ms(0.99).max(1e-9),
                    first.median_cpu_ms(),
                    other.median_cpu_ms(),
                    cpu_ratio.as_ratio()
                ));
                other.reset();
            }
            let client_ms = client_cpu * 1000.0 / (c.requests.max(1) as f64);
            if proxied.is_empty() {
                println!(
                    "| {} | {concurrency} | {} | {} | {ratio:.2}x | {cpu_ms:.3} | {client_ms:.3} |",
                    size_name,
                    cell(&d),
                    cell(c)
                );
            } else {
                println!(
                    "| {} | {concurrency} | {} | {} | {} | {ratio:.2}x | {:.2}x | {:.2}x | {cpu_ms:.3} | {client_ms:.3} |",
                    size_name,
                    cell(&d),
                    cell(&p),
                    cell(c),
                    c.rps() / p.rps().max(1e-9),
                    c.percentile_ms(0.99) / p.percentile_ms(0.99).max(1e-9)
                );
            }
        }
    }
    if let (Some(flags), false) = (&spec.versus, versus_rows.is_empty()) {
        let name = |flags: &[String]| match flags.join(" ") {
            none if none.is_empty() => "default flags".to_string(),
            some => format!("`{some}`"),
        };
        println!(
            "\nsame run, taking turns: coordinator A ({}) against coordinator B ({})\n",
            name(&spec.coordinator_flags),
            name(flags)
        );
        println!("B/A rps and B/A CPU: the medians of the slices' ratios (a slice has one turn of each), with the range that holds the true median with 95 % confidence (sign test; six slices or more); CPU ms/upload: the median of the turns\n");
        println!("| size | c | A rps | p50 ms | p99 ms | B rps | p50 ms | p99 ms | B/A rps | B/A p99 | A CPU ms/upload | B CPU ms/upload | B/A CPU |");
        println!(
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for row in versus_rows {
            println!("{row}");
        }
    }
    if !big_line.is_empty() {
        println!("\n{big_line}");
    }
    println!(
        "coordinator RSS: idle {:.1} MiB, peak over the run {:.1} MiB",
        idle_rss as f64 / 1024.0,
        memory_kib(pid, "VmHWM").unwrap_or(0) as f64 / 1024.0
    );
    Ok(())
}
