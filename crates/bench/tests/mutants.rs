#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
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

/// Fault scenarios, then Twins scenarios, until one violates.
fn hunt(name: &str, scenario: Scenario, budget: u64) -> Finding {
    for (twins, seed) in [(false, 11), (true, 12)] {
        let opts = FuzzOptions {
            base: scenario.clone(),
            scenarios: budget,
            seed,
            twins,
            exhaustive: None,
            faulty: None,
            threads: 1,
            stop_at_first: true,
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
    hunt("pbft o-set-lowest-view", s, 3_000);
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

/// Not yet reached by random scenarios: the fork needs a Byzantine leader
/// of three or more views that certifies a block off the committed chain on
/// an older QC, with the odd recipients forming a quorum with it. The
/// scripted scenario in crates/hotstuff/tests/mutants.rs
/// (`indirect_chain`) catches this mutant deterministically and runs in CI;
/// the fuzzer does not, in 3 000 fault and 3 000 Twins scenarios, nor does
/// the exhaustive Twins enumeration (one twin, n = 4) of 3 rounds — all
/// 262 144 scenarios, with rounds of the default 500 ms view timeout and of
/// 100 ms and 20 ms (`[hotstuff] view_timeout`), nor the first 3 000 000 of
/// the 16 777 216 four-round scenarios at 100 ms: the fork needs a faulty
/// leader of four views in a row that picks each recipient's block, and (we
/// think) a round of virtual time spans many HotStuff views whenever a side
/// has a quorum, so a few rounds cannot script views 9–12 one by one.
#[test]
#[ignore = "the fuzzer does not find this mutant yet; crates/hotstuff/tests/mutants.rs catches it with a scripted scenario"]
fn hotstuff_commit_indirect_chain_is_caught() {
    let mut s = base(ProtocolName::Hotstuff, 4);
    s.hotstuff.mutant = Some(HotStuffMutant::CommitIndirectChain);
    hunt("hotstuff commit-indirect-chain", s, 3_000);
}
