//! Sweeps: every combination of a scenario's `[sweep]` axes is one run, in a
//! fixed order (protocol × nodes × rate × outstanding × batch_size × tx_size
//! × seed), each written as a record, plus one CSV table of all points.

use crate::BenchError;
use crate::record::Record;
use crate::scenario::{Scenario, SweepAxes};
use bft_sim::LoadMode;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One point of a sweep: the scenario to run and the file its record goes to.
#[derive(Clone, Debug)]
pub struct Point {
    pub scenario: Scenario,
    pub name: String,
}

/// Expands the axes into points. Empty axes keep the scenario's own value.
pub fn points(base: &Scenario, file: &Path) -> Result<Vec<Point>, BenchError> {
    let axes = base.sweep.clone().unwrap_or_default();
    let mut out = vec![(base.clone(), String::new())];
    out = expand(out, &axes.protocol, |s, p, name| {
        s.protocol = *p;
        name.push_str(p.as_str());
    });
    out = expand(out, &axes.nodes, |s, n, name| {
        s.nodes = *n;
        let _ = write!(name, "-n{n}");
    });
    out = expand(out, &axes.rate, |s, r, name| {
        s.load.mode = LoadMode::Open { rate: *r };
        let _ = write!(name, "-r{r}");
    });
    out = expand(out, &axes.outstanding, |s, o, name| {
        s.load.mode = LoadMode::Closed { outstanding: *o };
        let _ = write!(name, "-o{o}");
    });
    out = expand(out, &axes.batch_size, |s, b, name| {
        s.batch.max_size = *b;
        let _ = write!(name, "-b{b}");
    });
    out = expand(out, &axes.tx_size, |s, t, name| {
        s.load.tx_size = *t;
        let _ = write!(name, "-tx{t}");
    });
    out = expand(out, &axes.seed, |s, seed, name| {
        s.seed = *seed;
        let _ = write!(name, "-s{seed}");
    });
    out.into_iter()
        .map(|(mut scenario, name)| {
            scenario.sweep = None;
            scenario.validate(file)?;
            let name = if name.is_empty() {
                format!("{}-n{}", scenario.protocol, scenario.nodes)
            } else if axes.protocol.is_empty() {
                format!("{}-{}", scenario.protocol, name.trim_start_matches('-'))
            } else {
                name
            };
            Ok(Point { scenario, name })
        })
        .collect()
}

fn expand<T>(
    points: Vec<(Scenario, String)>,
    axis: &[T],
    set: impl Fn(&mut Scenario, &T, &mut String),
) -> Vec<(Scenario, String)> {
    if axis.is_empty() {
        return points;
    }
    let mut out = Vec::with_capacity(points.len() * axis.len());
    for (s, name) in points {
        for v in axis {
            let (mut s, mut name) = (s.clone(), name.clone());
            set(&mut s, v, &mut name);
            out.push((s, name));
        }
    }
    out
}

/// True if the scenario has any sweep axis.
pub fn has_axes(axes: &Option<SweepAxes>) -> bool {
    axes.as_ref().is_some_and(|a| {
        !(a.protocol.is_empty()
            && a.nodes.is_empty()
            && a.rate.is_empty()
            && a.outstanding.is_empty()
            && a.batch_size.is_empty()
            && a.tx_size.is_empty()
            && a.seed.is_empty())
    })
}

pub const CSV_HEADER: &str = "protocol,n,f,runtime,crypto,seed,load_mode,offered_rate,outstanding,clients,batch_size,tx_size,faults,decisions,requests_committed,throughput_tx_s,decisions_per_s,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,empty_decisions,messages_per_decision,bytes_per_decision,messages_per_request,bytes_per_request,retransmitted_messages,retransmitted_bytes,view_changes,view_change_messages,view_change_bytes,view_change_retransmitted,view_change_s,protocol_view_changes,violations,record";

/// An optional figure: empty when the runtime does not measure it.
fn opt<T: std::fmt::Display>(x: Option<T>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

/// One CSV row for a record (all fields are plain numbers or identifiers).
pub fn csv_row(r: &Record, file: &str) -> String {
    let sc = &r.scenario;
    let load = &sc["load"];
    let num = |v: &serde_json::Value| v.as_f64().map(|x| x.to_string()).unwrap_or_default();
    let faults = sc["faults"].as_array().map(|a| a.len()).unwrap_or(0);
    let l = &r.latency_ms;
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.4},{:.4},{:.4},{:.4},{:.4},{},{:.4},{:.2},{:.4},{:.2},{},{},{},{},{},{},{},{},{},{}",
        r.protocol,
        r.n,
        r.f,
        r.runtime,
        r.crypto,
        r.seed,
        load["mode"].as_str().unwrap_or(""),
        num(&load["rate"]),
        num(&load["outstanding"]),
        num(&load["clients"]),
        num(&sc["batch"]["max_size"]),
        num(&load["tx_size"]),
        faults,
        r.decisions,
        r.requests_committed,
        r.throughput_tx_s,
        r.decisions_per_s,
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max,
        r.empty_decisions,
        r.messages_per_decision,
        r.bytes_per_decision,
        r.messages_per_request,
        r.bytes_per_request,
        r.retransmitted_messages,
        r.retransmitted_bytes,
        opt(r.view_changes),
        opt(r.view_change_messages),
        opt(r.view_change_bytes),
        opt(r.view_change_retransmitted),
        opt(r.view_change_s.map(|s| format!("{s:.4}"))),
        r.protocol_view_changes,
        r.safety_violations.len(),
        file,
    )
}

