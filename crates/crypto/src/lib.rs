//! Ed25519 and BLS12-381 (blst, min_sig) behind bft-core's Crypto trait, plus a cost-model crypto for large simulations.
