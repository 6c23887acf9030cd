//! The integration tests of this crate, as one test binary (one link
//! instead of one per file). Each module is one former test file.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod durable;
mod ingress;
mod leaders;
mod metrics;
mod quic_counts;
mod quic_faults;
