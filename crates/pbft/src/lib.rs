//! Castro-Liskov PBFT (signature variant) as a sans-IO state machine.
