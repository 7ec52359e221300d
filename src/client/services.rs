//! Client profile and favorites.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use poem_openapi::types::MaybeUndefined;

use crate::{
    client::schemas::{ClientPatch, ClientProfile},
    core::ids::{ServiceId, UserId},
    core::validate::{all_valid, trimmed},
    db::schema::{clients, favorites, users},
    error::{AppError, FieldError},
    service::search,
    state::AppState,
};

async fn load(conn: &mut AsyncPgConnection, id: UserId) -> Result<ClientProfile, AppError> {
    let (full_name, phone, city, created_at) = clients::table
        .inner_join(users::table)
        .filter(clients::user_id.eq(id))
        .select((
            users::full_name,
            clients::phone,
            clients::city,
            clients::created_at,
        ))
        .first(conn)
        .await?;
    Ok(ClientProfile {
        id,
        full_name,
        phone,
        city,
        created_at,
    })
}

pub async fn profile(state: &AppState, me: UserId) -> Result<ClientProfile, AppError> {
    let mut conn = state.conn().await?;
    load(&mut conn, me).await
}

/// `Some(None)` clears, `Some(Some(v))` sets, `None` keeps.
fn optional(
    field: &str,
    value: &MaybeUndefined<String>,
    max: usize,
) -> Result<Option<Option<String>>, FieldError> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(v) => trimmed(field, v, 1..=max).map(|v| Some(Some(v))),
    }
}

pub async fn update(
    state: &AppState,
    me: UserId,
    patch: ClientPatch,
) -> Result<ClientProfile, AppError> {
    let full_name = match &patch.full_name {
        MaybeUndefined::Null => Err(FieldError::new("full_name", "cannot be null")),
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Value(v) => trimmed("full_name", v, 1..=200).map(Some),
    };
    let phone = optional("phone", &patch.phone, 40);
    let city = optional("city", &patch.city, 100);
    all_valid([
        full_name.as_ref().err().cloned(),
        phone.as_ref().err().cloned(),
        city.as_ref().err().cloned(),
    ])?;
    let (full_name, phone, city) = (full_name?, phone?, city?);
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let now = chrono::Utc::now();
        if let Some(name) = full_name {
            diesel::update(users::table.find(me))
                .set((users::full_name.eq(name), users::updated_at.eq(now)))
                .execute(conn)
                .await?;
        }
        diesel::update(clients::table.find(me))
            .set((
                phone.map(|p| clients::phone.eq(p)),
                city.map(|c| clients::city.eq(c)),
                clients::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        load(conn, me).await
    })
    .await
}

/// Idempotent; only publicly visible listings can be added (404 otherwise).
pub async fn add_favorite(
    state: &AppState,
    me: UserId,
    service: ServiceId,
) -> Result<(), AppError> {
    let mut conn = state.conn().await?;
    search::ensure_visible(&mut conn, service).await?;
    diesel::insert_into(favorites::table)
        .values((
            favorites::client_id.eq(me),
            favorites::service_id.eq(service),
        ))
        .on_conflict_do_nothing()
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Idempotent.
pub async fn remove_favorite(
    state: &AppState,
    me: UserId,
    service: ServiceId,
) -> Result<(), AppError> {
    let mut conn = state.conn().await?;
    diesel::delete(favorites::table.find((me, service)))
        .execute(&mut conn)
        .await?;
    Ok(())
}
