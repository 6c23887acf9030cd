//! The integration tests of this crate, as one test binary (one link
//! instead of one per file). Each module is one former test file, and
//! `conformance` the properties every protocol is checked for by the same
//! generic code.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod admission;
mod calibrate;
mod conformance;
mod fuzz;
mod kill_restart;
mod metrics;
mod mutants;
mod quic_store;
mod sweep_plot;
mod wan;
