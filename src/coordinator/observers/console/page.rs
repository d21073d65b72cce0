//! The console's HTML: one server-rendered page, readable without JavaScript, no
//! external assets, reloaded every 5 s by a `<meta>` refresh.
//!
//! Shard ids, node ids, hosts and error texts come from ZooKeeper or from nodes, so
//! every one goes through `escape` (text and attribute values alike): a shard id holding
//! `<script>` is shown as text.

use super::{NodeStatus, QueueServer, ShardStatus, Status};
use crate::size::format_size;
use std::fmt::Write;

/// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.3em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.4em 0 .4em}\
table{border-collapse:collapse}td,th{padding:.2em .7em;border-bottom:1px solid #ddd;text-align:left}\
th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}\
.bar{width:12em;height:.9em;background:#eee;border-radius:2px}\
.fill{height:100%;background:#4a8;border-radius:2px}.full .fill{background:#c44}\
.r .fill{background:#999}.state{font-weight:600}.bad{color:#b22}.muted{color:#777}\
.summary span{margin-right:1.6em}";

fn bytes(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_string(), format_size)
}

fn duration(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

fn head(out: &mut String, status: &Status) {
    let zk = &status.zookeeper;
    let age = zk.configuration_age_seconds.map_or_else(
        || "never read".to_string(),
        |s| format!("read {s:.1} s ago"),
    );
    let zk_class = if zk.state == "connected" {
        ""
    } else {
        " class=\"bad\""
    };
    let _ = write!(
        out,
        "<h1>backpack-coordinator</h1><p class=\"summary\"><span>version {}</span>\
         <span>up {}</span><span>ZooKeeper <b{zk_class} id=\"zookeeper\">{}</b>, configuration {age}</span></p>",
        escape(&status.version),
        duration(status.uptime_seconds),
        escape(zk.state),
    );
    let t = &status.totals;
    let u = &status.uploads.last_minute;
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v} ms"));
    let _ = write!(
        out,
        "<p class=\"summary\"><span>{} shards, <b id=\"writable\">{}</b> writable</span>\
         <span>{} used of {}</span></p>\
         <h2>Uploads, last {} s</h2><p class=\"summary\"><span><b id=\"uploads-per-second\">{:.1}</b> uploads answered per second</span>\
         <span class=\"{}\"><b id=\"server-errors-per-second\">{:.1}</b> failed per second (server errors)</span>\
         <span class=\"muted\"><b id=\"client-errors-per-second\">{:.1}</b> refused per second (client errors)</span>\
         <span>p50 at most {}</span><span>p99 at most {}</span>\
         <span class=\"muted\">since start: {} stored, {} not stored</span></p>",
        t.shards,
        t.writable_shards,
        format_size(t.used_bytes),
        format_size(t.capacity_bytes),
        u.seconds,
        u.uploads_per_second,
        if u.server_errors_per_second > 0.0 { "bad" } else { "" },
        u.server_errors_per_second,
        u.client_errors_per_second,
        ms(u.p50_ms),
        ms(u.p99_ms),
        status.uploads.stored_since_start,
        status.uploads.failed_since_start,
    );
    let tokens = &status.upload_tokens;
    let _ = match tokens.required {
        true => write!(
            out,
            "<p class=\"summary\"><span id=\"upload-tokens\">upload tokens required</span>\
             <span>keys in force: <b id=\"upload-key-ids\">{}</b></span>\
             <span class=\"muted\">read from {} {} ago</span></p>",
            escape(&tokens.key_ids.join(", ")),
            escape(tokens.keys_file.as_deref().unwrap_or("")),
            duration(tokens.keys_loaded_seconds_ago.unwrap_or(0.0) as u64),
        ),
        false => write!(
            out,
            "<p class=\"summary\"><span id=\"upload-tokens\" class=\"muted\">\
             upload tokens not required: anyone who reaches this port may upload</span></p>"
        ),
    };
}

fn queue(out: &mut String, status: &Status) {
    out.push_str("<h2>Replication queue</h2><table><tr><th>Redis server</th><th class=\"num\">items</th><th class=\"num\">oldest item</th><th class=\"num\">items of unknown age</th><th class=\"num\">dead items</th></tr>");
    let count = |n: Option<u64>, bad_above_zero: bool| match n {
        None => "<span class=\"bad\">no answer</span>".to_string(),
        Some(n) if bad_above_zero && n > 0 => format!("<span class=\"bad\">{n}</span>"),
        Some(n) => n.to_string(),
    };
    for server in &status.queue {
        let _ = write!(
            out,
            "<tr class=\"queue\" data-server=\"{0}\"><td>{0}</td><td class=\"num\">{1}</td><td class=\"num oldest\">{2}</td><td class=\"num\">{3}</td><td class=\"num dead\">{4}</td></tr>",
            escape(&server.server),
            count(server.length, false),
            oldest(server),
            count(server.unrecorded_items, false),
            count(server.dead_items, true),
        );
    }
    out.push_str("</table>");
}

/// The oldest queued item's age; flagged past `OLDEST_BAD_SECONDS`, the alert's bound.
fn oldest(server: &QueueServer) -> String {
    match server.oldest_queued_seconds {
        None => "-".to_string(),
        Some(s) if s > OLDEST_BAD_SECONDS => format!("<span class=\"bad\">{s:.1} s</span>"),
        Some(s) => format!("{s:.1} s"),
    }
}

/// Past this, the oldest item waits longer than an operator should accept (the
/// `BackpackReplicationLagging` alert's bound).
const OLDEST_BAD_SECONDS: f64 = 300.0;

fn shard_row(out: &mut String, shard: &ShardStatus) {
    let percent = shard.used_ratio.map(|r| r * 100.0);
    let width = percent.unwrap_or(0.0).clamp(0.0, 100.0);
    let nodes: Vec<String> = shard.nodes.iter().map(|n| escape(n)).collect();
    let _ = write!(
        out,
        "<tr class=\"shard {state_class}\" data-shard=\"{id}\"><td>{id}</td>\
         <td class=\"state\">{state}</td><td>{nodes}</td>\
         <td><div class=\"bar\"><div class=\"fill\" style=\"width:{width:.1}%\"></div></div></td>\
         <td class=\"num fill-percent\">{percent}</td><td class=\"num\">{used} of {capacity}</td></tr>",
        state_class = shard.state.replace(' ', "-"),
        id = escape(&shard.id),
        state = shard.state,
        nodes = nodes.join(", "),
        percent = percent.map_or_else(|| "-".to_string(), |p| format!("{p:.1} %")),
        used = bytes(shard.used_bytes),
        capacity = bytes(shard.capacity_bytes),
    );
}

fn node_row(out: &mut String, node: &NodeStatus) {
    let failures = match node.failures_last_minute {
        0 => "0".to_string(),
        n => format!("<span class=\"bad\">{n}</span>"),
    };
    let last_error = match (&node.last_error, node.last_error_seconds_ago) {
        (Some(why), Some(ago)) => format!(
            "{} <span class=\"muted\">({ago:.0} s ago)</span>",
            escape(why)
        ),
        _ => "<span class=\"muted\">none</span>".to_string(),
    };
    let address = node.address.as_deref().map_or_else(
        || "<span class=\"bad\">not in servers-map</span>".to_string(),
        escape,
    );
    let shards: Vec<String> = node.shards.iter().map(|s| escape(s)).collect();
    let _ =
        write!(
        out,
        "<tr class=\"node\" data-node=\"{id}\"><td>{id}</td><td>{address}</td><td>{shards}</td>\
         <td class=\"num failures\">{failures}</td><td>{last_error}</td><td>{tried_last}</td></tr>",
        id = escape(&node.id),
        shards = shards.join(", "),
        tried_last = if node.tried_last { "<span class=\"bad\">yes</span>" } else { "no" },
    );
}

/// The whole page.
pub fn render(status: &Status) -> String {
    let mut out = String::with_capacity(4096 + 400 * (status.shards.len() + status.nodes.len()));
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>backpack cluster</title>\
         <style>{STYLE}</style></head><body>"
    );
    head(&mut out, status);
    queue(&mut out, status);
    out.push_str(
        "<h2>Shards</h2><table id=\"shards\"><tr><th>shard</th><th>state</th><th>nodes</th>\
         <th>fill</th><th class=\"num\">used</th><th class=\"num\">bytes</th></tr>",
    );
    for shard in &status.shards {
        shard_row(&mut out, shard);
    }
    out.push_str(
        "</table><h2>Nodes</h2><p class=\"muted\">Failures are PUTs from this coordinator \
         in the last 60 s; other coordinators keep their own.</p>\
         <table id=\"nodes\"><tr><th>node</th><th>address</th><th>shards</th>\
         <th class=\"num\">failures, 60 s</th><th>last error</th><th>tried last</th></tr>",
    );
    for node in &status.nodes {
        node_row(&mut out, node);
    }
    out.push_str("</table><p class=\"muted\">The same data: <a href=\"/status.json\">/status.json</a>. Prometheus: <a href=\"/metrics\">/metrics</a>.</p></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_is_shown_as_text() {
        assert_eq!(
            escape("<script>alert('x' & \"y\")</script>"),
            "&lt;script&gt;alert(&#39;x&#39; &amp; &quot;y&quot;)&lt;/script&gt;"
        );
    }
}
