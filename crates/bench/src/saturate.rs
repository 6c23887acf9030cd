//! `bftbench saturate`: each protocol's saturation rate, found by searching
//! the offered open-loop rate instead of guessing a rate axis.
//!
//! **Sustained** (one definition for every protocol and runtime): an offered
//! rate R is sustained when, over the measured window (after warm-up),
//!
//! 1. the completed throughput is at least `keep_up` × R (default 0.95:
//!    the system keeps up with what it is offered), and
//! 2. the p99 end-to-end latency is at most `p99_ms` (the stated bound).
//!
//! The **knee** is the highest offered rate found sustained; the record keeps
//! it, the lowest rate found not sustained above it, and every probe.
//!
//! **Search.** Probe `start`, then double until a rate is not sustained or
//! `max` is reached; then bisect (at the geometric midpoint, rounded to two
//! significant digits) between the highest sustained and the lowest
//! unsustained rate until they are within `resolution` of each other. The
//! search assumes completed throughput falls once the system saturates; a
//! noisy runtime can break that, which the record shows, since every probe is
//! in it.

use crate::BenchError;
use crate::record::Record;
use crate::scenario::Scenario;
use crate::sweep::Point;
use bft_sim::LoadMode;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The name of the file a search writes beside its probe records.
pub const FILE: &str = "saturation.json";

/// The rule and the search's range; see the module doc.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// First offered rate, requests/s.
    pub start: f64,
    /// Highest rate probed.
    pub max: f64,
    /// Fraction of the offered rate that must complete.
    pub keep_up: f64,
    /// Bound on the p99 end-to-end latency, ms.
    pub p99_ms: f64,
    /// Stop bisecting when the unsustained rate is within this fraction above
    /// the sustained one.
    pub resolution: f64,
}

impl Default for SearchConfig {
    fn default() -> SearchConfig {
        SearchConfig {
            start: 2_000.0,
            max: 400_000.0,
            keep_up: 0.95,
            p99_ms: 100.0,
            resolution: 0.1,
        }
    }
}

impl SearchConfig {
    /// Rejects settings under which the search cannot end or means nothing.
    pub fn validate(&self, file: &Path) -> Result<(), BenchError> {
        let bad = |key: &str, value: f64, reason: &str| BenchError::Invalid {
            file: file.to_path_buf(),
            key: format!("saturate.{key}"),
            value: value.to_string(),
            reason: reason.into(),
        };
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !positive(self.start) {
            return Err(bad("start", self.start, "must be a positive rate"));
        }
        if !(self.max.is_finite() && self.max >= self.start) {
            return Err(bad("max", self.max, "must be at least start"));
        }
        if !(self.keep_up > 0.0 && self.keep_up <= 1.0) {
            return Err(bad("keep_up", self.keep_up, "must be in (0, 1]"));
        }
        if !positive(self.p99_ms) {
            return Err(bad("p99_ms", self.p99_ms, "must be a positive bound"));
        }
        if !(self.resolution >= 0.01 && self.resolution <= 1.0) {
            return Err(bad("resolution", self.resolution, "must be in [0.01, 1]"));
        }
        Ok(())
    }

    /// The rule, in words, for records, tables and captions.
    pub fn rule(&self) -> String {
        format!(
            "sustained: completed >= {:.0} % of offered and p99 <= {} ms",
            self.keep_up * 100.0,
            self.p99_ms
        )
    }

    /// Is this measurement sustained under the rule?
    pub fn sustained(&self, offered: f64, throughput_tx_s: f64, p99_ms: f64) -> bool {
        throughput_tx_s >= self.keep_up * offered && p99_ms <= self.p99_ms
    }
}

/// One measured rate of a search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub offered: f64,
    pub throughput_tx_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub sustained: bool,
    /// The probe's record, relative to the search's directory.
    pub record: String,
}

