//! Integration tests: one binary (linked once), a module per area.

mod common;

mod admin;
mod auth;
mod catalog;
mod cli;
mod foundation;
mod jobs;
mod kyc;
mod limits;
mod messaging;
mod resilience;
mod revocation;
mod security;
