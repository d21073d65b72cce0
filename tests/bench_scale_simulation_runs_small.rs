//! The scale simulation (`bp-bench scale`) at a small size, on a real ZooKeeper. It has
//! its own test binary: it reads this process's ZooKeeper request counts, which another
//! test running beside it would add to.

mod common;

use backpack::cluster::sync::SizeAccounting;
use backpack_testkit::bench::scale::{run_scale, ScaleSpec};
use common::cluster::bin;
use std::time::Duration;

#[test]
fn the_scale_simulation_runs_small() {
    let spec = ScaleSpec {
        shards: 40,
        coordinators: 6,
        old_style: 1,
        rate: 200.0,
        size: 64 << 10,
        capacity: 1 << 30,
        duration: Duration::from_secs(6),
        rewrites: 20.0,
        sizes: SizeAccounting {
            flush_every: Duration::from_secs(1),
            flush_most: 8,
            refresh_every: Duration::from_secs(1),
        },
        fill: true,
    };
    let report = run_scale(bin(), &spec).expect("the simulation runs");
    // Every byte placed, by current and old-style coordinators and the rewriter, is in
    // the size nodes after the final flush.
    assert!(report.placed > 0 && report.sizes_add_up(), "{report:?}");
    // The real coordinators take no uploads: they write nothing, and read the size nodes
    // once per refresh (40 a second) plus their liveness probe.
    for real in &report.real {
        assert_eq!(real.writes_per_second, 0.0, "{report:?}");
        assert!((30.0..60.0).contains(&real.reads_per_second), "{report:?}");
    }
    // Size accounting stays within its write budget: three current coordinators at 8 a
    // second, and the old-style one at most one per upload (50 a second); conflicts on top.
    assert!(
        report.zk_writes_per_second < 3.0 * 8.0 + 50.0 + 20.0,
        "{report:?}"
    );
    assert!(report.toggles.iter().all(|&t| t < 1.0), "{report:?}");
    let fill = report.fill.as_ref().expect("the fill phase ran");
    assert!(fill.full_shards > 0, "{report:?}");
    // No shard overflows by more than the README's bound (here 25 MiB, 2.4 % of 1 GiB:
    // everything placed in a flush interval and a refresh, on one shard).
    assert!(
        fill.max_overflow_bytes <= report.overflow_bound_bytes(),
        "{report:?}"
    );
}
