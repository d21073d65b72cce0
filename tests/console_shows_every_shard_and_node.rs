//! The operator's console (`GET /`, `/status.json`) on a running cluster, rendered by
//! headless Chromium: every shard with its fill, every node with the failures this
//! coordinator saw, the queue and the dead set per Redis server, client errors apart from
//! server errors (only those in red), and values from ZooKeeper shown as text, never as
//! markup. The screenshot it takes is `docs/console.png`.

mod common;

use backpack::zk_state::ZkState;
use backpack_testkit::LocalCluster;
use common::cluster::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where the screenshot goes: `target/test-artifacts/`.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

/// Headless Chromium on `url` with `args`: its stdout.
fn chromium(cluster: &LocalCluster, url: &str, args: &[&str]) -> String {
    let profile = cluster.sandbox.path().join("chromium-profile");
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs (bin/backpack-install-deps installs it)");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `<tr ...>` row of the rendered DOM whose attribute is `attribute="value"`.
fn row<'d>(dom: &'d str, attribute: &str, value: &str) -> &'d str {
    let marker = format!("{attribute}=\"{value}\"");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no row with {marker} in the page"));
    let end = dom[at..].find("</tr>").map_or(dom.len(), |end| at + end);
    &dom[at..end]
}

fn status(coordinator_url: &str) -> Value {
    get_json(&client(), &format!("{coordinator_url}/status.json"))
}

fn shard<'s>(status: &'s Value, id: &str) -> &'s Value {
    status["shards"]
        .as_array()
        .and_then(|shards| shards.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("shard {id} in {status}"))
}

