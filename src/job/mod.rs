//! Bookings: booking a worker's listing, its lifecycle, history and expiry.

pub mod lifecycle;
pub mod models;
pub mod routes;
pub mod schedule;
pub mod schemas;
pub mod services;
