//! End-to-end tests: one test binary (linking is the slow part), one module per area.
//! They run the real `sealgate` binary; build it first (`scripts/test` does).

mod audit_cli;
mod bad_input;
mod clients;
mod durability;
mod inspect;
mod layering;
mod lifecycle;
mod smoke;
