//! Data files a scenario names: a cost profile (`[cost] profile`) and a
//! region file (`[network] regions_file`), found and merged into the
//! scenario's tables before it is parsed.

use crate::BenchError;
use bft_crypto::CostModel;
use std::path::{Path, PathBuf};

/// What a scenario that names no cost profile runs with:
/// `CostModel::default()`, which equals this file (a test checks it).
pub const BUILT_IN_PROFILE: &str = "built-in default (bench-configs/costs/default.toml)";

/// The keys a region data file (`[network] regions_file`) may hold.
pub const REGIONS_FILE_KEYS: [&str; 4] = ["regions", "one_way_ms", "jitter_ms", "loss"];

/// Where a data file a scenario names (`[network] regions_file`, `[cost]
/// profile`) points: beside the scenario, else
/// under the `bench-configs/` directory that holds the scenario, else under
/// `./bench-configs/`. The first that exists; all candidates when none.
pub fn resolve_data_file(name: &str, scenario: &Path) -> Result<PathBuf, Vec<PathBuf>> {
    let rel = Path::new(name);
    if rel.is_absolute() {
        return if rel.is_file() {
            Ok(rel.to_path_buf())
        } else {
            Err(vec![rel.to_path_buf()])
        };
    }
    let dir = scenario.parent().unwrap_or(Path::new(""));
    let mut candidates = vec![dir.join(rel)];
    candidates.extend(
        dir.ancestors()
            .filter(|a| a.file_name().is_some_and(|n| n == "bench-configs"))
            .map(|a| a.join(rel)),
    );
    candidates.push(Path::new("bench-configs").join(rel));
    candidates.dedup();
    match candidates.iter().find(|c| c.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(candidates),
    }
}

/// Reads a cost profile (`[cost] profile = name`, found like a region data
/// file) and fills the scenario's `[cost]` with every figure it gives that
/// the scenario does not set itself. Returns the profile's path as found.
pub(super) fn merge_cost_profile(
    scenario: &mut toml::Table,
    name: &toml::Value,
    path: &Path,
) -> Result<String, BenchError> {
    let bad = |value: String, reason: String| BenchError::Invalid {
        file: path.to_path_buf(),
        key: "cost.profile".into(),
        value,
        reason,
    };
    let Some(name) = name.as_str() else {
        return Err(bad(name.to_string(), "must be a path (a string)".into()));
    };
    let found = resolve_data_file(name, path).map_err(|tried| {
        let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        bad(
            format!("\"{name}\""),
            format!("no such file (looked for {})", tried.join(", ")),
        )
    })?;
    let text = std::fs::read_to_string(&found).map_err(|source| BenchError::Read {
        file: found.clone(),
        source,
    })?;
    let parse_err = |source| BenchError::Parse {
        file: found.clone(),
        source,
    };
    let data: toml::Table = toml::from_str(&text).map_err(parse_err)?;
    let figures = match data.get("cost") {
        Some(toml::Value::Table(t)) => t.clone(),
        _ => {
            return Err(BenchError::Invalid {
                file: found.clone(),
                key: "cost".into(),
                value: "(missing)".into(),
                reason: "a cost profile is a [cost] table of figures".into(),
            });
        }
    };
    // Checked against the schema here, so an error names the profile file.
    let _: CostModel = toml::Value::Table(figures.clone())
        .try_into()
        .map_err(parse_err)?;
    let cost = scenario
        .entry("cost")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(cost) = cost.as_table_mut() {
        for (k, v) in figures {
            cost.entry(k).or_insert(v);
        }
    }
    Ok(display_path(&found).display().to_string())
}

