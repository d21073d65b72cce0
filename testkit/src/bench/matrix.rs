//! The standard matrix: body sizes x concurrencies, direct to the nodes and through one
//! coordinator, on a local cluster of two nodes (one shard of both, two Redis). With sink
//! nodes also through nginx proxying to the same nodes, the limit of one proxy hop. The
//! load generator's own CPU per request is printed too: when it nears the coordinator's,
//! the client, not the coordinator, sets the pace.

use super::around_cells::{clean, empty_queue, one_upload};
use super::contenders::start_contenders;
use super::load::{run, LoadReport, LoadSpec};
use super::turns::{slice_orders, write_back, Contender, Side, TurnLog};
use super::wrk::{self, WrkTable};
use crate::measure::{cpu_seconds, peak_rss_kib, rss_kib};
use crate::{CoordinatorProcess, LocalCluster, NginxProxy, NodeKind};
use backpack::size::format_size;
use std::path::Path;
use std::time::Duration;

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
    /// With sink nodes: the proxy and the first coordinator also driven by wrk.
    pub wrk: bool,
    /// The coordinator (`First` or `Second`) that requires upload tokens, which the
    /// client then sends it.
    pub tokens: Option<Side>,
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

/// The matrix's cluster and contenders, and what a cell's turns add up to.
struct MatrixRun<'a> {
    spec: &'a MatrixSpec,
    /// The first coordinator, and the second one when it takes turns with it.
    first: Contender,
    second: Option<Contender>,
    direct: Vec<String>,
    /// With sink nodes, nginx proxying to the same nodes: the limit of one proxy hop.
    proxy: Option<NginxProxy>,
    /// The proxy and the first coordinator under wrk, when asked for (sink nodes only).
    wrk: Option<WrkTable>,
    turn_log: TurnLog,
    versus_rows: Vec<String>,
    /// The coordinators' processes, which stop when dropped.
    _coordinators: Vec<CoordinatorProcess>,
    // Dropped last: its servers stop after the coordinators and the proxy.
    cluster: LocalCluster,
}

impl<'a> MatrixRun<'a> {
    fn start(bin: &Path, spec: &'a MatrixSpec) -> Result<(MatrixRun<'a>, &'static str), String> {
        // First, so that a log that cannot be written stops the run before it starts.
        let turn_log = TurnLog::create(spec.turn_log.as_deref())?;
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
        let cluster =
            LocalCluster::start_with(bin, "bench", 2, 2, kind).map_err(|e| e.to_string())?;
        cluster
            .add_enabled_shard("1", &[1, 2], "100tb")
            .map_err(|e| e.to_string())?;
        let (first, second, coordinators) = start_contenders(
            &cluster,
            bin,
            (&spec.coordinator_flags, spec.versus.as_deref()),
            spec.tokens,
        )?;
        let direct: Vec<String> = cluster.nodes.iter().map(|n| n.url()).collect();
        let proxy = match spec.sink {
            true => {
                let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
                Some(
                    NginxProxy::start(&cluster.sandbox, "nginx-proxy", &ports)
                        .map_err(|e| e.to_string())?,
                )
            }
            false => None,
        };
        // Not beside a second coordinator: six sides have no balanced order of turns.
        let wrk = match spec.wrk && proxy.is_some() && spec.versus.is_none() {
            true if !wrk::available() => {
                return Err("wrk is not installed (bin/backpack-install-deps installs it; --no-wrk runs without)".into())
            }
            true => Some(WrkTable::default()),
            false => None,
        };
        let run = MatrixRun {
            spec,
            wrk,
            cluster,
            first,
            second,
            direct,
            proxy,
            turn_log,
            versus_rows: Vec::new(),
            _coordinators: coordinators,
        };
        Ok((run, nodes))
    }

    /// One upload of `--big-upload` bytes direct and through the coordinator, as a line.
    fn big_upload(&self) -> Result<String, String> {
        let size = self.spec.big_upload;
        let direct_time = one_upload(&format!("{}/big-direct", self.direct[0]), size)?;
        clean(&self.cluster);
        let through_time = one_upload(&format!("{}/big-through", self.first.url[0]), size)?;
        clean(&self.cluster);
        // First, so that the peak RSS so far is this upload's.
        Ok(format!(
            "one {} upload: direct {:.2}s, through the coordinator {:.2}s ({:.2}x); coordinator peak RSS {:.1} MiB",
            format_size(size),
            direct_time.as_secs_f64(),
            through_time.as_secs_f64(),
            through_time.as_secs_f64() / direct_time.as_secs_f64().max(1e-9),
            peak_rss_kib(self.first.pid) as f64 / 1024.0
        ))
    }

