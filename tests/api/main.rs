//! Integration tests: one binary (linked once), a module per area.

mod common;

mod admin;
mod auth;
mod catalog;
mod cli;
mod events;
mod foundation;
mod jobs;
mod kyc;
mod limits;
mod listed;
mod messaging;
mod notifications;
mod resilience;
mod revocation;
mod search;
mod security;
