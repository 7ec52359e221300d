//! Workers: profile, weekly availability, public profile, and KYC submissions.

pub mod availability;
pub mod kyc;
pub mod models;
pub mod routes;
pub mod schemas;
pub mod services;
