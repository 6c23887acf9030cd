//! QBFT (ConsenSys Dafny spec / Besu semantics) as a sans-IO state machine.
