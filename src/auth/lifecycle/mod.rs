//! Account lifecycle: proving an email address and resetting a forgotten password, both
//! through single-use links sent by email.

pub mod routes;
pub mod schemas;
pub mod services;
pub mod tokens;
