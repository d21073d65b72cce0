//! `bp-nginx-gen <zk_servers> </zk/root> [flags] > backpack.conf`, or with `--watch
//! --output FILE` a daemon that rewrites FILE whenever servers-map or shards-map changes.

use super::config::{check, render, FrontOptions, FrontShard};
use crate::cluster::snapshot::Snapshot;
use crate::cluster::sync::{self, Shared, SyncSettings};
use crate::command::args::cluster_command;
use crate::command::Command;
use crate::duration_arg::{parse_duration, secs};
use crate::error::{Error, Result};
use crate::js_json::compare_ids;
use crate::log_line;
use crate::state::endpoint::Endpoint;
use std::path::{Path, PathBuf};
use std::time::Duration;

cluster_command! {
    /// Write the nginx front's configuration for the cluster to stdout: an upstream per shard
    /// (read-only shards included) and a server that maps GET /<shard>:<file> to the shard's
    /// nodes. With --watch --output FILE, rewrite FILE whenever the cluster changes.
    pub struct NginxGen {
        /// what the server listens on, e.g. 80 or 127.0.0.1:12080 (default 80)
        #[argh(option, default = "String::from(\"80\")")]
        listen: String,
        /// server_name of the server block (default: none)
        #[argh(option)]
        server_name: Option<String>,
        /// failures before nginx rests a node (default 3)
        #[argh(option, default = "3")]
        max_fails: u32,
        /// how long a failed node rests (default 5s)
        #[argh(option, default = "secs(5)", from_str_fn(parse_duration))]
        fail_timeout: Duration,
        /// idle keep-alive connections per upstream, 0 for none (default 16)
        #[argh(option, default = "16")]
        keepalive: u32,
        /// proxy_connect_timeout (default 2s)
        #[argh(option, default = "secs(2)", from_str_fn(parse_duration))]
        connect_timeout: Duration,
        /// proxy_read_timeout and proxy_send_timeout (default 30s)
        #[argh(option, default = "secs(30)", from_str_fn(parse_duration))]
        read_timeout: Duration,
        /// only the upstream blocks, to include in a server of your own
        #[argh(switch)]
        upstreams_only: bool,
        /// keep running and rewrite --output whenever servers-map or shards-map changes
        #[argh(switch)]
        watch: bool,
        /// with --watch: the file to write (atomically, only when its content changes)
        #[argh(option)]
        output: Option<PathBuf>,
        /// with --watch: a command that must succeed for a new file to stay, e.g. "nginx -t";
        /// when it fails the old file is put back
        #[argh(option)]
        check_cmd: Option<String>,
        /// with --watch: a command run after a new file is in place, e.g. "nginx -s reload"
        #[argh(option)]
        reload_cmd: Option<String>,
    }
}

/// Sorts shards and nodes, and resolves node ids to addresses; an error names a shard
/// that lists a server missing from servers-map.
fn front_shards<'a>(
    shards: impl Iterator<Item = (&'a String, &'a Vec<String>)>,
    lookup: impl Fn(&str) -> Option<Endpoint>,
) -> Result<Vec<FrontShard>, String> {
    let mut out = Vec::new();
    for (id, nodes) in shards {
        let mut nodes: Vec<(String, Endpoint)> = nodes
            .iter()
            .map(|node| {
                lookup(node)
                    .map(|endpoint| (node.clone(), endpoint))
                    .ok_or_else(|| {
                        format!("shard {id} lists server {node}, which is not in servers-map")
                    })
            })
            .collect::<Result<_, _>>()?;
        nodes.sort_by(|a, b| compare_ids(&a.0, &b.0));
        out.push(FrontShard {
            id: id.clone(),
            nodes,
        });
    }
    out.sort_by(|a, b| compare_ids(&a.id, &b.id));
    Ok(out)
}

impl NginxGen {
    fn options(&self) -> FrontOptions {
        FrontOptions {
            listen: self.listen.clone(),
            server_name: self.server_name.clone(),
            max_fails: self.max_fails,
            fail_timeout: self.fail_timeout,
            keepalive: self.keepalive,
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            upstreams_only: self.upstreams_only,
        }
    }

