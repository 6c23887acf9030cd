//! bft-store's integration tests, as one test binary.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod data_dir;
