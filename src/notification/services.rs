//! Who is told about what, storing that once per event and recipient, pushing it, and
//! the recipient's reads.

use diesel::{
    prelude::*,
    sql_types::{Array, Text, Uuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{
    core::{
        ids::{EventId, NotificationId, UserId},
        pagination::{self, Page},
    },
    db::{schema::notifications, sql::Sql},
    error::AppError,
    events::Event,
    messaging::frames::{ServerFrame, ServerNotification},
    notification::{
        models::{COLUMNS, NotificationRow},
        schemas::Notification,
    },
    state::AppState,
};

/// Who is notified of `event` (API.md, Notifications): a booking → the worker; a
/// transition → the actor's counterpart; an expiry (no actor) → the client, whose
/// request went unanswered; a message → the other participants; a KYC decision and a
/// review → the worker. Moderation events notify nobody (the audit log records them),
/// nor do account emails (the dispatcher sends those itself).
pub fn recipients(event: &Event) -> Vec<UserId> {
    match event {
        Event::JobBooked { worker_id, .. }
        | Event::KycDecided { worker_id, .. }
        | Event::ReviewPosted { worker_id, .. } => vec![*worker_id],
        Event::JobTransitioned {
            client_id,
            worker_id,
            actor_id,
            ..
        } => [*client_id, *worker_id]
            .into_iter()
            .filter(|party| party != actor_id)
            .collect(),
        Event::JobExpired { client_id, .. } => vec![*client_id],
        Event::MessageSent { recipients, .. } => recipients.clone(),
        Event::UserSuspended { .. }
        | Event::UserReinstated { .. }
        | Event::ServiceHidden { .. }
        | Event::ReviewHidden { .. }
        | Event::EmailVerificationRequested { .. }
        | Event::PasswordResetRequested { .. } => Vec::new(),
    }
}

/// Stores `event`'s notifications, once per recipient however often it is called
/// (`ON CONFLICT DO NOTHING`), and returns the ones stored now, to push after commit.
pub async fn store(
    conn: &mut AsyncPgConnection,
    event_id: EventId,
    event: &Event,
) -> Result<Vec<NotificationRow>, diesel::result::Error> {
    let users = recipients(event);
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let mut payload = serde_json::to_value(event)
        .map_err(|err| diesel::result::Error::SerializationError(Box::new(err)))?;
    if let Some(fields) = payload.as_object_mut() {
        // The notification's own `kind` says it; recipients are not news to them.
        fields.remove("kind");
        fields.remove("recipients");
    }
    let ids: Vec<uuid::Uuid> = users.iter().map(|_| NotificationId::new().0).collect();
    let mut sql = Sql::new();
    sql.push(
        "INSERT INTO notifications (id, user_id, event_id, kind, payload) \
         SELECT r.id, r.user_id, ",
    )
    .bind::<Uuid, _>(event_id.0)
    .push(", ")
    .bind::<Text, _>(event.kind().to_owned())
    .push(", ")
    .bind::<Text, _>(payload.to_string())
    .push("::jsonb FROM unnest(")
    .bind::<Array<Uuid>, _>(ids)
    .push("::uuid[], ")
    .bind::<Array<Uuid>, _>(users.iter().map(|u| u.0).collect::<Vec<_>>())
    .push("::uuid[]) AS r(id, user_id) ON CONFLICT (event_id, user_id) DO NOTHING RETURNING ")
    .push(COLUMNS);
    sql.load(conn).await
}

/// Pushes stored notifications to every socket of their recipients, on every instance.
/// Best effort: the stored row is the record, a missed push is re-read over REST.
pub async fn push(state: &AppState, rows: Vec<NotificationRow>) {
    for row in rows {
        let user = row.user_id;
        let notification = Notification::from(row);
        crate::messaging::services::push(
            state,
            &[user],
            &ServerFrame::Notification(ServerNotification { notification }),
        )
        .await;
    }
}

/// The caller's notifications, newest first; only unread ones with `unread`.
pub async fn list(
    state: &AppState,
    user: UserId,
    unread: bool,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<Notification>, AppError> {
    let limit = pagination::limit(limit)?;
    let before: Option<NotificationId> = state.cursors.decode_opt(cursor)?;
    let mut sql = Sql::new();
    sql.push("SELECT ")
        .push(COLUMNS)
        .push(" FROM notifications WHERE user_id = ")
        .bind::<Uuid, _>(user.0);
    if unread {
        sql.push(" AND read_at IS NULL");
    }
    if let Some(before) = before {
        sql.push(" AND id < ").bind::<Uuid, _>(before.0);
    }
    sql.push(" ORDER BY id DESC LIMIT ")
        .bind::<diesel::sql_types::BigInt, _>(limit + 1);
    let mut conn = state.conn().await?;
    let rows: Vec<NotificationRow> = sql.load(&mut conn).await?;
    pagination::paginate(&state.cursors, rows, limit, |r| r.id, Notification::from)
}

/// Marks one of the caller's notifications read (again: a no-op); anyone else's → 404.
pub async fn mark_read(state: &AppState, user: UserId, id: NotificationId) -> Result<(), AppError> {
    let mut conn = state.conn().await?;
    let found = diesel::update(notifications::table)
        .filter(notifications::id.eq(id))
        .filter(notifications::user_id.eq(user))
        .set(notifications::read_at.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("COALESCE(read_at, now())")))
        .execute(&mut conn)
        .await?;
    if found == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}

/// Marks every unread notification of the caller read.
pub async fn mark_all_read(state: &AppState, user: UserId) -> Result<(), AppError> {
    let mut conn = state.conn().await?;
    diesel::update(notifications::table)
        .filter(notifications::user_id.eq(user))
        .filter(notifications::read_at.is_null())
        .set(notifications::read_at.eq(diesel::dsl::now))
        .execute(&mut conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{core::ids::JobId, db::enums::JobStatus, job::lifecycle::Action};

    #[test]
    fn a_transition_goes_to_the_counterpart_and_an_expiry_to_the_client() {
        let (client, worker) = (UserId::new(), UserId::new());
        let moved = |actor| Event::JobTransitioned {
            job_id: JobId::new(),
            client_id: client,
            worker_id: worker,
            actor_id: actor,
            action: Action::Cancel,
            from: JobStatus::Accepted,
            to: JobStatus::Cancelled,
        };
        assert_eq!(recipients(&moved(client)), [worker]);
        assert_eq!(recipients(&moved(worker)), [client]);
        let expired = Event::JobExpired {
            job_id: JobId::new(),
            client_id: client,
            worker_id: worker,
        };
        assert_eq!(recipients(&expired), [client]);
    }
}
