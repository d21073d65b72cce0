//! `contrib/`: the Grafana dashboard and the Prometheus alert rules name only metrics the
//! daemons export, promtool accepts the rules and their unit tests pass, and systemd
//! accepts the units.

mod common;

use backpack_testkit::free_port;
use common::cluster::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn contrib(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(path)
}

/// Every `backpack_...` name in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("backpack_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        // A prefix named in a comment (`backpack_coordinator_`) is not a metric.
        if !name.ends_with('_') {
            names.insert(name);
        }
    }
    names
}

/// The sample names a Prometheus text can hold, from its `# TYPE` lines: a counter's
/// `_total`, a histogram's `_bucket`, `_sum` and `_count`, a gauge's own name.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            match kind {
                "counter" => names.insert(format!("{name}_total")),
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                    true
                }
                _ => names.insert(name.to_string()),
            };
        }
    }
    names
}

fn text_of(url: &str) -> String {
    client()
        .get(url)
        .call()
        .unwrap_or_else(|err| panic!("GET {url}: {err}"))
        .into_body()
        .read_to_string()
        .unwrap()
}

#[test]
fn the_dashboard_and_the_alerts_name_only_metrics_the_daemons_export() {
    let mut cluster = example_cluster("contrib-metrics");
    let coordinator = coordinator(&cluster, &["--quiet", "--node-cooldown", "0s"]);
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let _replicator = replicator(&cluster, "replicator", &["--listen", &listen]);
    // A family shows in /metrics once it has a sample: uploads, a failing node, a copy
    // that fails (its source lacks the file).
    cluster.node_mut(6).process().kill();
    let agent = client();
    for i in 0..30 {
        let path = format!("/contrib/{i}.jpg");
        assert_eq!(put(&agent, &coordinator.url(&path), b"x").0, 200);
    }
    cluster.push_items(&[r#"{"from":["1"],"to":"4","path":"/contrib/nowhere.jpg"}"#.to_string()]);
    let wanted = [
        "backpack_coordinator_uploads_total",
        "backpack_coordinator_node_failures_total",
        "backpack_replicator_failures_total",
        "backpack_replicator_dead_items",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let names = loop {
        let mut names = exported(&text_of(&coordinator.url("/metrics")));
        if let Ok(answer) = client().get(&format!("http://{listen}/metrics")).call() {
            names.extend(exported(&answer.into_body().read_to_string().unwrap()));
        }
        if wanted.iter().all(|name| names.contains(*name)) {
            break names;
        }
        assert!(
            Instant::now() < deadline,
            "never exported all of {wanted:?}: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    let dashboard = std::fs::read_to_string(contrib("grafana/backpack-dashboard.json")).unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() > 10));
    let rules = std::fs::read_to_string(contrib("prometheus/backpack-alerts.yml")).unwrap();
    for (file, text) in [("dashboard", &dashboard), ("alert rules", &rules)] {
        let named = metric_names(text);
        assert!(named.len() > 5, "{file}: {named:?}");
        let unknown: Vec<&String> = named.difference(&names).collect();
        assert!(
            unknown.is_empty(),
            "the {file} name metrics nobody exports: {unknown:?}"
        );
    }
    // The alerts an operator needs, by name.
    for alert in [
        "BackpackNoWritableShard",
        "BackpackUploadsFailing",
        "BackpackQueueUnreadable",
        "BackpackShardAlmostFull",
        "BackpackNodeFailing",
        "BackpackReplicationQueueGrowing",
        "BackpackReplicationLagging",
        "BackpackDeadItems",
        "BackpackZooKeeperDisconnected",
        "BackpackDaemonDown",
    ] {
        assert!(rules.contains(&format!("alert: {alert}\n")), "{alert}");
    }
}

#[test]
fn promtool_accepts_the_alert_rules() {
    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(contrib("prometheus/backpack-alerts.yml"))
        .output()
        .expect("promtool runs (bin/backpack-install-deps installs Debian's prometheus)");
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("SUCCESS: 11 rules found"), "{said}");
}

/// The alerts' own unit tests: server errors over the threshold fire, client errors do
/// not; an unreadable queue length fires after its 2 minutes; so does a fenced replicator;
/// an oldest queued item past 5 minutes fires a minute later.
#[test]
fn promtool_unit_tests_of_the_alerts_pass() {
    let output = Command::new("promtool")
        .args(["test", "rules", "backpack-alerts.test.yml"])
        .current_dir(contrib("prometheus"))
        .output()
        .expect("promtool runs");
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && said.contains("SUCCESS"),
        "{said}"
    );
}

#[test]
fn systemd_accepts_the_units() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: the units are not checked here");
        return;
    }
    // The units run the commands from the install path in the README; here they run the
    // checkout's bin/, so that systemd finds an executable.
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("bin");
    let dir = tempfile_dir();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(contrib("systemd")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".service") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("/opt/backpack-coordinator/bin/"), "{name}");
        let local = text.replace(
            "/opt/backpack-coordinator/bin/",
            &format!("{}/", bin.display()),
        );
        std::fs::write(dir.join(&name), local).unwrap();
        units.push(name.replace("@.service", "@main.service"));
    }
    units.sort();
    assert_eq!(
        units,
        [
            "backpack-coordinator@main.service",
            "backpack-replicator@main.service",
            "bp-nginx-gen.service"
        ]
    );
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .args(units.iter().map(|unit| format!("./{unit}")))
        .current_dir(&dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    // A value systemd cannot parse is only a warning: none is accepted.
    assert!(output.status.success() && said.trim().is_empty(), "{said}");
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("backpack-units-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
