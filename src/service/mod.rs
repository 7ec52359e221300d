//! Service listings: create, read, update, soft delete, and the public search.

pub mod listed;
pub mod models;
pub mod routes;
pub mod schemas;
pub mod search;
pub mod services;