/// The result of one protocol's search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Knee {
    pub protocol: String,
    pub n: usize,
    pub runtime: String,
    pub rule: String,
    pub config: SearchConfig,
    /// The highest offered rate found sustained (None: not even `start`).
    pub knee_rate: Option<f64>,
    /// The lowest rate above the knee found not sustained (None: `max` was
    /// sustained, the knee lies beyond the search's range).
    pub first_unsustained: Option<f64>,
    /// In the order they were measured.
    pub probes: Vec<Probe>,
}

impl Knee {
    /// The probe at the knee.
    pub fn at_knee(&self) -> Option<&Probe> {
        let rate = self.knee_rate?;
        self.probes.iter().find(|p| p.offered == rate)
    }
}

/// Rounds a rate to two significant digits (so the rates, and the record
/// files named after them, read cleanly).
pub fn round_rate(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return x;
    }
    let scale = 10f64.powi(x.log10().floor() as i32 - 1);
    (x / scale).round() * scale
}

/// Where a search ended: the highest sustained and lowest unsustained rate
/// found, and every probe in the order measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Bracket {
    pub good: Option<f64>,
    pub bad: Option<f64>,
    pub probes: Vec<Probe>,
}

/// Records named by their file, as sweeps return them.
pub type Named = Vec<(String, Record)>;

/// The search of the module doc over any measurement; `measure` is called
/// once per distinct rate.
pub fn search(
    cfg: &SearchConfig,
    mut measure: impl FnMut(f64) -> Result<Probe, BenchError>,
) -> Result<Bracket, BenchError> {
    let mut probes: Vec<Probe> = Vec::new();
    let (mut good, mut bad): (Option<f64>, Option<f64>) = (None, None);
    let mut rate = round_rate(cfg.start);
    // Growth: double until a rate fails or the range ends.
    loop {
        let p = measure(rate)?;
        let ok = p.sustained;
        probes.push(p);
        if !ok {
            bad = Some(rate);
            break;
        }
        good = Some(rate);
        // Rounding can take min(2 × rate, max) back to `rate` (a max that is
        // not two significant digits): that is the end of the range too.
        let next = round_rate((rate * 2.0).min(cfg.max));
        if rate >= cfg.max || next <= rate {
            break;
        }
        rate = next;
    }
    // Bisection between the highest sustained and the lowest unsustained.
    while let (Some(lo), Some(hi)) = (good, bad) {
        if hi <= lo * (1.0 + cfg.resolution) {
            break;
        }
        let mid = round_rate((lo * hi).sqrt());
        if mid <= lo || mid >= hi {
            break;
        }
        let p = measure(mid)?;
        if p.sustained {
            good = Some(mid);
        } else {
            bad = Some(mid);
        }
        probes.push(p);
    }
    Ok(Bracket { good, bad, probes })
}

/// One search's probe: `point` at offered `rate`.
fn at_rate(point: &Point, rate: f64) -> Point {
    let mut scenario = point.scenario.clone();
    scenario.load.mode = LoadMode::Open { rate };
    Point {
        scenario,
        name: format!("{}-r{rate}", point.name),
    }
}

/// The points a search runs from: one per combination of the scenario's
/// sweep axes other than `rate` (usually one per protocol).
pub fn bases(base: &Scenario, file: &Path) -> Result<Vec<Point>, BenchError> {
    let mut s = base.clone();
    if let Some(axes) = &mut s.sweep {
        axes.rate.clear();
        axes.outstanding.clear();
    }
    if !matches!(s.load.mode, LoadMode::Open { .. }) {
        s.load.mode = LoadMode::Open { rate: 1.0 };
    }
    crate::sweep::points(&s, file)
}

