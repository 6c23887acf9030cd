//! Shrinking a violating scenario to a minimal one, and writing it as the
//! TOML `bftbench run` replays.

use super::generate::duration_for;
use super::run_case;
use crate::BenchError;
use crate::scenario::Scenario;

/// Greedy shrinking: drop one fault, partition, Twins round or pinned leader
/// at a time, keeping each removal after which the scenario still violates.
/// Returns the smallest scenario found and its problems.
pub fn shrink(
    mut s: Scenario,
    mut problems: Vec<String>,
) -> Result<(Scenario, Vec<String>), BenchError> {
    let mut tries = 0;
    'again: loop {
        for candidate in smaller(&s) {
            tries += 1;
            if tries > 200 {
                break 'again;
            }
            let outcome = run_case(&candidate)?;
            if !outcome.problems.is_empty() {
                s = candidate;
                problems = outcome.problems;
                continue 'again;
            }
        }
        break;
    }
    Ok((s, problems))
}

/// Every scenario one step smaller than `s`.
pub(super) fn smaller(s: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    for i in 0..s.faults.len() {
        let mut c = s.clone();
        c.faults.remove(i);
        out.push(c);
    }
    for i in 0..s.network.partitions.len() {
        let mut c = s.clone();
        c.network.partitions.remove(i);
        out.push(c);
    }
    if let Some(t) = &s.twins
        && !t.partitions.is_empty()
    {
        let mut c = s.clone();
        if let Some(ct) = c.twins.as_mut() {
            ct.partitions.pop();
        }
        out.push(c);
    }
    if s.leaders.as_ref().is_some_and(|l| l.prefix.is_empty()) {
        let mut c = s.clone();
        c.leaders = None;
        out.push(c);
    }
    if let Some(l) = &s.leaders
        && !l.prefix.is_empty()
    {
        let mut c = s.clone();
        if let Some(cl) = c.leaders.as_mut() {
            cl.prefix.pop();
        }
        out.push(c);
    }
    for c in &mut out {
        c.duration = duration_for(c);
    }
    out
}

/// The scenario as a file `bftbench run` takes.
pub fn to_toml(s: &Scenario) -> String {
    match toml::to_string(s) {
        Ok(t) => t,
        Err(e) => format!("# cannot write this scenario as TOML: {e}\n{s:#?}\n"),
    }
}
