//! The integration tests of this crate, as one test binary (one link
//! instead of one per file). Each module is one former test file.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

mod byzantine;
mod fuzz_findings;
mod leaders;
mod mutants;
mod replica;
mod sim_counts;
mod sim_faults;