#[test]
fn the_console_shows_every_shard_and_node_with_its_fill_in_a_browser() {
    let mut cluster = example_cluster("console");
    let flags = [
        "--size-refresh",
        "300ms",
        "--size-flush",
        "300ms",
        "--quiet",
    ];
    let coordinator = coordinator(&cluster, &flags);
    let agent = client();
    for i in 0..6 {
        let path = format!("/console/{i}.jpg");
        assert_eq!(
            put(&agent, &coordinator.url(&path), &body_for(&path)).0,
            200
        );
    }
    // Node 5 dies: uploads to shard 2 that try it first fail over to node 2.
    cluster.node_mut(5).process().kill();
    let mut tried_five = false;
    for i in 0..40 {
        let path = format!("/console/after-{i}.jpg");
        let (status, answer) = put(&agent, &coordinator.url(&path), &body_for(&path));
        assert_eq!(status, 200, "{answer}");
        tried_five |= node_failures(&coordinator.url("/metrics")) > 0.0;
    }
    assert!(tried_five, "no upload tried node 5");
    // The operator's own mistakes: requests without a length (411).
    for _ in 0..3 {
        let answer = raw_exchange(
            coordinator.port,
            b"PUT /no-length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_millis(500),
        );
        assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
    }
    // An item in the dead set of the first Redis server.
    let dead_key = format!("{}-dead", backpack_testkit::QUEUE_KEY);
    cluster.redis[0].add(
        &dead_key,
        &[r#"{"from":["1"],"to":"4","path":"/x"}"#.into()],
    );
    // Known fills, once the coordinator's own increments are written. On a busy machine
    // a last increment may land after them: they are set again each second until the
    // console shows them (no upload is in flight by then, so a second setting stays).
    let fills = || {
        for (id, current) in [("1", 250), ("2", 900), ("3", 1000)] {
            set_shard_size(&cluster, id, 1000, current);
        }
    };
    std::thread::sleep(Duration::from_secs(1));
    fills();
    let mut set_at = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if set_at.elapsed() >= Duration::from_secs(1) {
            fills();
            set_at = Instant::now();
        }
        let status = status(&coordinator.url(""));
        let used: Vec<Value> = ["1", "2", "3"]
            .iter()
            .map(|id| shard(&status, id)["used_bytes"].clone())
            .collect();
        if used == [json!(250), json!(900), json!(1000)] {
            break status;
        }
        assert!(Instant::now() < deadline, "sizes never showed: {status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(shard(&status, "3")["state"], "full");
    assert_eq!(shard(&status, "1")["state"], "rw");
    let node5 = status["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["id"] == "5"))
        .expect("node 5");
    assert!(node5["failures_last_minute"].as_u64() > Some(0), "{node5}");
    assert!(node5["last_error"].is_string(), "{node5}");
    assert_eq!(status["queue"].as_array().map(Vec::len), Some(2));
    assert_eq!(status["queue"][0]["dead_items"], 1, "{status}");
    assert_eq!(status["queue"][1]["dead_items"], 0, "{status}");
    let last_minute = &status["uploads"]["last_minute"];
    assert!(
        last_minute["client_errors_per_second"].as_f64() > Some(0.0),
        "{last_minute}"
    );
    assert_eq!(
        last_minute["server_errors_per_second"], 0.0,
        "{last_minute}"
    );
    assert_eq!(status["zookeeper"]["state"], "connected");

    let url = coordinator.url("/");
    let screenshot = artifacts().join("console.png");
    let _ = std::fs::remove_file(&screenshot);
    chromium(
        &cluster,
        &url,
        &[
            "--window-size=1280,820",
            &format!("--screenshot={}", screenshot.display()),
        ],
    );
    let png = std::fs::read(&screenshot).expect("the screenshot was saved");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    // The README's picture is this page.
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console.png");
    std::fs::write(&docs, &png).expect("write docs/console.png");

    let dom = chromium(&cluster, &url, &["--dump-dom"]);
    for (id, fill, state) in [
        ("1", "25.0 %", "rw"),
        ("2", "90.0 %", "rw"),
        ("3", "100.0 %", "full"),
    ] {
        let row = row(&dom, "data-shard", id);
        assert!(row.contains(&format!(">{fill}<")), "shard {id}: {row}");
        assert!(row.contains(&format!(">{state}<")), "shard {id}: {row}");
    }
    for id in 1..=6 {
        let row = row(&dom, "data-node", &id.to_string());
        // A count above zero is shown in red (`<span class="bad">`).
        let zero = row.contains("failures\">0</td>");
        let some = row.contains("failures\"><span class=\"bad\">");
        assert_eq!((zero, some), (id != 5, id == 5), "node {id}: {row}");
        assert!(
            row.contains("127.0.0.1:"),
            "node {id} shows its address: {row}"
        );
    }
    // Client errors are counted, not red; no server error yet, so nothing red there.
    assert!(
        dom.contains("<span class=\"muted\"><b id=\"client-errors-per-second\">"),
        "{dom}"
    );
    assert!(
        dom.contains("<span class=\"\"><b id=\"server-errors-per-second\">0.0</b>"),
        "{dom}"
    );
    let first_redis = cluster.redis[0].address();
    let dead_row = row(&dom, "data-server", &first_redis);
    assert!(
        dead_row.contains("dead\"><span class=\"bad\">1</span>"),
        "{dead_row}"
    );

    // No writable shard: uploads fail with 503, and that is shown in red.
    cluster.set_writable(&["1", "2", "3"], false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while put(&agent, &coordinator.url("/console/late.jpg"), b"x").0 != 503 {
        assert!(Instant::now() < deadline, "uploads still stored");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1100)); // the window sums full seconds
    let dom = chromium(&cluster, &url, &["--dump-dom"]);
    assert!(
        dom.contains("<span class=\"bad\"><b id=\"server-errors-per-second\">"),
        "{dom}"
    );
}

#[test]
fn a_shard_id_holding_markup_is_shown_as_text() {
    let cluster = example_cluster("console-markup");
    let hostile = "<b>x</b><script>document.title='owned'</script>";
    let store = ZkState::open(&cluster.zk(), &cluster.root, Duration::from_secs(10)).unwrap();
    store
        .update(&store.paths().shards_map(), |doc| {
            doc[hostile] = json!({"read_only": true, "nodes": ["1", "4"]});
            Ok(())
        })
        .unwrap();
    let coordinator = coordinator(&cluster, &["--quiet"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !status(&coordinator.url(""))["shards"]
        .as_array()
        .is_some_and(|shards| shards.iter().any(|s| s["id"] == hostile))
    {
        assert!(Instant::now() < deadline, "the shard never showed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = client()
        .get(&coordinator.url("/"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(
        page.contains(
            "&lt;b&gt;x&lt;/b&gt;&lt;script&gt;document.title=&#39;owned&#39;&lt;/script&gt;"
        ),
        "{page}"
    );
    assert!(!page.contains("<script>document.title"), "{page}");
    // Rendered: the id is text in the page, no script ran.
    let dom = chromium(&cluster, &coordinator.url("/"), &["--dump-dom"]);
    assert!(dom.contains("<title>backpack cluster</title>"), "{dom}");
    assert!(!dom.contains("<script>document.title"), "{dom}");
    assert!(dom.contains("&lt;script&gt;document.title="), "{dom}");
}
