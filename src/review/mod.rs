//! Reviews: a client's rating of a completed job, and the ratings it feeds.

pub mod routes;
pub mod schemas;
pub mod services;
