//! Integration tests: one binary (linked once), a module per area.

mod common;

mod abuse;
mod admin;
mod auth;
mod catalog;
mod cli;
mod console;
mod contract;
mod events;
mod foundation;
mod jobs;
mod kyc;
mod lifecycle;
mod limits;
mod listed;
mod logging;
mod messaging;
mod notifications;
mod oidc;
mod resilience;
mod revocation;
mod search;
mod security;
mod tls;
