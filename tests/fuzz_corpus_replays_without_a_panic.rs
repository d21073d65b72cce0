//! Replays the fuzzing corpus (fuzz/corpus/<target>/*, and any crash artifacts saved in
//! fuzz/artifacts/<target>/) through the fuzz targets: a regression test in every run.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for dir in [
        root.join("corpus").join(target),
        root.join("artifacts").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let data = std::fs::read(entry.path()).unwrap();
            run(&data);
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn the_fuzz_corpus_replays_without_a_panic() {
    assert!(replay("request_head", backpack::fuzzing::request_head) >= 4);
    assert!(replay("cluster_state", backpack::fuzzing::cluster_state) >= 4);
    assert!(replay("queue_item", backpack::fuzzing::queue_item) >= 2);
    assert!(replay("upload_grant", backpack::fuzzing::upload_grant) >= 4);
}
