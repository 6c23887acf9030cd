//! The simulator checked against the real runtime: the `[sim_vs_quic]`
//! section of `bftbench compare`.
//!
//! One QUIC scenario (n = 4 on loopback, real crypto, open loop, a `[sweep]`
//! of protocols and offered rates reaching past saturation) runs twice:
//! over QUIC as written, and in the simulator as its *twin* ([`sim_twin`]):
//! model crypto charging the scenario's cost profile, and the shared-machine
//! model with as many cores as this machine has, since the QUIC cluster's
//! replicas, clients and transport share them.
//!
//! The metrics, one definition for both runtimes and every protocol:
//! - `saturation_tx_s`: the highest completed throughput (committed requests
//!   per second after the warm-up) over the swept offered rates;
//! - `p50_ms_at_half`, `p99_ms_at_half`: end-to-end latency percentiles at
//!   half of the QUIC saturation throughput, offered to both runtimes (one
//!   more run each, named `*-half`).
//!
//! `relative_error` = (sim − quic) / quic.

use crate::BenchError;
use crate::record::Record;
use crate::scenario::{Runtime, Scenario};
use crate::sweep::Point;
use bft_core::CryptoKind;
use bft_sim::LoadMode;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The metric names of the CSV, in row order per protocol.
pub const METRICS: [&str; 3] = ["saturation_tx_s", "p50_ms_at_half", "p99_ms_at_half"];

/// One CSV row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub protocol: String,
    pub metric: &'static str,
    pub sim: f64,
    pub quic: f64,
}

impl Row {
    /// (sim − quic) / quic; infinite when QUIC measured zero.
    pub fn relative_error(&self) -> f64 {
        (self.sim - self.quic) / self.quic
    }
}

/// The simulated twin of a QUIC scenario on a machine with `cores` cores.
pub fn sim_twin(quic: &Scenario, cores: usize) -> Scenario {
    let mut s = quic.clone();
    s.runtime = Runtime::Sim;
    s.crypto = CryptoKind::Model;
    s.machine.cores = Some(cores.max(1));
    s
}

/// The sweep's points in both runtimes: QUIC ones named `quic-<point>`,
/// simulated ones `sim-<point>`.
pub fn points(base: &Scenario, file: &Path, cores: usize) -> Result<Vec<Point>, BenchError> {
    if base.runtime != Runtime::Quic {
        return Err(BenchError::Invalid {
            file: file.to_path_buf(),
            key: "runtime".into(),
            value: "\"sim\"".into(),
            reason: "the sim-vs-QUIC scenario is the QUIC side; its simulated twin is derived"
                .into(),
        });
    }
    let quic = crate::sweep::points(base, file)?;
    let mut out = Vec::with_capacity(quic.len() * 2);
    for p in &quic {
        out.push(Point {
            scenario: sim_twin(&p.scenario, cores),
            name: format!("sim-{}", p.name),
        });
    }
    for p in quic {
        out.push(Point {
            name: format!("quic-{}", p.name),
            scenario: p.scenario,
        });
    }
    Ok(out)
}

/// Per protocol of `base`'s sweep, the two half-saturation points: the
/// protocol's scenario offered half of its QUIC saturation throughput, in
/// both runtimes.
pub fn half_points(
    base: &Scenario,
    file: &Path,
    cores: usize,
    swept: &[(String, Record)],
) -> Result<Vec<Point>, BenchError> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for p in crate::sweep::points(base, file)? {
        let protocol = p.scenario.protocol;
        if seen.contains(&protocol) {
            continue;
        }
        seen.push(protocol);
        let sat = saturation(swept, protocol.as_str(), "quic");
        if sat <= 0.0 {
            continue;
        }
        let mut s = p.scenario;
        s.load.mode = LoadMode::Open {
            rate: (sat / 2.0 / 100.0).round().max(1.0) * 100.0,
        };
        out.push(Point {
            scenario: sim_twin(&s, cores),
            name: format!("sim-{protocol}-half"),
        });
        out.push(Point {
            scenario: s,
            name: format!("quic-{protocol}-half"),
        });
    }
    Ok(out)
}

