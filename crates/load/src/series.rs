//! Throughput and latency over time: the completions of each second of a
//! run, with that second's latency percentiles, for soak runs whose figures
//! must stay flat. One definition for both runtimes: a request counts in the
//! second (since the load started) in which it completed (its (f+1)-th
//! distinct reply), with the latency [`crate::Clients`] measures for it;
//! warm-up seconds are included, marked by their time.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One second of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// The second's start, seconds since the load started.
    pub t_s: f64,
    /// Requests that completed in it.
    pub completed: u64,
    /// Their latency percentiles, ms (0 when none completed).
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The process's resident memory sampled in that second, where the
    /// runtime measures it (QUIC in one process); None otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
}

/// Collects [`SeriesPoint`]s from completions in time order; holds one
/// second's histogram at a time.
#[derive(Debug)]
pub struct SeriesRecorder {
    window: Duration,
    points: Vec<SeriesPoint>,
    current: u64,
    latency: Histogram<u64>,
}

/// A histogram of latencies in nanoseconds, 1 µs to 10 minutes, 2
/// significant digits: coarse and small, one second's worth.
fn window_histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1_000, 600_000_000_000, 2).ok()
}

impl SeriesRecorder {
    pub fn new() -> SeriesRecorder {
        SeriesRecorder {
            window: Duration::from_secs(1),
            points: Vec::new(),
            current: 0,
            latency: window_histogram().unwrap_or_else(crate::clients::latency_histogram),
        }
    }

    /// A request completed at `at` (since the load started) after
    /// `latency`. Times before the last one recorded count in the current
    /// second.
    pub fn completed(&mut self, at: Duration, latency: Duration) {
        let second = (at.as_nanos() / self.window.as_nanos().max(1)) as u64;
        while second > self.current {
            self.close_window();
        }
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let _ = self.latency.record(nanos.clamp(1_000, 600_000_000_000));
    }

    /// The current second as it stands.
    fn current_point(&self) -> SeriesPoint {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1e6;
        SeriesPoint {
            t_s: self.current as f64 * self.window.as_secs_f64(),
            completed: self.latency.len(),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            rss_bytes: None,
        }
    }

    fn close_window(&mut self) {
        self.points.push(self.current_point());
        self.latency.reset();
        self.current += 1;
    }

    /// Every second so far, the current one included.
    pub fn points(&self) -> Vec<SeriesPoint> {
        let mut out = self.points.clone();
        if !self.latency.is_empty() {
            out.push(self.current_point());
        }
        out
    }
}

impl Default for SeriesRecorder {
    fn default() -> Self {
        SeriesRecorder::new()
    }
}

/// Puts each memory sample (seconds since the load started, bytes) on the
/// point of its second (points are one per second from 0, as
/// [`SeriesRecorder::points`] makes them); the largest sample of a second
/// wins.
pub fn add_rss(points: &mut [SeriesPoint], samples: &[(f64, u64)]) {
    for &(t, bytes) in samples {
        let second = t.max(0.0).floor();
        if let Some(p) = points.get_mut(second as usize).filter(|p| p.t_s == second) {
            p.rss_bytes = Some(p.rss_bytes.map_or(bytes, |b| b.max(bytes)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_fall_in_their_second_and_empty_seconds_are_kept() {
        let mut s = SeriesRecorder::new();
        let ms = Duration::from_millis;
        s.completed(ms(100), ms(10));
        s.completed(ms(900), ms(30));
        s.completed(ms(2500), ms(20));
        let p = s.points();
        assert_eq!(
            p.iter().map(|p| (p.t_s, p.completed)).collect::<Vec<_>>(),
            [(0.0, 2), (1.0, 0), (2.0, 1)]
        );
        assert!((p[0].p99_ms - 30.0).abs() < 0.5, "{:?}", p[0]);
        assert!((p[2].p50_ms - 20.0).abs() < 0.5, "{:?}", p[2]);
        let mut p = p;
        add_rss(&mut p, &[(0.2, 5), (0.7, 9), (2.1, 7), (9.0, 1)]);
        assert_eq!(
            p.iter().map(|p| p.rss_bytes).collect::<Vec<_>>(),
            [Some(9), None, Some(7)]
        );
    }
}
