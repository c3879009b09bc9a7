//! Latency figures for the benchmarks and the fault runs: percentiles and millisecond text.

use std::time::Duration;

/// Latency samples of one measurement.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    /// Record one sample.
    pub fn push(&mut self, sample: Duration) {
        self.samples.push(sample);
    }

    /// Add every sample of `other`.
    pub fn extend(&mut self, other: &Latencies) {
        self.samples.extend_from_slice(&other.samples);
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The `p`-quantile (0..=1, nearest rank); zero without samples.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let rank = ((sorted.len() as f64) * p.clamp(0.0, 1.0)).ceil() as usize;
        sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
    }
}

/// One line of a benchmark's report: a measure and its value, and for a checked measure its
/// target and whether it was met.
#[derive(Debug, Clone)]
pub struct Row {
    pub measure: String,
    pub value: String,
    pub target: String,
    pub met: Option<bool>,
}

/// A figure without a target.
pub fn row(measure: impl Into<String>, value: impl Into<String>) -> Row {
    Row {
        measure: measure.into(),
        value: value.into(),
        target: String::new(),
        met: None,
    }
}

/// A figure checked against its target.
pub fn checked(
    measure: impl Into<String>,
    value: impl Into<String>,
    target: impl Into<String>,
    met: bool,
) -> Row {
    Row {
        measure: measure.into(),
        value: value.into(),
        target: target.into(),
        met: Some(met),
    }
}

/// A benchmark's report in Markdown: the table of `rows`, then one line on how it ran — a
/// release run (`full`) or the smoke pass `cargo test --all-targets` makes of `bench`.
pub fn report(rows: &[Row], full: bool, bench: &str, started: std::time::Instant) -> String {
    let mut table = String::from("| measure | value | target | met |\n|---|---|---|---|\n");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        table.push_str(&format!(
            "| {} | {} | {} | {met} |\n",
            r.measure, r.value, r.target
        ));
    }
    table.push_str(&format!(
        "\n{}, {} cores shared with other work; run took {:.0} s.\n",
        if full {
            "Release build".to_owned()
        } else {
            format!(
                "Smoke pass (small numbers, test build: the figures mean nothing; run `cargo bench --bench {bench}`)"
            )
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed().as_secs_f64()
    ));
    table
}

/// A duration in milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut l = Latencies::default();
        assert_eq!(l.percentile(0.99), Duration::ZERO);
        for i in 1..=100 {
            l.push(Duration::from_millis(i));
        }
        assert_eq!(l.percentile(0.5), Duration::from_millis(50));
        assert_eq!(l.percentile(0.99), Duration::from_millis(99));
        assert_eq!(l.percentile(1.0), Duration::from_millis(100));
        assert_eq!(ms(Duration::from_micros(1500)), "1.50");
    }
}
