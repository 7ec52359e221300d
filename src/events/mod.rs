//! Domain events through an outbox (STYLE.md 13).
//!
//! A service records an [`Event`] with [`record`] on its own connection, inside the
//! transaction that makes the change: a rollback takes the event back, a commit makes
//! it durable and wakes the [`dispatcher`] (`NOTIFY marketplace_events` is delivered on
//! commit). The dispatcher turns each event into its side effects — stored
//! notifications and their WebSocket pushes, and account emails — at least once;
//! notification handlers are idempotent, an email may (rarely) arrive twice.

pub mod dispatcher;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Text, Uuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::{
    core::ids::{EventId, JobId, KycId, MessageId, ReviewId, ServiceId, ThreadId, UserId},
    db::{
        enums::{JobStatus, KycDecision},
        sql::Sql,
    },
    job::lifecycle::Action,
};

/// The channel the recording transaction notifies and the dispatcher listens on.
pub const CHANNEL: &str = "marketplace_events";

/// Something that happened, with what its handlers need to know. Stored as JSON
/// tagged by `kind` (the `events.kind` column holds the same tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A client booked a worker.
    JobBooked {
        job_id: JobId,
        client_id: UserId,
        worker_id: UserId,
        scheduled_at: DateTime<Utc>,
    },
    /// A participant moved a job (`action`: accept, decline, start, complete, cancel).
    JobTransitioned {
        job_id: JobId,
        client_id: UserId,
        worker_id: UserId,
        actor_id: UserId,
        action: Action,
        from: JobStatus,
        to: JobStatus,
    },
    /// A request passed its deadline unanswered.
    JobExpired {
        job_id: JobId,
        client_id: UserId,
        worker_id: UserId,
    },
    /// A message was stored; `recipients` are the other participants.
    MessageSent {
        message_id: MessageId,
        thread_id: ThreadId,
        sender_id: UserId,
        recipients: Vec<UserId>,
    },
    /// An admin approved or rejected a KYC submission.
    KycDecided {
        submission_id: KycId,
        worker_id: UserId,
        decision: KycDecision,
    },
    /// A client reviewed a completed job.
    ReviewPosted {
        review_id: ReviewId,
        job_id: JobId,
        worker_id: UserId,
        client_id: UserId,
        rating: i16,
    },
    UserSuspended {
        user_id: UserId,
        admin_id: UserId,
    },
    UserReinstated {
        user_id: UserId,
        admin_id: UserId,
    },
    ServiceHidden {
        service_id: ServiceId,
        admin_id: UserId,
    },
    /// Recorded by the admin review-moderation route.
    ReviewHidden {
        review_id: ReviewId,
        admin_id: UserId,
    },
    /// A new account, or its owner asking again: send a link proving the email. The
    /// link's token is made when the email is sent, so no usable token is ever stored.
    EmailVerificationRequested {
        user_id: UserId,
    },
    /// Someone asked to reset a password: email the account a link. `None` when no
    /// account has the email: recorded all the same, so that a request does the same
    /// work (and takes the same time) whether or not the account exists.
    PasswordResetRequested {
        user_id: Option<UserId>,
    },
}

impl Event {
    /// The tag stored in `events.kind` (and in the JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::JobBooked { .. } => "job_booked",
            Self::JobTransitioned { .. } => "job_transitioned",
            Self::JobExpired { .. } => "job_expired",
            Self::MessageSent { .. } => "message_sent",
            Self::KycDecided { .. } => "kyc_decided",
            Self::ReviewPosted { .. } => "review_posted",
            Self::UserSuspended { .. } => "user_suspended",
            Self::UserReinstated { .. } => "user_reinstated",
            Self::ServiceHidden { .. } => "service_hidden",
            Self::ReviewHidden { .. } => "review_hidden",
            Self::EmailVerificationRequested { .. } => "email_verification_requested",
            Self::PasswordResetRequested { .. } => "password_reset_requested",
        }
    }
}

/// Records `event` on the caller's connection. Call it inside the transaction of the
/// change it describes: the row and the wake-up are then committed, or rolled back,
/// with that change.
pub async fn record(
    conn: &mut AsyncPgConnection,
    event: &Event,
) -> Result<EventId, diesel::result::Error> {
    let ids = record_all(conn, std::slice::from_ref(event)).await?;
    Ok(ids[0])
}

/// [`record`] for several events, in one statement.
pub async fn record_all(
    conn: &mut AsyncPgConnection,
    events: &[Event],
) -> Result<Vec<EventId>, diesel::result::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<EventId> = events.iter().map(|_| EventId::new()).collect();
    let mut kinds = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    for event in events {
        kinds.push(event.kind().to_owned());
        payloads.push(
            serde_json::to_string(event)
                .map_err(|err| diesel::result::Error::SerializationError(Box::new(err)))?,
        );
    }
    let mut sql = Sql::new();
    sql.push("WITH recorded AS (INSERT INTO events (id, kind, payload) SELECT id, kind, payload::jsonb FROM unnest(")
        .bind::<Array<Uuid>, _>(ids.iter().map(|id| id.0).collect::<Vec<_>>())
        .push("::uuid[], ")
        .bind::<Array<Text>, _>(kinds)
        .push("::text[], ")
        .bind::<Array<Text>, _>(payloads)
        .push("::text[]) AS e(id, kind, payload)) SELECT pg_notify('marketplace_events', '')");
    sql.execute(conn).await?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_column_is_the_json_tag_and_events_round_trip() {
        let (a, b) = (UserId::new(), UserId::new());
        let events = [
            Event::JobBooked {
                job_id: JobId::new(),
                client_id: a,
                worker_id: b,
                scheduled_at: Utc::now(),
            },
            Event::MessageSent {
                message_id: MessageId::new(),
                thread_id: ThreadId::new(),
                sender_id: a,
                recipients: vec![b],
            },
            Event::ReviewHidden {
                review_id: ReviewId::new(),
                admin_id: a,
            },
            Event::JobTransitioned {
                job_id: JobId::new(),
                client_id: a,
                worker_id: b,
                actor_id: b,
                action: Action::Start,
                from: JobStatus::Accepted,
                to: JobStatus::InProgress,
            },
            Event::KycDecided {
                submission_id: KycId::new(),
                worker_id: b,
                decision: KycDecision::Approved,
            },
        ];
        for event in events {
            let json = serde_json::to_value(&event).expect("serialize");
            assert_eq!(json["kind"], event.kind());
            let back: Event = serde_json::from_value(json).expect("deserialize");
            assert_eq!(back, event);
        }
    }

    /// Events stored before the fields were typed hold the same labels as strings.
    #[test]
    fn typed_fields_read_the_stored_labels_and_refuse_others() {
        let (a, b, job) = (UserId::new(), UserId::new(), JobId::new());
        let stored = serde_json::json!({
            "kind": "job_transitioned", "job_id": job, "client_id": a, "worker_id": b,
            "actor_id": b, "action": "complete", "from": "in_progress", "to": "completed",
        });
        let event: Event = serde_json::from_value(stored.clone()).expect("deserialize");
        assert_eq!(serde_json::to_value(&event).expect("serialize"), stored);
        let mut unknown = stored;
        unknown["to"] = "archived".into();
        assert!(serde_json::from_value::<Event>(unknown).is_err());
    }
}
