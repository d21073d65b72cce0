//! The replicators' lag histogram as the benchmark reads it: the cumulative buckets of
//! `backpack_replicator_lag_seconds`, added up over the replicators, and the quantiles
//! they hold.

use crate::metrics::get_text;

/// Cumulative bucket counts by upper bound (the last is `+Inf`).
#[derive(Clone, Debug, Default)]
pub struct Buckets {
    bounds: Vec<f64>,
    counts: Vec<f64>,
}

/// The histogram summed over the replicators at `bases` (`http://host:port`).
pub fn scrape_lags(bases: &[String]) -> Result<Buckets, String> {
    let mut sum = Buckets::default();
    for base in bases {
        let text = get_text(&format!("{base}/metrics"))?;
        let one = parse(&text);
        if one.bounds.is_empty() {
            return Err(format!("{base}/metrics has no lag histogram"));
        }
        if sum.bounds.is_empty() {
            sum = one;
        } else if sum.bounds == one.bounds {
            sum.counts
                .iter_mut()
                .zip(&one.counts)
                .for_each(|(a, b)| *a += b);
        } else {
            return Err("the replicators' lag buckets differ".into());
        }
    }
    Ok(sum)
}

/// `backpack_replicator_lag_seconds_bucket{le="0.01"} 5` lines.
fn parse(text: &str) -> Buckets {
    let mut buckets = Buckets::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("backpack_replicator_lag_seconds_bucket{le=\"") else {
            continue;
        };
        let Some((bound, value)) = rest.split_once("\"} ") else {
            continue;
        };
        let bound = match bound {
            "+Inf" => f64::INFINITY,
            b => match b.parse() {
                Ok(b) => b,
                Err(_) => continue,
            },
        };
        if let Ok(count) = value.trim().parse() {
            buckets.bounds.push(bound);
            buckets.counts.push(count);
        }
    }
    buckets
}

impl Buckets {
    /// What was counted since `before`.
    pub fn minus(mut self, before: &Buckets) -> Buckets {
        if before.bounds == self.bounds {
            self.counts
                .iter_mut()
                .zip(&before.counts)
                .for_each(|(a, b)| *a -= b);
        }
        self
    }

    fn total(&self) -> f64 {
        self.counts.last().copied().unwrap_or(0.0)
    }

    /// The index of the bucket holding quantile `q`; None when nothing was counted.
    fn quantile_index(&self, q: f64) -> Option<usize> {
        let rank = (self.total() * q).ceil().max(1.0);
        (self.total() > 0.0).then(|| self.counts.iter().position(|c| *c >= rank))?
    }

    /// The index of the bucket `seconds` falls in.
    fn index_of(&self, seconds: f64) -> Option<usize> {
        self.bounds.iter().position(|bound| seconds <= *bound)
    }

    /// The bucket holding quantile `q`, as `(40, 50] ms`.
    pub fn quantile_bucket(&self, q: f64) -> String {
        let Some(i) = self.quantile_index(q) else {
            return "none".into();
        };
        let low = if i == 0 {
            0.0
        } else {
            self.bounds[i - 1] * 1000.0
        };
        match self.bounds[i] {
            b if b.is_infinite() => format!("> {low:.0} ms"),
            b => format!("({low:.0}, {:.0}] ms", b * 1000.0),
        }
    }

    /// True when `seconds` is in the bucket holding quantile `q`, or in one beside it.
    pub fn within_a_bucket(&self, q: f64, seconds: f64) -> bool {
        match (self.quantile_index(q), self.index_of(seconds)) {
            (Some(a), Some(b)) => a.abs_diff(b) <= 1,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_fall_in_the_bucket_that_holds_their_rank() {
        let text = "backpack_replicator_lag_seconds_bucket{le=\"0.01\"} 0\n\
                    backpack_replicator_lag_seconds_bucket{le=\"0.02\"} 50\n\
                    backpack_replicator_lag_seconds_bucket{le=\"0.03\"} 98\n\
                    backpack_replicator_lag_seconds_bucket{le=\"0.04\"} 100\n\
                    backpack_replicator_lag_seconds_bucket{le=\"+Inf\"} 100\n";
        let buckets = parse(text);
        assert_eq!(buckets.quantile_bucket(0.5), "(10, 20] ms");
        assert_eq!(buckets.quantile_bucket(0.99), "(30, 40] ms");
        assert!(buckets.within_a_bucket(0.5, 0.025));
        assert!(!buckets.within_a_bucket(0.5, 0.035));
        assert_eq!(buckets.clone().minus(&buckets).quantile_bucket(0.5), "none");
    }
}
