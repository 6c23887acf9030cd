//! bft-core's integration tests, as one test binary.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod durability;
mod generic_attacks;
