//! The messaging rules, shared by the REST routes and the WebSocket.
//!
//! Authorization is in every query: a thread is found through the caller's own
//! `thread_participants` row, so a stranger (an admin included) meets a 404. A message is
//! stored, and committed, before anyone is told of it: pushes go out after the statement
//! that stored it returns. A lost push is not a lost message — clients re-sync from the
//! history endpoint when they reconnect.

use diesel::{
    prelude::*,
    sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::{
    core::{
        ids::{JobId, MessageId, SessionId, ThreadId, UserId},
        pagination::{self, Page},
    },
    db::{
        enums::UserStatus,
        schema::{login_sessions, messages, thread_participants, threads, users, workers},
        sql::Sql,
    },
    error::{AppError, FieldError},
    events::{self, Event},
    messaging::{
        domain::NewMessage,
        frames::{ServerFrame, ServerMessage, ServerRead, ServerTyping},
        models::{MessageRow, StoredRow, ThreadRow},
        schemas::{Message, Thread},
    },
    state::AppState,
};

/// Creates the thread of a booking and its two participants, inside the booking's
/// transaction (a rollback takes the thread back with the job).
pub async fn create_job_thread(
    conn: &mut AsyncPgConnection,
    job: JobId,
    client: UserId,
    worker: UserId,
) -> Result<ThreadId, AppError> {
    let thread = ThreadId::new();
    diesel::insert_into(threads::table)
        .values((
            threads::id.eq(thread),
            threads::job_id.eq(Some(job.0)),
            threads::client_id.eq(client),
            threads::worker_id.eq(worker),
        ))
        .execute(conn)
        .await?;
    add_participants(conn, thread, client, worker).await?;
    Ok(thread)
}

async fn add_participants(
    conn: &mut AsyncPgConnection,
    thread: ThreadId,
    client: UserId,
    worker: UserId,
) -> Result<(), AppError> {
    diesel::insert_into(thread_participants::table)
        .values(
            [client, worker]
                .map(|user| {
                    (
                        thread_participants::thread_id.eq(thread),
                        thread_participants::user_id.eq(user),
                    )
                })
                .to_vec(),
        )
        .execute(conn)
        .await?;
    Ok(())
}

/// The client's inquiry thread with `worker` (an active worker account, else 404),
/// created on first use. `true` when created by this call. Concurrent calls for the same
/// pair meet at the partial unique index: one inserts, the others find its thread.
pub async fn open_inquiry(
    state: &AppState,
    client: UserId,
    worker: UserId,
) -> Result<(Thread, bool), AppError> {
    let mut conn = state.conn().await?;
    let active_worker: bool = diesel::select(diesel::dsl::exists(
        workers::table
            .inner_join(users::table)
            .filter(workers::user_id.eq(worker))
            .filter(users::status.eq(UserStatus::Active)),
    ))
    .get_result(&mut conn)
    .await?;
    if !active_worker {
        return Err(AppError::NotFound);
    }
    let created = conn
        .transaction::<_, AppError, _>(async |conn| {
            let mut insert = Sql::new();
            insert
                .push("INSERT INTO threads (id, client_id, worker_id) VALUES (")
                .bind::<Uuid, _>(ThreadId::new().0)
                .push(", ")
                .bind::<Uuid, _>(client.0)
                .push(", ")
                .bind::<Uuid, _>(worker.0)
                .push(
                    ") ON CONFLICT (client_id, worker_id) WHERE job_id IS NULL DO NOTHING \
                     RETURNING id",
                );
            let inserted: Option<IdRow> = insert.get_result(conn).await.optional()?;
            match inserted {
                Some(row) => {
                    add_participants(conn, ThreadId(row.id), client, worker).await?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
        .await?;
    let id: ThreadId = threads::table
        .filter(threads::client_id.eq(client))
        .filter(threads::worker_id.eq(worker))
        .filter(threads::job_id.is_null())
        .select(threads::id)
        .first(&mut conn)
        .await?;
    let thread = thread_of(&mut conn, client, id).await?;
    Ok((thread, created))
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
}

/// The caller's threads with their newest message and unread count, in one statement:
/// an index range scan on the caller's participant rows in activity order, a LATERAL
/// lookup of each thread's newest message, and an index-only count of what is unread.
fn thread_query(user: UserId) -> Sql {
    let mut sql = Sql::new();
    sql.push(
        "SELECT t.id, t.job_id, t.client_id, t.worker_id, t.created_at, \
         p.last_activity_at AS activity_at, \
         m.id AS m_id, m.sender_id AS m_sender_id, m.body AS m_body, \
         m.client_msg_id AS m_client_msg_id, m.created_at AS m_created_at, \
         (SELECT count(*) FROM messages u WHERE u.thread_id = p.thread_id \
            AND u.sender_id <> p.user_id \
            AND u.id > COALESCE(p.last_read_message_id, '00000000-0000-0000-0000-000000000000')) \
            AS unread_count \
         FROM thread_participants p \
         JOIN threads t ON t.id = p.thread_id \
         LEFT JOIN LATERAL (SELECT id, sender_id, body, client_msg_id, created_at FROM messages \
            WHERE thread_id = p.thread_id ORDER BY id DESC LIMIT 1) m ON true \
         WHERE p.user_id = ",
    )
    .bind::<Uuid, _>(user.0);
    sql
}

async fn thread_of(
    conn: &mut AsyncPgConnection,
    user: UserId,
    thread: ThreadId,
) -> Result<Thread, AppError> {
    let mut sql = thread_query(user);
    sql.push(" AND p.thread_id = ").bind::<Uuid, _>(thread.0);
    let row: ThreadRow = sql.get_result(conn).await?;
    Ok(row.into())
}

/// A thread the caller takes part in.
pub async fn get(state: &AppState, user: UserId, thread: ThreadId) -> Result<Thread, AppError> {
    let mut conn = state.conn().await?;
    thread_of(&mut conn, user, thread).await
}

/// The caller's threads, most recent activity first.
pub async fn list(
    state: &AppState,
    user: UserId,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<Thread>, AppError> {
    let limit = pagination::limit(limit)?;
    let after: Option<(chrono::DateTime<chrono::Utc>, ThreadId)> =
        state.cursors.decode_opt(cursor)?;
    let mut sql = thread_query(user);
    if let Some((at, id)) = after {
        sql.push(" AND (p.last_activity_at, p.thread_id) < (")
            .bind::<Timestamptz, _>(at)
            .push(", ")
            .bind::<Uuid, _>(id.0)
            .push(")");
    }
    sql.push(" ORDER BY p.last_activity_at DESC, p.thread_id DESC LIMIT ")
        .bind::<BigInt, _>(limit + 1);
    let mut conn = state.conn().await?;
    let rows: Vec<ThreadRow> = sql.load(&mut conn).await?;
    pagination::paginate(
        &state.cursors,
        rows,
        limit,
        |row| (row.activity_at, ThreadId(row.id)),
        Thread::from,
    )
}

async fn is_participant(
    conn: &mut AsyncPgConnection,
    user: UserId,
    thread: ThreadId,
) -> Result<bool, AppError> {
    Ok(diesel::select(diesel::dsl::exists(
        thread_participants::table
            .filter(thread_participants::thread_id.eq(thread))
            .filter(thread_participants::user_id.eq(user)),
    ))
    .get_result(conn)
    .await?)
}

/// The participants of `thread`, if `user` is one of them (else 404).
async fn participants_for(
    conn: &mut AsyncPgConnection,
    user: UserId,
    thread: ThreadId,
) -> Result<Vec<UserId>, AppError> {
    let participants: Vec<UserId> = thread_participants::table
        .filter(thread_participants::thread_id.eq(thread))
        .select(thread_participants::user_id)
        .load(conn)
        .await?;
    if participants.contains(&user) {
        Ok(participants)
    } else {
        Err(AppError::NotFound)
    }
}

/// What to answer when a request about `thread` was invalid: 404 for a stranger (the
/// thread's existence must not leak through a 422), else `err`.
pub async fn refusal(state: &AppState, user: UserId, thread: ThreadId, err: AppError) -> AppError {
    let mut conn = match state.conn().await {
        Ok(conn) => conn,
        Err(pool) => return pool.into(),
    };
    match is_participant(&mut conn, user, thread).await {
        Ok(true) => err,
        Ok(false) => AppError::NotFound,
        Err(db) => db,
    }
}

/// A page of a thread's messages, newest first, older than `before` when given.
pub async fn history(
    state: &AppState,
    user: UserId,
    thread: ThreadId,
    before: Option<MessageId>,
    limit: Option<i64>,
) -> Result<Page<Message>, AppError> {
    let limit = pagination::limit(limit)?;
    let mut conn = state.conn().await?;
    if !is_participant(&mut conn, user, thread).await? {
        return Err(AppError::NotFound);
    }
    let mut query = messages::table
        .filter(messages::thread_id.eq(thread))
        .select(MessageRow::as_select())
        .order(messages::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(messages::id.lt(before));
    }
    let mut rows: Vec<MessageRow> = query.load(&mut conn).await?;
    // The next page starts below the oldest message served: its id is the `before`.
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more
        .then(|| rows.last().map(|row| row.id.to_string()))
        .flatten();
    Ok(Page {
        items: rows.into_iter().map(Message::from).collect(),
        next_cursor,
    })
}

/// A message after [`send`]: stored now, or found as the first with its `client_msg_id`.
#[derive(Debug)]
pub struct Sent {
    pub message: Message,
    pub created: bool,
}

/// Stores a message and pushes it to every participant's sockets.
///
/// One statement: the participants locked in a fixed order, the membership check, the insert (a retry with a known
/// `client_msg_id` inserts nothing: `ON CONFLICT DO NOTHING`, which also makes
/// concurrent retries wait for the first and then yield), and the participants' activity
/// time. When nothing was inserted, the first message with that key comes back (200);
/// with no such message the caller is not a participant (404).
pub async fn send(state: &AppState, new: NewMessage) -> Result<Sent, AppError> {
    let mut conn = state.conn().await?;
    let client_msg_id = new.client_msg_id.as_ref().map(|id| id.as_str().to_owned());
    // The message and its event commit together.
    let stored: Option<StoredRow> = conn
        .transaction::<_, AppError, _>(async |conn| {
            let stored: Option<StoredRow> =
                insert_statement(&new).get_result(conn).await.optional()?;
            if let Some(stored) = &stored {
                let event = Event::MessageSent {
                    message_id: stored.message.id,
                    thread_id: stored.message.thread_id,
                    sender_id: stored.message.sender_id,
                    recipients: stored
                        .participants
                        .iter()
                        .map(|p| UserId(*p))
                        .filter(|p| *p != stored.message.sender_id)
                        .collect(),
                };
                events::record(conn, &event).await?;
            }
            Ok(stored)
        })
        .await?;
    let Some(stored) = stored else {
        let Some(key) = client_msg_id else {
            return Err(AppError::NotFound);
        };
        let first: MessageRow = messages::table
            .filter(messages::thread_id.eq(new.thread))
            .filter(messages::sender_id.eq(new.sender))
            .filter(messages::client_msg_id.eq(key))
            .select(MessageRow::as_select())
            .first(&mut conn)
            .await?;
        return Ok(Sent {
            message: first.into(),
            created: false,
        });
    };
    drop(conn);
    let message = Message::from(stored.message);
    let participants: Vec<UserId> = stored.participants.into_iter().map(UserId).collect();
    push(
        state,
        &participants,
        &ServerFrame::Message(ServerMessage {
            message: message.clone(),
        }),
    )
    .await;
    Ok(Sent {
        message,
        created: true,
    })
}

/// The statement [`send`] runs (also what `scripts/bench-ws.sh` gives pgbench).
fn insert_statement(new: &NewMessage) -> Sql {
    let mut sql = Sql::new();
    // Every participant row is locked first, in `user_id` order, and the aggregate reads
    // them all before the insert: concurrent sends to one thread then queue on the first
    // row instead of locking the rows in whatever order their scans meet them (which
    // deadlocked under eight concurrent sends).
    sql.push("WITH locked AS (SELECT user_id FROM thread_participants WHERE thread_id = ")
        .bind::<Uuid, _>(new.thread.0)
        .push(" ORDER BY user_id FOR NO KEY UPDATE), member AS (SELECT 1 FROM locked HAVING bool_or(user_id = ")
        .bind::<Uuid, _>(new.sender.0)
        .push(
            ")), inserted AS (INSERT INTO messages (id, thread_id, sender_id, body, client_msg_id) \
             SELECT ",
        )
        .bind::<Uuid, _>(MessageId::new().0)
        .push(", ")
        .bind::<Uuid, _>(new.thread.0)
        .push(", ")
        .bind::<Uuid, _>(new.sender.0)
        .push(", ")
        .bind::<Text, _>(new.body.as_str().to_owned())
        .push(", ")
        .bind::<Nullable<Text>, _>(new.client_msg_id.as_ref().map(|id| id.as_str().to_owned()))
        .push(
            " FROM member ON CONFLICT (thread_id, sender_id, client_msg_id) DO NOTHING \
             RETURNING id, thread_id, sender_id, body, client_msg_id, created_at), \
             touched AS (UPDATE thread_participants p \
             SET last_activity_at = GREATEST(p.last_activity_at, i.created_at) \
             FROM inserted i WHERE p.thread_id = i.thread_id) \
             SELECT i.id, i.thread_id, i.sender_id, i.body, i.client_msg_id, i.created_at, \
             ARRAY(SELECT user_id FROM locked) AS participants FROM inserted i",
        );
    sql
}

/// Moves the caller's read marker forward to `message` (a message of the thread, else
/// 422) and tells the participants' sockets.
pub async fn mark_read(
    state: &AppState,
    user: UserId,
    thread: ThreadId,
    message: MessageId,
) -> Result<(), AppError> {
    let mut conn = state.conn().await?;
    let participants = participants_for(&mut conn, user, thread).await?;
    let in_thread = messages::table
        .filter(messages::id.eq(message))
        .filter(messages::thread_id.eq(thread));
    let moved = diesel::update(thread_participants::table)
        .filter(thread_participants::thread_id.eq(thread))
        .filter(thread_participants::user_id.eq(user))
        .filter(diesel::dsl::exists(in_thread))
        .set(
            thread_participants::last_read_message_id
                .eq(greatest(thread_participants::last_read_message_id, message)),
        )
        .execute(&mut conn)
        .await?;
    drop(conn);
    if moved == 0 {
        return Err(FieldError::new("message_id", "is not a message of this thread").into());
    }
    let frame = ServerFrame::Read(ServerRead {
        thread_id: thread,
        user_id: user,
        message_id: message,
    });
    push(state, &participants, &frame).await;
    Ok(())
}

diesel::define_sql_function! {
    /// PostgreSQL's GREATEST, which ignores NULL: the marker only moves forward.
    fn greatest(a: Nullable<Uuid>, b: Uuid) -> Nullable<Uuid>;
}

/// Tells the other participants' sockets that `user` is typing (nothing is stored).
pub async fn typing(state: &AppState, user: UserId, thread: ThreadId) -> Result<(), AppError> {
    let mut conn = state.conn().await?;
    let mut others = participants_for(&mut conn, user, thread).await?;
    drop(conn);
    others.retain(|other| *other != user);
    let frame = ServerFrame::Typing(ServerTyping {
        thread_id: thread,
        user_id: user,
    });
    push(state, &others, &frame).await;
    Ok(())
}

/// Publishes `frame` to `users`' sockets on every instance. A failure is logged, not
/// returned: what was stored is stored, and clients re-sync from history on reconnect.
pub(crate) async fn push(state: &AppState, users: &[UserId], frame: &ServerFrame) {
    if let Err(err) = state.hub.publish(users, &frame.to_text()).await {
        tracing::warn!(error = %err, "push not published; clients will re-sync from history");
    }
}

/// Closes the sockets of just-revoked sessions on every instance (logout, password
/// change, suspension), inside the revoking transaction: if Redis cannot be told, the
/// revocation rolls back and the caller gets a 503, as when Redis refuses the revocation.
pub async fn close_sockets(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    sessions: &[SessionId],
) -> Result<(), AppError> {
    if sessions.is_empty() {
        return Ok(());
    }
    let owners: Vec<(UserId, SessionId)> = login_sessions::table
        .filter(login_sessions::id.eq_any(sessions))
        .select((login_sessions::user_id, login_sessions::id))
        .load(conn)
        .await?;
    let mut by_user: std::collections::HashMap<UserId, Vec<SessionId>> =
        std::collections::HashMap::new();
    for (user, session) in owners {
        by_user.entry(user).or_default().push(session);
    }
    for (user, sessions) in by_user {
        state.hub.close_sessions(user, &sessions).await?;
    }
    Ok(())
}