/// Runs the search for every base point (simulated ones on up to `threads`
/// threads, QUIC ones one after another), writes each probe's record and
/// `saturation.json` into `out_dir`, and returns the knees and the probe
/// records. `done` is called after each probe.
pub fn saturate(
    base: &Scenario,
    file: &Path,
    cfg: &SearchConfig,
    out_dir: &Path,
    threads: usize,
    done: &(dyn Fn(&Point, &Record) + Sync),
) -> Result<(Vec<Knee>, Named), BenchError> {
    cfg.validate(file)?;
    std::fs::create_dir_all(out_dir).map_err(|source| BenchError::Write {
        file: out_dir.to_path_buf(),
        source,
    })?;
    let bases = bases(base, file)?;
    let one = |point: &Point| search_one(point, cfg, out_dir, done);
    let parallel = threads > 1
        && bases
            .iter()
            .all(|p| p.scenario.runtime == crate::scenario::Runtime::Sim);
    let results: Vec<Result<(Knee, Named), BenchError>> = if parallel {
        std::thread::scope(|scope| {
            let handles: Vec<_> = bases.iter().map(|p| scope.spawn(move || one(p))).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(BenchError::Unsupported("a search thread panicked".into()))
                    })
                })
                .collect()
        })
    } else {
        bases.iter().map(one).collect()
    };
    let mut knees = Vec::new();
    let mut records = Vec::new();
    for r in results {
        let (k, rs) = r?;
        knees.push(k);
        records.extend(rs);
    }
    records.sort_by(|a, b| a.0.cmp(&b.0));
    crate::sweep::write_csv(out_dir, &records)?;
    write_knees(out_dir, &knees)?;
    Ok((knees, records))
}

fn search_one(
    point: &Point,
    cfg: &SearchConfig,
    out_dir: &Path,
    done: &(dyn Fn(&Point, &Record) + Sync),
) -> Result<(Knee, Named), BenchError> {
    let mut records = Vec::new();
    let Bracket { good, bad, probes } = search(cfg, |rate| {
        let probe = at_rate(point, rate);
        let record = crate::run::run(&probe.scenario, &mut |_| {})?;
        done(&probe, &record);
        let file = format!("{}.json", probe.name);
        write_json(&out_dir.join(&file), &record)?;
        let p = Probe {
            offered: rate,
            throughput_tx_s: record.throughput_tx_s,
            p50_ms: record.latency_ms.p50,
            p99_ms: record.latency_ms.p99,
            sustained: cfg.sustained(rate, record.throughput_tx_s, record.latency_ms.p99),
            record: file.clone(),
        };
        records.push((file, record));
        Ok(p)
    })?;
    let s = &point.scenario;
    let knee = Knee {
        protocol: s.protocol.as_str().to_string(),
        n: s.nodes,
        runtime: match s.runtime {
            crate::scenario::Runtime::Sim => "sim".into(),
            crate::scenario::Runtime::Quic => "quic".into(),
        },
        rule: cfg.rule(),
        config: cfg.clone(),
        knee_rate: good,
        first_unsustained: bad,
        probes,
    };
    Ok((knee, records))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").map_err(|source| BenchError::Write {
        file: path.to_path_buf(),
        source,
    })
}

/// Writes `saturation.json` (the knees, in search order) into `dir`.
pub fn write_knees(dir: &Path, knees: &[Knee]) -> Result<PathBuf, BenchError> {
    let path = dir.join(FILE);
    write_json(&path, &knees)?;
    Ok(path)
}

/// Every knee in `saturation.json` files under `dir` (sorted by path);
/// files that do not parse as knees are skipped.
pub fn read_knees(dir: &Path) -> Vec<Knee> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|t| serde_json::from_str::<Vec<Knee>>(&t).ok())
        .flatten()
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.is_dir() {
            collect(&path, out);
        } else if path.file_name().is_some_and(|n| n == FILE) {
            out.push(path);
        }
    }
}

