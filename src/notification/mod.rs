//! Notifications: what the [`crate::events`] dispatcher makes of domain events for the
//! people they concern, stored (one per event and recipient), pushed over the WebSocket
//! after commit, and listed or marked read over REST.

pub mod models;
pub mod routes;
pub mod schemas;
pub mod services;
