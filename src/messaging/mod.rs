//! Messaging: threads between a client and a worker, their messages and read markers,
//! over REST and a WebSocket.
//!
//! `services.rs` holds every rule and is called by both edges: `routes.rs` (REST) and
//! `websocket.rs` (one task per socket). `hub.rs` is this instance's share of the
//! real-time delivery: its sockets by user, fed by Redis pub/sub on per-user channels so
//! a push reaches the user's sockets on every instance. `tickets.rs` issues the
//! single-use tickets browsers use to authenticate the handshake.

pub mod domain;
pub mod frames;
pub mod hub;
pub mod models;
pub mod routes;
pub mod schemas;
pub mod services;
pub mod tickets;
pub mod websocket;