/// Reads and checks a region data file, then merges it into the scenario's
/// `[network.regions]` (creating it; `model` defaults to "regions").
pub(super) fn merge_regions_file(
    scenario: &mut toml::Table,
    name: &toml::Value,
    path: &Path,
) -> Result<(), BenchError> {
    let bad = |file: &Path, key: &str, value: String, reason: String| BenchError::Invalid {
        file: file.to_path_buf(),
        key: key.to_string(),
        value,
        reason,
    };
    let Some(name) = name.as_str() else {
        return Err(bad(
            path,
            "network.regions_file",
            name.to_string(),
            "must be a path (a string)".into(),
        ));
    };
    let data_path = resolve_data_file(name, path).map_err(|tried| {
        let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        bad(
            path,
            "network.regions_file",
            format!("\"{name}\""),
            format!("no such file (looked for {})", tried.join(", ")),
        )
    })?;
    let text = std::fs::read_to_string(&data_path).map_err(|source| BenchError::Read {
        file: data_path.clone(),
        source,
    })?;
    let data: toml::Table = toml::from_str(&text).map_err(|source| BenchError::Parse {
        file: data_path.clone(),
        source,
    })?;
    check_regions_data(&data)
        .map_err(|(key, value, reason)| bad(&data_path, &key, value, reason))?;
    let Some(net) = scenario
        .get_mut("network")
        .and_then(toml::Value::as_table_mut)
    else {
        return Ok(());
    };
    match net.get("model").map(|m| m.as_str()) {
        None => {
            net.insert("model".into(), toml::Value::String("regions".into()));
        }
        Some(Some("regions")) => {}
        Some(other) => {
            return Err(bad(
                path,
                "network.model",
                other.map_or_else(|| "(not a string)".into(), |m| format!("\"{m}\"")),
                "regions_file needs model = \"regions\"".into(),
            ));
        }
    }
    let regions = net
        .entry("regions")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(regions) = regions.as_table_mut() else {
        return Err(bad(
            path,
            "network.regions",
            regions.to_string(),
            "must be a table".into(),
        ));
    };
    for (key, value) in data {
        regions.entry(key).or_insert(value);
    }
    Ok(())
}

/// A region data file's keys and shapes; errors are (key, value, reason).
pub(super) fn check_regions_data(data: &toml::Table) -> Result<(), (String, String, String)> {
    if let Some(key) = data
        .keys()
        .find(|k| !REGIONS_FILE_KEYS.contains(&k.as_str()))
    {
        return Err((
            key.clone(),
            data.get(key).map(ToString::to_string).unwrap_or_default(),
            format!(
                "unknown key in a region data file; expected {}",
                REGIONS_FILE_KEYS.join(", ")
            ),
        ));
    }
    let names = match data.get("regions").and_then(toml::Value::as_array) {
        Some(a) if !a.is_empty() && a.iter().all(toml::Value::is_str) => a.len(),
        Some(a) => {
            return Err((
                "regions".into(),
                toml::Value::Array(a.clone()).to_string(),
                "need a non-empty list of region names".into(),
            ));
        }
        None => {
            return Err((
                "regions".into(),
                "(missing)".into(),
                "a region data file lists its regions' names".into(),
            ));
        }
    };
    for key in ["one_way_ms", "jitter_ms", "loss"] {
        let Some(m) = data.get(key) else {
            if key == "one_way_ms" {
                return Err((
                    key.into(),
                    "(missing)".into(),
                    "the one-way latency matrix is required".into(),
                ));
            }
            continue;
        };
        let rows = m.as_array().map(Vec::as_slice).unwrap_or_default();
        let shaped = m.is_array()
            && rows.len() == names
            && rows
                .iter()
                .all(|r| r.as_array().is_some_and(|r| r.len() == names));
        if !shaped {
            return Err((
                key.into(),
                m.to_string(),
                format!("must be a {names}×{names} matrix, one row per region"),
            ));
        }
        let max = if key == "loss" { 1.0 } else { f64::MAX };
        for (a, row) in rows.iter().enumerate() {
            for (b, v) in row
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let x = v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
                if !x.is_some_and(|x| x.is_finite() && (0.0..=max).contains(&x)) {
                    let want = if key == "loss" {
                        "not a probability in [0, 1]"
                    } else {
                        "need a number of milliseconds ≥ 0"
                    };
                    return Err((format!("{key}[{a}][{b}]"), v.to_string(), want.into()));
                }
            }
        }
    }
    Ok(())
}

/// The path shown in messages: relative when possible.
pub fn display_path(p: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf())
}
