//! `bin/backpack-demo`: the whole example cluster on its fixed ports, up, round trip,
//! status, the replicators' metrics, up again, down (which says what it keeps), and up
//! once more (which says it clears that).

use std::path::PathBuf;
use std::process::{Command, Output};

fn demo(state: &PathBuf, action: &str) -> Output {
    Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bin/backpack-demo"))
        .args(action.split(' '))
        .env("BACKPACK_DEMO_DIR", state)
        .env("BACKPACK_BIN", env!("CARGO_BIN_EXE_backpack"))
        .output()
        .expect("run bin/backpack-demo")
}

/// Stops the demo even when an assertion fails.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        demo(&self.0, "down");
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

const PORTS: [u16; 12] = [
    2181, 13001, 13002, 10001, 10006, 11001, 11006, 12001, 12002, 12101, 12102, 12080,
];

#[test]
fn demo_up_round_trips_on_real_nodes_and_down_leaves_nothing() {
    let state = std::env::temp_dir().join(format!("backpack-demo-test-{}", std::process::id()));
    let guard = Down(state.clone());
    let up = demo(&state, "up");
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    assert!(
        said.contains("six real Backpack 0.5.5 nodes")
            && said.contains("(replicated)")
            && said.contains("GET http://127.0.0.1:12080/"),
        "{said}"
    );
    for port in PORTS {
        assert!(listening(port), "nothing on {port}");
    }
    let status = text(&demo(&state, "status"));
    // ZooKeeper, two queue Redis, six nodes and their six Redis, two coordinators, two
    // replicators, the front and its config watcher.
    assert_eq!(status.matches(" running").count(), 21, "{status}");
    // The replicators serve their metrics, printed with the other addresses.
    assert!(said.contains("http://127.0.0.1:12101/metrics"), "{said}");
    let metrics = ureq::get("http://127.0.0.1:12101/metrics")
        .call()
        .expect("a replicator's metrics")
        .into_body()
        .read_to_string()
        .expect("the metrics text");
    assert!(
        metrics.contains("backpack_replicator_copies_total"),
        "{metrics}"
    );

    let again = demo(&state, "up");
    assert!(
        again.status.success() && text(&again).contains("already up"),
        "{}",
        text(&again)
    );

    let down = demo(&state, "down");
    assert!(
        text(&down).contains("stopped 21 processes"),
        "{}",
        text(&down)
    );
    for port in PORTS {
        assert!(!listening(port), "{port} still listens after down");
    }
    assert!(
        text(&down).contains(&format!("kept {}", state.display())),
        "down says what it keeps: {}",
        text(&down)
    );

    // The stand-in nodes on request; the last run's state is cleared, and said so.
    let up = demo(&state, "up --webdav");
    let said = text(&up);
    assert!(
        up.status.success() && said.contains("nginx WebDAV nodes") && said.contains("(replicated)"),
        "{said}"
    );
    assert!(said.contains("clearing the last run's state"), "{said}");
    let status = text(&demo(&state, "status"));
    assert_eq!(status.matches(" running").count(), 15, "{status}");
    let down = demo(&state, "down");
    assert!(
        text(&down).contains("stopped 15 processes"),
        "{}",
        text(&down)
    );
    drop(guard);

    let wrong = demo(&state, "up --nodes");
    assert!(
        !wrong.status.success() && text(&wrong).contains("unknown option --nodes"),
        "{}",
        text(&wrong)
    );
}
