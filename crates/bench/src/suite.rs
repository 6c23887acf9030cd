//! `bftbench compare`: a suite of named sweeps, each into its own results
//! directory, then plots, a CSV of everything and a static HTML report.
//!
//! ```toml
//! out_dir = "results"
//! [[sweeps]]
//! name = "scaling"                        # results/scaling/
//! scenario = "compare/scaling.toml"       # relative to this file
//! ```

use crate::BenchError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    #[serde(default = "default_out")]
    pub out_dir: PathBuf,
    pub sweeps: Vec<SuiteSweep>,
    /// The simulator checked against QUIC (see [`crate::agreement`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_vs_quic: Option<SimVsQuic>,
    /// Message sequence diagrams (see [`crate::timeline`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<SuiteTimeline>,
}

/// `[timeline]`: one diagram per point of the scenario's sweep, into
/// `<out_dir>/timeline/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteTimeline {
    pub scenario: PathBuf,
    #[serde(with = "humantime_serde")]
    pub from: std::time::Duration,
    #[serde(with = "humantime_serde")]
    pub to: std::time::Duration,
    /// End each diagram this long after its first view change completes.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub after_recovery: Option<std::time::Duration>,
    #[serde(default)]
    pub about: String,
}

/// `[sim_vs_quic]`: a QUIC scenario with a protocol × rate sweep; its
/// records go to `<out_dir>/sim-vs-quic/`, the comparison to
/// `<out_dir>/sim-vs-quic.csv` and `sim_vs_quic.png`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimVsQuic {
    pub scenario: PathBuf,
    #[serde(default)]
    pub about: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteSweep {
    pub name: String,
    pub scenario: PathBuf,
    /// What this sweep shows, for the report.
    #[serde(default)]
    pub about: String,
    /// Instead of the scenario's rate axis, search each protocol's
    /// saturation rate ([`crate::saturate`]); `saturate = {}` takes the
    /// default rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturate: Option<crate::saturate::SearchConfig>,
}

fn default_out() -> PathBuf {
    PathBuf::from("results")
}

impl Suite {
    pub fn load(path: &Path) -> Result<Suite, BenchError> {
        let text = std::fs::read_to_string(path).map_err(|source| BenchError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let mut suite: Suite = toml::from_str(&text).map_err(|source| BenchError::Parse {
            file: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for (i, s) in suite.sweeps.iter_mut().enumerate() {
            let valid = !s.name.is_empty()
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(BenchError::Invalid {
                    file: path.to_path_buf(),
                    key: format!("sweeps[{i}].name"),
                    value: format!("\"{}\"", s.name),
                    reason: "use letters, digits, '-' or '_' (it names a directory)".into(),
                });
            }
            s.scenario = base.join(&s.scenario);
            if let Some(cfg) = &s.saturate {
                cfg.validate(path)?;
            }
        }
        if let Some(v) = &mut suite.sim_vs_quic {
            v.scenario = base.join(&v.scenario);
        }
        if let Some(t) = &mut suite.timeline {
            t.scenario = base.join(&t.scenario);
            if t.from >= t.to {
                return Err(BenchError::Invalid {
                    file: path.to_path_buf(),
                    key: "timeline.to".into(),
                    value: format!("{:?}", t.to),
                    reason: format!("must be after timeline.from ({:?})", t.from),
                });
            }
        }
        Ok(suite)
    }
}

/// Checks a file `bftbench` reads: a scenario, or a compare suite (a file
/// with `sweeps`), whose every scenario and every point of its sweep is
/// validated. Returns one line per file checked.
pub fn validate_file(path: &Path) -> Result<Vec<String>, BenchError> {
    use crate::scenario::{Overrides, Scenario, display_path};
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let is_suite = text
        .parse::<toml::Table>()
        .is_ok_and(|t| t.contains_key("sweeps"));
    let line = |file: &Path, s: &Scenario| {
        format!(
            "{}: ok ({} n={} f={} runtime={:?} crypto={})",
            file.display(),
            s.protocol,
            s.nodes,
            s.f(),
            s.runtime,
            s.crypto.as_str()
        )
    };
    if !is_suite {
        let s = Scenario::load(path, &Overrides::default())?;
        return Ok(vec![line(path, &s)]);
    }
    let suite = Suite::load(path)?;
    let files = suite
        .sweeps
        .iter()
        .map(|s| &s.scenario)
        .chain(suite.sim_vs_quic.iter().map(|v| &v.scenario))
        .chain(suite.timeline.iter().map(|t| &t.scenario));
    let mut lines = Vec::new();
    for file in files {
        let file = display_path(file);
        let s = Scenario::load(&file, &Overrides::default())?;
        for point in crate::sweep::points(&s, &file)? {
            point.scenario.validate(&file)?;
        }
        lines.push(line(&file, &s));
    }
    lines.push(format!(
        "{}: ok (a suite of {} sweeps{}{})",
        path.display(),
        suite.sweeps.len(),
        if suite.sim_vs_quic.is_some() {
            ", a sim-vs-QUIC section"
        } else {
            ""
        },
        if suite.timeline.is_some() {
            ", timelines"
        } else {
            ""
        }
    ));
    Ok(lines)
}

/// Removes what an earlier `bftbench compare` wrote into one section's
/// directory (records, `summary.csv`, `saturation.json`, the copied
/// scenario, timelines), so the directory holds this run's files only and
/// `bftbench plot` or `diff` never mix runs. Subdirectories and other files
/// are left alone; a missing directory is fine.
pub fn clear_section(dir: &Path) -> Result<(), BenchError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let ours = path.is_file()
            && path
                .extension()
                .is_some_and(|e| e == "json" || e == "csv" || e == "toml" || e == "svg");
        if ours {
            std::fs::remove_file(&path).map_err(|source| BenchError::Write {
                file: path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}
