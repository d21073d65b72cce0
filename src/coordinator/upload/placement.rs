//! Which shard gets an upload: a random writable shard, weighted by its free share.
//!
//! A shard that is 10 % used gets 0.9 / 0.5 = 1.8 times the uploads of one that is 50 %
//! used, so shards fill up evenly whatever their sizes. Read-only and full shards have no
//! chance at all.

use crate::cluster::snapshot::Shard;
use rand::Rng;

/// Picks a shard among `candidates` by weight, or None when none has free space.
pub fn choose<'a>(candidates: &[&'a Shard], rng: &mut impl Rng) -> Option<&'a Shard> {
    let total: f64 = candidates.iter().map(|shard| shard.free_ratio()).sum();
    if total <= 0.0 {
        return None;
    }
    let mut point = rng.random_range(0.0..total);
    for shard in candidates {
        let weight = shard.free_ratio();
        if point < weight {
            return Some(shard);
        }
        point -= weight;
    }
    // Rounding can leave `point` a hair past the last weight.
    candidates
        .iter()
        .rev()
        .find(|shard| shard.free_ratio() > 0.0)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::shard_size::ShardSize;

    fn shard(id: &str, used: u64) -> Shard {
        Shard {
            id: id.into(),
            nodes: vec![],
            read_only: false,
            size: Some(ShardSize {
                capacity: 100,
                current: used,
            }),
        }
    }

    #[test]
    fn weights_follow_free_space() {
        let shards = [
            shard("a", 10),
            shard("b", 50),
            shard("c", 90),
            shard("full", 100),
        ];
        let candidates: Vec<&Shard> = shards.iter().collect();
        let mut rng = rand::rng();
        let mut counts = std::collections::HashMap::new();
        for _ in 0..15_000 {
            let chosen = choose(&candidates, &mut rng).unwrap();
            *counts.entry(chosen.id.as_str()).or_insert(0) += 1;
        }
        // Expected 0.9 : 0.5 : 0.1 of 15 000 = 9 000, 5 000, 1 000 (sd < 70).
        assert!((counts["a"] as i32 - 9000).abs() < 400, "{counts:?}");
        assert!((counts["b"] as i32 - 5000).abs() < 400, "{counts:?}");
        assert!((counts["c"] as i32 - 1000).abs() < 250, "{counts:?}");
        assert!(!counts.contains_key("full"));
        assert!(choose(&[&shards[3]], &mut rng).is_none());
    }
}