    fn print_header(&self) {
        if self.proxy.is_some() {
            println!("| size | c | direct rps | p50 ms | p99 ms | nginx proxy rps | p50 ms | p99 ms | coordinator rps | p50 ms | p99 ms | ratio to direct | ratio to proxy | p99 over proxy's | coordinator CPU ms/upload | load generator CPU ms/request |");
            println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        } else {
            println!("| size | c | direct rps | p50 ms | p99 ms | coordinator rps | p50 ms | p99 ms | ratio | coordinator CPU ms/upload | load generator CPU ms/request |");
            println!(
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
            );
        }
    }

    /// One cell: every side takes its turns, then the cell's row is printed (and the
    /// versus table's row kept for the end).
    fn cell(&mut self, size: u64, concurrency: usize) -> Result<(), String> {
        let spec = self.spec;
        let load = |targets: &Vec<String>, prefix: String| LoadSpec {
            targets: targets.clone(),
            body_size: size as usize,
            concurrency,
            rate: None,
            duration: spec.duration / spec.turns,
            max_requests: (spec.cap_bytes / size.max(1) / spec.turns as u64).max(1),
            prefix,
            acked: None,
            headers: String::new(),
        };
        // Direct and coordinator take turns, so that both meet the nodes' disk in the
        // same state. Run one after the other, the second was up to 5x slower with
        // WebDAV nodes on ext4: after a cell's files are deleted, creating files scans
        // past the recently deleted inodes (`recently_deleted` and `find_inode_bit`
        // led the nodes' profile), so whichever phase followed a deletion paid for it.
        // The order of the turns and the disk between them: `turns`.
        let (mut d, mut p) = (LoadReport::default(), LoadReport::default());
        self.first.reset();
        let mut client_cpu = 0.0;
        let me = std::process::id();
        let proxied: Vec<String> = self.proxy.iter().map(NginxProxy::url).collect();
        let mut sides = vec![Side::Direct];
        if !proxied.is_empty() {
            sides.push(Side::Proxy);
        }
        sides.push(Side::First);
        if self.second.is_some() {
            sides.push(Side::Second);
        }
        if self.wrk.is_some() {
            sides.extend([Side::ProxyWrk, Side::FirstWrk]);
        }
        let wrk_turn = |url: &str, name: String| {
            wrk::run(
                url,
                &name,
                size as usize,
                concurrency,
                spec.duration / spec.turns,
            )
        };
        let size_name = format_size(size);
        let this_cell = (size_name.as_str(), concurrency);
        let node_turn = |report: &LoadReport| (report.rps(), None, report.ok);
        for (slice, sides) in slice_orders(&sides, spec.turns).into_iter().enumerate() {
            for side in sides {
                empty_queue(&self.cluster);
                write_back();
                match side {
                    Side::Direct => {
                        let report = run(&load(&self.direct, format!("direct-{slice}")))?;
                        self.turn_log
                            .record(this_cell, slice, "direct", node_turn(&report));
                        d.merge(report);
                    }
                    Side::Proxy => {
                        let report = run(&load(&proxied, format!("proxy-{slice}")))?;
                        self.turn_log
                            .record(this_cell, slice, "proxy", node_turn(&report));
                        p.merge(report);
                    }
                    Side::First => {
                        let client_before = cpu_seconds(me).unwrap_or(0.0);
                        let url = self.first.url.clone();
                        let (rps, cpu_ms, uploads) = self
                            .first
                            .turn(load(&url, format!("coordinator-{slice}")))?;
                        client_cpu += cpu_seconds(me).unwrap_or(0.0) - client_before;
                        self.turn_log
                            .record(this_cell, slice, "A", (rps, Some(cpu_ms), uploads));
                    }
                    Side::ProxyWrk => {
                        if let (Some(table), Some(proxy)) = (&mut self.wrk, &self.proxy) {
                            let turn = wrk_turn(&proxy.url(), format!("/wrk-proxy-{slice}"))?;
                            let rps = turn.requests as f64 / turn.seconds;
                            self.turn_log.record(
                                this_cell,
                                slice,
                                "proxy-wrk",
                                (rps, None, turn.requests),
                            );
                            table.proxy.push(turn);
                        }
                    }
                    Side::FirstWrk => {
                        if let Some(table) = &mut self.wrk {
                            let pid = self.first.pid;
                            let before = cpu_seconds(pid).unwrap_or(0.0);
                            let turn = wrk_turn(&self.first.url[0], format!("/wrk-{slice}"))?;
                            let cpu = cpu_seconds(pid).unwrap_or(0.0) - before;
                            table.first_cpu_seconds += cpu;
                            let rps = turn.requests as f64 / turn.seconds;
                            let cpu_ms = cpu * 1000.0 / turn.requests.max(1) as f64;
                            self.turn_log.record(
                                this_cell,
                                slice,
                                "A-wrk",
                                (rps, Some(cpu_ms), turn.requests),
                            );
                            table.first.push(turn);
                        }
                    }
                    Side::Second => {
                        if let Some(other) = &mut self.second {
                            let url = other.url.clone();
                            let (rps, cpu_ms, uploads) =
                                other.turn(load(&url, format!("coordinator-b-{slice}")))?;
                            self.turn_log.record(
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
        clean(&self.cluster);
        if let Some(table) = &mut self.wrk {
            table.finish_cell(&size_name, concurrency, p.rps());
        }
        let first = &self.first;
        let c = &first.report;
        let ratio = c.rps() / d.rps().max(1e-9);
        let cpu_ms = first.cpu_ms();
        if let Some(other) = &mut self.second {
            let (rps_ratio, cpu_ratio) = first.paired_ratios(other);
            self.versus_rows.push(format!(
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
        Ok(())
    }

    /// The table of coordinator A against coordinator B, when B took turns.
    fn print_versus(&self) {
        let (Some(flags), false) = (&self.spec.versus, self.versus_rows.is_empty()) else {
            return;
        };
        let name = |flags: &[String], side| match (flags.join(" "), self.spec.tokens == Some(side))
        {
            (none, false) if none.is_empty() => "default flags".to_string(),
            (none, true) if none.is_empty() => "upload tokens required and sent".to_string(),
            (some, tokens) => format!("`{some}`{}", if tokens { ", upload tokens" } else { "" }),
        };
        println!(
            "\nsame run, taking turns: coordinator A ({}) against coordinator B ({})\n",
            name(&self.spec.coordinator_flags, Side::First),
            name(flags, Side::Second)
        );
        println!("B/A rps and B/A CPU: the medians of the slices' ratios (a slice has one turn of each), with the range that holds the true median with 95 % confidence (sign test; six slices or more); CPU ms/upload: the median of the turns\n");
        println!("| size | c | A rps | p50 ms | p99 ms | B rps | p50 ms | p99 ms | B/A rps | B/A p99 | A CPU ms/upload | B CPU ms/upload | B/A CPU |");
        println!(
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for row in &self.versus_rows {
            println!("{row}");
        }
    }
}

pub fn run_matrix(bin: &Path, spec: &MatrixSpec) -> Result<(), String> {
    let (mut matrix, nodes) = MatrixRun::start(bin, spec)?;
    std::thread::sleep(Duration::from_millis(500));
    let pid = matrix.first.pid;
    let idle_rss = rss_kib(pid);
    let big_line = match spec.big_upload > 0 {
        true => matrix.big_upload()?,
        false => String::new(),
    };
    println!(
        "\n{nodes}; closed loop, {}s per cell, unique paths\n",
        spec.duration.as_secs_f64()
    );
    matrix.print_header();
    for &size in &spec.sizes {
        for &concurrency in &spec.concurrencies {
            matrix.cell(size, concurrency)?;
        }
    }
    if let Some(table) = &matrix.wrk {
        table.print();
    }
    matrix.print_versus();
    if !big_line.is_empty() {
        println!("\n{big_line}");
    }
    println!(
        "coordinator RSS: idle {:.1} MiB, peak over the run {:.1} MiB",
        idle_rss as f64 / 1024.0,
        peak_rss_kib(pid) as f64 / 1024.0
    );
    Ok(())
}
