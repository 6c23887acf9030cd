//! Deterministic discrete-event simulator: network models, faults, load, and a safety oracle.