/// Whether a record file is one of the half-saturation runs.
pub fn is_half(file: &str) -> bool {
    file.ends_with("-half.json")
}

/// The highest completed throughput of `protocol` in `runtime` over the
/// swept (not half) points.
pub fn saturation(records: &[(String, Record)], protocol: &str, runtime: &str) -> f64 {
    records
        .iter()
        .filter(|(f, r)| !is_half(f) && r.protocol == protocol && r.runtime == runtime)
        .map(|(_, r)| r.throughput_tx_s)
        .fold(0.0, f64::max)
}

/// The rows, protocol by protocol in record order.
pub fn rows(records: &[(String, Record)]) -> Vec<Row> {
    let mut protocols: Vec<&str> = Vec::new();
    for (_, r) in records {
        if !protocols.contains(&r.protocol.as_str()) {
            protocols.push(&r.protocol);
        }
    }
    let half = |protocol: &str, runtime: &str| {
        records
            .iter()
            .find(|(f, r)| is_half(f) && r.protocol == protocol && r.runtime == runtime)
            .map(|(_, r)| r)
    };
    let mut out = Vec::new();
    for p in protocols {
        out.push(Row {
            protocol: p.to_string(),
            metric: METRICS[0],
            sim: saturation(records, p, "sim"),
            quic: saturation(records, p, "quic"),
        });
        if let (Some(s), Some(q)) = (half(p, "sim"), half(p, "quic")) {
            for (metric, sim, quic) in [
                (METRICS[1], s.latency_ms.p50, q.latency_ms.p50),
                (METRICS[2], s.latency_ms.p99, q.latency_ms.p99),
            ] {
                out.push(Row {
                    protocol: p.to_string(),
                    metric,
                    sim,
                    quic,
                });
            }
        }
    }
    out
}

/// `protocol,metric,sim,quic,relative_error`, one row per [`Row`].
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from("protocol,metric,sim,quic,relative_error\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{:.2},{:.2},{:.3}",
            r.protocol,
            r.metric,
            r.sim,
            r.quic,
            r.relative_error()
        );
    }
    out
}

/// Writes `sim-vs-quic.csv` into `out_dir`.
pub fn write_csv(out_dir: &Path, rows: &[Row]) -> Result<PathBuf, BenchError> {
    let path = out_dir.join("sim-vs-quic.csv");
    std::fs::write(&path, csv(rows)).map_err(|source| BenchError::Write {
        file: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_error_is_against_quic() {
        let r = Row {
            protocol: "pbft".into(),
            metric: METRICS[0],
            sim: 90.0,
            quic: 100.0,
        };
        assert!((r.relative_error() + 0.1).abs() < 1e-12);
        assert_eq!(
            csv(&[r]),
            "protocol,metric,sim,quic,relative_error\npbft,saturation_tx_s,90.00,100.00,-0.100\n"
        );
    }

    #[test]
    fn the_twin_is_simulated_on_shared_cores() {
        let text = "protocol = \"pbft\"\nnodes = 4\nruntime = \"quic\"\ncrypto = \"real\"\n\
                    [load]\nmode = \"open\"\nrate = 1000\n[sweep]\nrate = [1000, 2000]\n";
        let file = Path::new("s.toml");
        let s = Scenario::parse(text, file).unwrap();
        let pts = points(&s, file, 2).unwrap();
        let names: Vec<&str> = pts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "sim-pbft-r1000",
                "sim-pbft-r2000",
                "quic-pbft-r1000",
                "quic-pbft-r2000"
            ]
        );
        assert_eq!(pts[0].scenario.runtime, Runtime::Sim);
        assert_eq!(pts[0].scenario.crypto, CryptoKind::Model);
        assert_eq!(pts[0].scenario.machine.cores, Some(2));
        assert_eq!(pts[2].scenario.runtime, Runtime::Quic);
        let sim = Scenario::parse(text.replace("quic", "sim").as_str(), file).unwrap();
        assert!(points(&sim, file, 2).is_err());
    }
}
