//! Chained HotStuff with BLS-aggregated quorum certificates and a pacemaker, as a sans-IO state machine.
