//! Clients: profile and favorite listings.

pub mod routes;
pub mod schemas;
pub mod services;
