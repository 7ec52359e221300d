//! The JWT signing key when none is configured: generated once, kept in PostgreSQL.
//!
//! A key written in the source would let anyone who read it forge an admin token. A
//! key generated per process would log everyone out on every restart and make
//! instances reject each other's tokens. So the first instance to start generates 384
//! random bits and stores them in `app_secrets`; every instance (and every restart)
//! reads the same row. Production still requires `JWT_SECRET`, so the key can live in a
//! secret manager rather than next to the data it protects.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use rand::RngCore;

use crate::{
    config::{Secret, Settings},
    db::{DbPool, schema::app_secrets},
};

/// The row the generated JWT key is kept under.
const JWT_KEY: &str = "jwt_signing_key";

/// The configured key, or the deployment's generated one (created on first use).
pub async fn resolve(settings: &Settings, db: &DbPool) -> anyhow::Result<Secret> {
    if let Some(secret) = &settings.jwt_secret {
        return Ok(secret.clone());
    }
    let mut conn = crate::db::checkout(db).await?;
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    // Two instances starting together: the first insert wins, both read its value.
    diesel::insert_into(app_secrets::table)
        .values((
            app_secrets::name.eq(JWT_KEY),
            app_secrets::value.eq(URL_SAFE_NO_PAD.encode(bytes)),
        ))
        .on_conflict_do_nothing()
        .execute(&mut conn)
        .await?;
    let value: String = app_secrets::table
        .find(JWT_KEY)
        .select(app_secrets::value)
        .first(&mut conn)
        .await?;
    Ok(Secret::new(value))
}