/// Writes `summary.csv` in `dir` for the given records.
pub fn write_csv(dir: &Path, records: &[(String, Record)]) -> Result<PathBuf, BenchError> {
    let mut text = String::from(CSV_HEADER);
    text.push('\n');
    for (file, r) in records {
        text.push_str(&csv_row(r, file));
        text.push('\n');
    }
    let path = dir.join("summary.csv");
    std::fs::write(&path, text).map_err(|source| BenchError::Write {
        file: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Reads every record (`*.json` that parses as one) in `dir` and its
/// subdirectories, sorted by path; names are relative to `dir`.
pub fn read_records(dir: &Path) -> Result<Vec<(String, Record)>, BenchError> {
    let mut files = Vec::new();
    collect_json(dir, &mut files)?;
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| BenchError::Read {
            file: f.clone(),
            source,
        })?;
        if let Ok(r) = serde_json::from_str::<Record>(&text) {
            let name = f
                .strip_prefix(dir)
                .unwrap_or(&f)
                .to_string_lossy()
                .into_owned();
            out.push((name, r));
        }
    }
    Ok(out)
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BenchError> {
    let entries = std::fs::read_dir(dir).map_err(|source| BenchError::Read {
        file: dir.to_path_buf(),
        source,
    })?;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs the points on `threads` worker threads (each simulation is single
/// threaded and independent, so results do not depend on the interleaving),
/// writes `<out_dir>/<name>.json` per point and `summary.csv`, and returns
/// the records in point order. `done` is called after each point.
pub fn run_points(
    points: &[Point],
    out_dir: &Path,
    threads: usize,
    done: &(dyn Fn(&Point, &Record) + Sync),
) -> Result<Vec<(String, Record)>, BenchError> {
    std::fs::create_dir_all(out_dir).map_err(|source| BenchError::Write {
        file: out_dir.to_path_buf(),
        source,
    })?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<Result<Record, BenchError>>>> =
        std::sync::Mutex::new((0..points.len()).map(|_| None).collect());
    // Simulated points run in parallel; QUIC points measure wall-clock time
    // and CPU, so they run alone, one after another, afterwards.
    let (sim, quic): (Vec<usize>, Vec<usize>) = (0..points.len())
        .partition(|&i| points[i].scenario.runtime == crate::scenario::Runtime::Sim);
    let run_one = |i: usize| {
        let Some(point) = points.get(i) else { return };
        let result = crate::run::run(&point.scenario, &mut |_| {});
        if let Ok(r) = &result {
            done(point, r);
        }
        if let Ok(mut slots) = results.lock()
            && let Some(slot) = slots.get_mut(i)
        {
            *slot = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(sim.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(&i) = sim.get(k) else { break };
                    run_one(i);
                }
            });
        }
    });
    for i in quic {
        run_one(i);
    }
    let slots = results.into_inner().unwrap_or_default();
    let mut records = Vec::with_capacity(points.len());
    for (point, slot) in points.iter().zip(slots) {
        let record = match slot {
            Some(r) => r?,
            None => {
                return Err(BenchError::Unsupported(format!(
                    "sweep point {} did not run",
                    point.name
                )));
            }
        };
        let file = format!("{}.json", point.name);
        let path = out_dir.join(&file);
        let text = serde_json::to_string_pretty(&record)?;
        std::fs::write(&path, text + "\n").map_err(|source| BenchError::Write {
            file: path.clone(),
            source,
        })?;
        records.push((file, record));
    }
    write_csv(out_dir, &records)?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ProtocolName;

    #[test]
    fn axes_expand_in_a_fixed_order() {
        let text = "protocol = \"pbft\"\nnodes = 4\n[sweep]\nprotocol = [\"pbft\", \"hotstuff\"]\nnodes = [4, 7]\nbatch_size = [1, 10]\n";
        let s = Scenario::parse(text, Path::new("s.toml")).unwrap();
        let pts = points(&s, Path::new("s.toml")).unwrap();
        assert_eq!(pts.len(), 8);
        assert_eq!(pts[0].name, "pbft-n4-b1");
        assert_eq!(pts[7].name, "hotstuff-n7-b10");
        assert_eq!(pts[7].scenario.protocol, ProtocolName::Hotstuff);
        assert_eq!(
            (pts[7].scenario.nodes, pts[7].scenario.batch.max_size),
            (7, 10)
        );
        assert!(pts.iter().all(|p| p.scenario.sweep.is_none()));
    }

    #[test]
    fn an_invalid_point_names_the_key() {
        let text = "protocol = \"pbft\"\nnodes = 4\n[sweep]\nnodes = [4, 3]\n";
        let s = Scenario::parse(text, Path::new("s.toml")).unwrap();
        let e = s.validate(Path::new("s.toml")).unwrap_err().to_string();
        assert_eq!(e, "s.toml: sweep.nodes = 3: each n must be in 4..=1024");
    }
}
