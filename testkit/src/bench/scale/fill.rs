//! The fill phase of `bp-bench scale`: the whole cluster fills up, and how far shards
//! overflow their capacity is measured.

use super::generator::Generator;
use super::sim::SimCoordinator;
use super::world::World;
use super::ScaleSpec;
use std::time::Duration;

/// The fill phase's outcome.
#[derive(Debug, Clone)]
pub struct Fill {
    /// Bytes each shard had left when the phase began.
    pub room_per_shard: u64,
    /// Largest overflow past capacity, bytes.
    pub max_overflow_bytes: u64,
    /// Largest and mean overflow past capacity, as a share of capacity.
    pub max_overflow: f64,
    pub mean_overflow: f64,
    /// Shards that ended past their capacity.
    pub full_shards: usize,
    /// Simulated uploads refused for want of a writable shard.
    pub refused: u64,
}

/// The fill phase: every shard is set to leave room for about half a run of uploads,
/// the simulated coordinators place uploads for a whole run, then everything is
/// flushed and each shard's overflow past its capacity measured.
pub fn fill(
    world: &World,
    spec: &ScaleSpec,
    mut sims: Vec<SimCoordinator>,
) -> Result<(Fill, Vec<SimCoordinator>), String> {
    let room = (spec.rate * spec.size as f64 * spec.duration.as_secs_f64()
        / 2.0
        / world.shards as f64) as u64;
    let current = world.capacity.saturating_sub(room);
    world.set_every_current(current)?;
    // Let every coordinator see the new sizes before uploads start.
    std::thread::sleep(spec.sizes.refresh_every * 2 + Duration::from_secs(1));
    for sim in sims.iter_mut() {
        sim.refused = 0;
    }
    world.put_sims(sims);
    let generator = Generator::start(world, spec.rate, spec.size, 0.0);
    std::thread::sleep(spec.duration);
    let (mut sims, _) = generator.stop();
    for sim in sims.iter_mut() {
        sim.flush_all()?;
    }
    let over_bytes: Vec<u64> = world
        .currents()?
        .iter()
        .map(|&used| used.saturating_sub(world.capacity))
        .collect();
    let over: Vec<f64> = over_bytes
        .iter()
        .map(|&bytes| bytes as f64 / world.capacity as f64)
        .collect();
    let fill = Fill {
        room_per_shard: room,
        max_overflow_bytes: over_bytes.iter().copied().max().unwrap_or(0),
        max_overflow: over.iter().copied().fold(0.0, f64::max),
        mean_overflow: over.iter().sum::<f64>() / over.len().max(1) as f64,
        full_shards: over.iter().filter(|&&o| o > 0.0).count(),
        refused: sims.iter().map(|s| s.refused).sum(),
    };
    Ok((fill, sims))
}
