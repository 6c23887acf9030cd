//! Mutation controls: each protocol crate's `mutants` feature plants one
//! broken rule at a time; the fuzzer, with at most f faulty identities, must
//! find a violation (agreement, or liveness after the heal) for each. A
//! fuzzer that cannot find a planted bug proves nothing by finding none.

use bft_hotstuff::HotStuffMutant;
use bft_pbft::PbftMutant;
use bft_qbft::QbftMutant;
use bftbench::fuzz::{Finding, FuzzOptions, fuzz, run_case, to_toml};
use bftbench::scenario::{ProtocolName, Scenario};
use std::path::Path;

fn base(protocol: ProtocolName, n: usize) -> Scenario {
    let text = format!("protocol = \"{protocol}\"\nnodes = {n}\n");
    Scenario::parse(&text, Path::new("mutant.toml")).unwrap()
}

/// Fault scenarios (seed 11), then Twins scenarios (seed 12).
const FAULTS_FIRST: [(bool, u64); 2] = [(false, 11), (true, 12)];

/// Fault scenarios, then Twins scenarios, until one violates.
fn hunt(name: &str, scenario: Scenario, budget: u64) -> Finding {
    hunt_in(name, scenario, budget, FAULTS_FIRST)
}

/// `hunt`, in the given order of (Twins?, seed).
fn hunt_in(name: &str, scenario: Scenario, budget: u64, phases: [(bool, u64); 2]) -> Finding {
    for (twins, seed) in phases {
        let opts = FuzzOptions {
            base: scenario.clone(),
            scenarios: budget,
            seed,
            twins,
            exhaustive: None,
            faulty: None,
            threads: 1,
            stop_at_first: true,
            time_box: None,
            verbose: false,
        };
        let s = fuzz(&opts).unwrap();
        if let Some(f) = s.findings.into_iter().next() {
            eprintln!(
                "{name}: caught in case {} of `bftbench fuzz --protocol {} --nodes {} --seed {seed}{}` (case seed {}): {}\n{}",
                f.case,
                scenario.protocol,
                scenario.nodes,
                if twins { " --twins" } else { "" },
                f.case_seed,
                f.problems[0],
                to_toml(&f.minimal)
            );
            // The finding must be the mutant's: the same minimal scenario
            // with the real rule is safe and live.
            let mut real = f.minimal.clone();
            (real.pbft.mutant, real.qbft.mutant, real.hotstuff.mutant) = (None, None, None);
            let outcome = run_case(&real).unwrap();
            assert!(
                outcome.problems.is_empty(),
                "{name}: the minimal scenario fails without the mutant too: {:?}",
                outcome.problems
            );
            return f;
        }
        eprintln!(
            "{name}: nothing in {} {} scenarios",
            s.runs,
            if twins { "twins" } else { "fault" }
        );
    }
    panic!("mutant {name} survived {budget} fault and {budget} twins scenarios");
}

#[test]
fn pbft_quorum_2f_is_caught() {
    let mut s = base(ProtocolName::Pbft, 4);
    s.pbft.mutant = Some(PbftMutant::Quorum2f);
    hunt("pbft quorum-2f", s, 3_000);
}

#[test]
fn pbft_o_set_lowest_view_is_caught() {
    let mut s = base(ProtocolName::Pbft, 4);
    s.pbft.mutant = Some(PbftMutant::OSetLowestView);
    // Twins first: since a crashed replica restarts from its store (no
    // longer resuming with its whole log and pool), none of the first 3 000
    // fault scenarios of seed 11 catches it, and Twins does in case 213.
    hunt_in(
        "pbft o-set-lowest-view",
        s,
        3_000,
        [(true, 12), (false, 11)],
    );
}

#[test]
fn qbft_quorum_2f1_at_n6_is_caught() {
    let mut s = base(ProtocolName::Qbft, 6);
    s.qbft.mutant = Some(QbftMutant::Quorum2f1);
    hunt("qbft quorum-2f1", s, 3_000);
}

#[test]
fn qbft_ignore_highest_prepared_is_caught() {
    let mut s = base(ProtocolName::Qbft, 4);
    s.qbft.mutant = Some(QbftMutant::IgnoreHighestPrepared);
    hunt("qbft ignore-highest-prepared", s, 3_000);
}

#[test]
fn hotstuff_vote_rule_and_is_caught() {
    let mut s = base(ProtocolName::Hotstuff, 4);
    s.hotstuff.mutant = Some(HotStuffMutant::VoteRuleAnd);
    hunt("hotstuff vote-rule-and", s, 3_000);
}

/// The fork needs a Byzantine leader of four views in a row that chooses,
/// view by view, who gets which block: in the scripted scenario of
/// crates/hotstuff/tests/it/mutants.rs (`indirect_chain`), a block on an
/// older QC to everyone, twice, then the honest block, then a fork on the
/// QC below the newest to two of three peers. The fuzzer reaches it with
/// the `fork` behaviour (a seeded choice of recipients and base QC per view
/// it leads, run for 20 s as the favoured leader), about once in 7 500
/// fault scenarios (4 in 30 000 at seed 11; the Twins scenarios, sampled
/// or exhaustive, never did), so this hunt gets a larger budget than the
/// others.
#[test]
fn hotstuff_commit_indirect_chain_is_caught() {
    let mut s = base(ProtocolName::Hotstuff, 4);
    s.hotstuff.mutant = Some(HotStuffMutant::CommitIndirectChain);
    hunt("hotstuff commit-indirect-chain", s, 10_000);
}