/// The knees as a table: one line per protocol.
pub fn table(knees: &[Knee]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if let Some(k) = knees.first() {
        let _ = writeln!(out, "saturation knee ({})", k.rule);
    }
    let _ = writeln!(
        out,
        "{:<10}{:>4}{:>8}{:>12}{:>12}{:>10}{:>10}{:>14}{:>8}",
        "protocol",
        "n",
        "runtime",
        "knee tx/s",
        "completed",
        "p50 ms",
        "p99 ms",
        "unsustained",
        "probes"
    );
    for k in knees {
        let rate = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |r| format!("{r:.0}"));
        let at = k.at_knee();
        let _ = writeln!(
            out,
            "{:<10}{:>4}{:>8}{:>12}{:>12}{:>10}{:>10}{:>14}{:>8}",
            k.protocol,
            k.n,
            k.runtime,
            rate(k.knee_rate),
            at.map_or_else(|| "-".into(), |p| format!("{:.0}", p.throughput_tx_s)),
            at.map_or_else(|| "-".into(), |p| format!("{:.2}", p.p50_ms)),
            at.map_or_else(|| "-".into(), |p| format!("{:.2}", p.p99_ms)),
            rate(k.first_unsustained),
            k.probes.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A system that completes min(offered, cap) with p99 of 5 ms below the
    /// cap and 5 s above it.
    fn capped(cap: f64, cfg: &SearchConfig) -> impl FnMut(f64) -> Result<Probe, BenchError> {
        let cfg = cfg.clone();
        move |rate| {
            let (tput, p99) = if rate <= cap {
                (rate, 5.0)
            } else {
                (cap, 5000.0)
            };
            Ok(Probe {
                offered: rate,
                throughput_tx_s: tput,
                p50_ms: 1.0,
                p99_ms: p99,
                sustained: cfg.sustained(rate, tput, p99),
                record: String::new(),
            })
        }
    }

    #[test]
    fn the_search_doubles_then_bisects_to_within_the_resolution() {
        let cfg = SearchConfig::default();
        let Bracket { good, bad, probes } = search(&cfg, capped(50_000.0, &cfg)).unwrap();
        let rates: Vec<f64> = probes.iter().map(|p| p.offered).collect();
        assert_eq!(
            rates,
            [2e3, 4e3, 8e3, 16e3, 32e3, 64e3, 45e3, 54e3, 49e3, 51e3]
        );
        assert_eq!((good, bad), (Some(49e3), Some(51e3)));
    }

    #[test]
    fn a_system_sustaining_the_whole_range_has_no_unsustained_rate() {
        let cfg = SearchConfig {
            max: 10_000.0,
            ..SearchConfig::default()
        };
        let Bracket { good, bad, probes } = search(&cfg, capped(1e9, &cfg)).unwrap();
        assert_eq!((good, bad), (Some(10_000.0), None));
        assert_eq!(probes.len(), 4, "2k, 4k, 8k, then max");
    }

    #[test]
    fn a_max_that_rounds_down_ends_the_growth_instead_of_repeating_it() {
        let cfg = SearchConfig {
            max: 123_456.0,
            ..SearchConfig::default()
        };
        let Bracket { good, bad, probes } = search(&cfg, capped(1e9, &cfg)).unwrap();
        let rates: Vec<f64> = probes.iter().map(|p| p.offered).collect();
        assert_eq!(rates, [2e3, 4e3, 8e3, 16e3, 32e3, 64e3, 120e3]);
        assert_eq!((good, bad), (Some(120e3), None));
    }

    #[test]
    fn a_system_failing_the_first_rate_has_no_knee() {
        let cfg = SearchConfig::default();
        let Bracket { good, bad, probes } = search(&cfg, capped(100.0, &cfg)).unwrap();
        assert_eq!((good, bad, probes.len()), (None, Some(2000.0), 1));
    }

    #[test]
    fn a_p99_over_the_bound_is_not_sustained_even_when_throughput_keeps_up() {
        let cfg = SearchConfig::default();
        assert!(cfg.sustained(1000.0, 960.0, 100.0));
        assert!(!cfg.sustained(1000.0, 940.0, 1.0));
        assert!(!cfg.sustained(1000.0, 1000.0, 100.5));
    }

    #[test]
    fn rates_round_to_two_significant_digits() {
        assert_eq!(round_rate(45_254.8), 45_000.0);
        assert_eq!(round_rate(2_000.0), 2_000.0);
        assert_eq!(round_rate(987.0), 990.0);
    }

    #[test]
    fn a_bad_setting_names_its_key() {
        let cfg = SearchConfig {
            keep_up: 1.5,
            ..SearchConfig::default()
        };
        let e = cfg.validate(Path::new("s.toml")).unwrap_err().to_string();
        assert_eq!(e, "s.toml: saturate.keep_up = 1.5: must be in (0, 1]");
    }
}
