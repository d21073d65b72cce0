//! Upload bodies that follow from their paths: a check regenerates what it expects instead
//! of keeping every body a load sent.

/// How big the bodies of a load are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BodySizes {
    /// Every body `n` bytes.
    Fixed(usize),
    /// Log-uniform between the two sizes: as many bodies from 1 to 2 KiB as from 1 to
    /// 2 MiB, the way photo sizes spread.
    LogUniform(usize, usize),
    /// `large` for `large_percent` % of the paths, `small` for the rest.
    TwoOf {
        small: usize,
        large: usize,
        large_percent: u64,
    },
}

/// 1 KiB to 2 MiB, log-uniform: the fault suites' mix.
pub const PHOTOS: BodySizes = BodySizes::LogUniform(1 << 10, 2 << 20);

/// A stream of pseudo-random numbers seeded by the path (FNV-1a, then xorshift).
fn numbers(path: &str) -> impl FnMut() -> u64 {
    let mut state = path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// The body of `path`: its length and bytes follow from the path and `sizes`.
pub fn body(path: &str, sizes: BodySizes) -> Vec<u8> {
    let mut next = numbers(path);
    let length = match sizes {
        BodySizes::Fixed(n) => n,
        BodySizes::LogUniform(low, high) => {
            let (low, high) = ((low.max(1) as f64).log2(), (high.max(1) as f64).log2());
            let exponent = low + (next() % 1000) as f64 / 1000.0 * (high - low);
            2f64.powf(exponent) as usize
        }
        BodySizes::TwoOf {
            small,
            large,
            large_percent,
        } => match next() % 100 < large_percent {
            true => large,
            false => small,
        },
    };
    // Eight bytes from each number: the fault suites regenerate gigabytes to compare.
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        bytes.extend_from_slice(&next().to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_follows_from_its_path() {
        assert_eq!(body("/a/1.bin", PHOTOS), body("/a/1.bin", PHOTOS));
        assert_ne!(body("/a/1.bin", PHOTOS), body("/a/2.bin", PHOTOS));
        assert_eq!(body("/x", BodySizes::Fixed(300)).len(), 300);
        for i in 0..200 {
            let n = body(&format!("/p/{i}"), PHOTOS).len();
            assert!((1 << 10..=2 << 20).contains(&n), "{n}");
        }
    }
}
