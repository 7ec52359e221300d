//! Integration tests: one binary (linked once), a module per area.

mod common;

mod auth;
mod cli;
mod foundation;
mod limits;
mod resilience;
mod revocation;