    fn generate(&self, shards: Vec<FrontShard>) -> Result<String> {
        let options = self.options();
        check(&shards, &options).map_err(Error::Invalid)?;
        Ok(render(&shards, &options))
    }

    fn once(&self) -> Result<()> {
        let store = self.open_cluster()?;
        let servers = store.servers()?;
        let shards = store.shards()?;
        let front = front_shards(shards.iter().map(|(id, s)| (id, &s.nodes)), |id| {
            servers.get(id).cloned()
        })
        .map_err(Error::Invalid)?;
        print!("{}", self.generate(front)?);
        Ok(())
    }

    fn from_snapshot(&self, snapshot: &Snapshot) -> Result<String> {
        let front = front_shards(snapshot.shards.iter().map(|s| (&s.id, &s.nodes)), |id| {
            snapshot.nodes.get(id).map(|node| node.endpoint.clone())
        })
        .map_err(Error::Invalid)?;
        self.generate(front)
    }

    fn watch(&self, output: &Path) -> Result<()> {
        let shared = Shared::default();
        let _sync = sync::start(
            SyncSettings {
                zk_servers: self.zk_servers.clone(),
                root: self.root.clone(),
                zk_timeout: self.zk_timeout,
                session_timeout: crate::zk::SESSION_TIMEOUT,
                sizes: None,
                redis_timeout: Duration::from_secs(1),
                // It writes host names, not addresses, into the config.
                resolve_every: Duration::from_secs(300),
                uses_queue: false,
            },
            &shared,
        )?;
        log_line!(
            "bp-nginx-gen: watching {} for {}",
            self.root,
            output.display()
        );
        let mut seen = 0;
        loop {
            let (snapshot, number) = shared.snapshot.wait_newer(seen);
            seen = number;
            match self.from_snapshot(&snapshot) {
                Ok(text) => self.install(output, &text),
                Err(err) => log_line!("not writing {}: {err}", output.display()),
            }
        }
    }

    /// Puts `text` in place if it differs, checks it, reloads; an invalid file is replaced
    /// by the old one again.
    fn install(&self, output: &Path, text: &str) {
        let old = std::fs::read_to_string(output).ok();
        if old.as_deref() == Some(text) {
            return;
        }
        if let Err(err) = write_atomically(output, text) {
            log_line!("cannot write {}: {err}", output.display());
            return;
        }
        if let Some(check) = &self.check_cmd {
            if let Err(why) = run_shell(check) {
                // The old file goes back first; the log line says it is done.
                let restored = match &old {
                    Some(old) => write_atomically(output, old),
                    None => std::fs::remove_file(output),
                };
                match restored {
                    Ok(()) => log_line!(
                        "the new {} fails `{check}` ({why}); keeping the old one",
                        output.display()
                    ),
                    Err(err) => log_line!(
                        "the new {} fails `{check}` ({why}), and the old one cannot be put back: {err}",
                        output.display()
                    ),
                }
                return;
            }
        }
        log_line!("wrote {}", output.display());
        if let Some(reload) = &self.reload_cmd {
            match run_shell(reload) {
                Ok(()) => log_line!("ran `{reload}`"),
                Err(why) => log_line!("`{reload}` failed: {why}"),
            }
        }
    }
}

/// Writes a temporary file beside `path` and renames it over `path`: readers see the old
/// file or the new one, never half of one.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

fn run_shell(command: &str) -> Result<(), String> {
    let output = std::process::Command::new("sh")
        .args(["-c", command])
        .output()
        .map_err(|err| err.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        let said = String::from_utf8_lossy(&output.stderr);
        Err(format!(
            "{}: {}",
            output.status,
            said.trim().lines().last().unwrap_or("")
        ))
    }
}

impl Command for NginxGen {
    fn run(self) -> Result<()> {
        match (&self.output, self.watch) {
            (Some(output), true) => self.watch(&output.clone()),
            (None, true) => Err(Error::invalid("--watch needs --output FILE")),
            (Some(_), false) => Err(Error::invalid(
                "--output goes with --watch (otherwise redirect stdout)",
            )),
            (None, false) => self.once(),
        }
    }
}
