//! KYC: streaming document upload, the worker's list, download, and admin review.
//!
//! A worker's `kyc_status` is derived from their submissions by [`derive_status`] and
//! stored on the worker row in the same transaction as every change, so public
//! visibility (which requires `approved`) is one column read.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::Stream;
use sha2::{Digest, Sha256};

use crate::{
    audit::{self, Target},
    core::{
        auth::CurrentUser,
        connections::is_body_timeout,
        ids::{KycId, UserId},
        limiter::ClientIp,
        pagination::{self, Page},
        upload::{Download, FileKind, PendingUpload},
    },
    db::{
        enums::{AuditAction, KycDecision, KycDocumentType, KycStatus, UserRole},
        schema::{kyc_submissions, workers},
    },
    error::{AppError, FieldError},
    events::{self, Event},
    service::listed::{self, Scope},
    state::AppState,
    worker::{models::KycRow, schemas::KycSubmission},
};

/// Submissions one worker may have awaiting review: bounds the disk an account can fill.
const MAX_PENDING: i64 = 5;

/// Room for the multipart framing and the `document_type` field around the file.
const FRAMING_ALLOWANCE: u64 = 64 * 1024;

/// The contract's rule: approved when the most recent decision approved; otherwise
/// pending when a submission awaits review; otherwise rejected when the most recent
/// decision rejected; otherwise none. A new upload never takes an approval away.
pub fn derive_status(latest_decision: Option<KycDecision>, any_pending: bool) -> KycStatus {
    match (latest_decision, any_pending) {
        (Some(KycDecision::Approved), _) => KycStatus::Approved,
        (_, true) => KycStatus::Pending,
        (Some(KycDecision::Rejected), false) => KycStatus::Rejected,
        (Some(KycDecision::Pending) | None, false) => KycStatus::None,
    }
}

/// Recomputes and stores a worker's `kyc_status`, and with it whether their listings are
/// public, inside the caller's transaction.
async fn refresh_status(
    conn: &mut AsyncPgConnection,
    worker: UserId,
) -> Result<KycStatus, AppError> {
    // Serialise with every other change to this worker's submissions: the reads below
    // then see whatever a concurrent decision or upload committed.
    workers::table
        .find(worker)
        .select(workers::user_id)
        .for_no_key_update()
        .first::<UserId>(conn)
        .await?;
    let latest: Option<KycDecision> = kyc_submissions::table
        .filter(kyc_submissions::worker_id.eq(worker))
        .filter(kyc_submissions::reviewed_at.is_not_null())
        .order(kyc_submissions::reviewed_at.desc())
        .select(kyc_submissions::status)
        .first(conn)
        .await
        .optional()?;
    let any_pending: bool = diesel::select(diesel::dsl::exists(
        kyc_submissions::table
            .filter(kyc_submissions::worker_id.eq(worker))
            .filter(kyc_submissions::status.eq(KycDecision::Pending)),
    ))
    .get_result(conn)
    .await?;
    let status = derive_status(latest, any_pending);
    diesel::update(workers::table.find(worker))
        .set(workers::kyc_status.eq(status))
        .execute(conn)
        .await?;
    listed::relist(conn, Scope::Worker(worker)).await?;
    Ok(status)
}

fn multer_error(err: multer::Error) -> AppError {
    use multer::Error as E;
    match err {
        E::FieldSizeExceeded { .. } | E::StreamSizeExceeded { .. } => {
            AppError::PayloadTooLarge("the upload is larger than UPLOAD_MAX_BYTES allows".into())
        }
        E::StreamReadFailed(ref source) if is_body_timeout(source.as_ref()) => {
            AppError::RequestTimeout
        }
        E::UnknownField { field_name } => FieldError::new(
            field_name.unwrap_or_else(|| "(unnamed)".to_owned()),
            "is not a field of this form (document_type, file)",
        )
        .into(),
        other => AppError::MalformedBody(format!("invalid multipart body: {other}")),
    }
}

/// A streamed file, not yet committed: dropping it deletes the bytes.
struct Received {
    pending: Box<dyn PendingUpload>,
    kind: FileKind,
    size: u64,
    sha256: String,
}

/// Streams one multipart field to the store, deciding its type from the first bytes
/// (415 before any size check) and stopping at `max` bytes (413).
async fn receive_file(
    state: &AppState,
    worker: UserId,
    field: &mut multer::Field<'_>,
    max: u64,
) -> Result<Received, AppError> {
    let mut pending: Option<Box<dyn PendingUpload>> = None;
    let mut head = Vec::with_capacity(FileKind::SNIFF_LEN);
    let mut kind = None;
    let mut size = 0u64;
    let mut hasher = Sha256::new();
    while let Some(chunk) = field.chunk().await.map_err(multer_error)? {
        if kind.is_none() {
            let take = (FileKind::SNIFF_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            if head.len() == FileKind::SNIFF_LEN {
                kind = Some(FileKind::sniff(&head).ok_or_else(unsupported)?);
            }
        }
        size += chunk.len() as u64;
        if size > max {
            return Err(AppError::PayloadTooLarge(
                format!("files are limited to {max} bytes").into(),
            ));
        }
        hasher.update(&chunk);
        let sink = match pending.as_mut() {
            Some(sink) => sink,
            None => pending.insert(
                state
                    .uploads
                    .begin(worker.to_string())
                    .await
                    .map_err(AppError::internal)?,
            ),
        };
        sink.write(&chunk).await.map_err(AppError::internal)?;
    }
    if size == 0 {
        return Err(FieldError::new("file", "must not be empty").into());
    }
    let kind = match kind {
        Some(kind) => kind,
        None => FileKind::sniff(&head).ok_or_else(unsupported)?,
    };
    Ok(Received {
        pending: pending.ok_or_else(|| AppError::internal("no upload for a non-empty file"))?,
        kind,
        size,
        sha256: hex(&hasher.finalize()),
    })
}

fn unsupported() -> AppError {
    AppError::UnsupportedMediaType("the file must be a JPEG, PNG or PDF document".to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How many of a worker's submissions await review.
async fn pending_count(conn: &mut AsyncPgConnection, worker: UserId) -> Result<i64, AppError> {
    Ok(kyc_submissions::table
        .filter(kyc_submissions::worker_id.eq(worker))
        .filter(kyc_submissions::status.eq(KycDecision::Pending))
        .count()
        .get_result(conn)
        .await?)
}

fn too_many_pending() -> AppError {
    AppError::conflict(
        crate::error::codes::KYC_TOO_MANY_PENDING,
        "several documents already await review; wait for a decision before sending more",
    )
}

/// Parses `multipart/form-data` with `document_type` and `file`, streaming the file to
/// the upload store, then records the submission. Nothing is left behind on failure.
///
/// Disk is protected before a byte is written: the worker's cap on pending submissions,
/// the address's upload quota and the store's free-space floor are checked first.
/// The cap is checked again, under the worker's lock, when the row is inserted.
pub async fn submit<S>(
    state: &AppState,
    worker: UserId,
    ip: ClientIp,
    content_type: Option<&str>,
    body: S,
) -> Result<KycSubmission, AppError>
where
    S: Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
{
    let mut conn = state.conn().await?;
    let pending = pending_count(&mut conn, worker).await?;
    drop(conn);
    if pending >= MAX_PENDING {
        return Err(too_many_pending());
    }
    state.limits.check_upload(ip)?;
    let free = state
        .uploads
        .available()
        .await
        .map_err(AppError::internal)?;
    if free < state.settings.upload_min_free_bytes + state.settings.upload_max_bytes {
        tracing::error!(free, "document storage is nearly full: uploads refused");
        return Err(AppError::Unavailable("document storage"));
    }
    let boundary = content_type
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| {
            AppError::UnsupportedMediaType(
                "expected multipart/form-data with a boundary".to_owned(),
            )
        })?;
    let max = state.settings.upload_max_bytes;
    let limits = multer::SizeLimit::new()
        .whole_stream(max + FRAMING_ALLOWANCE)
        // The file's own limit is enforced while streaming, after its type was sniffed,
        // so an oversized non-document is a 415, not a 413.
        .for_field("document_type", 64);
    let constraints = multer::Constraints::new()
        .allowed_fields(vec!["document_type", "file"])
        .size_limit(limits);
    let mut multipart = multer::Multipart::with_constraints(body, boundary, constraints);

    let mut document_type = None;
    let mut received: Option<Received> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multer_error)? {
        match field.name() {
            Some("document_type") => {
                let text = field.text().await.map_err(multer_error)?;
                document_type = Some(text.trim().parse::<KycDocumentType>().map_err(|()| {
                    FieldError::new(
                        "document_type",
                        "must be passport, national_id, driver_license or proof_of_address",
                    )
                })?);
            }
            Some("file") if received.is_none() => {
                received = Some(receive_file(state, worker, &mut field, max).await?)
            }
            _ => return Err(FieldError::new("file", "must be sent once").into()),
        }
    }
    // Only a complete, valid form is committed; any early return above dropped the
    // pending upload, deleting its bytes.
    let (document_type, received) = match (document_type, received) {
        (Some(document_type), Some(received)) => (document_type, received),
        (document_type, received) => {
            let mut missing = Vec::new();
            if document_type.is_none() {
                missing.push(FieldError::new("document_type", "is required"));
            }
            if received.is_none() {
                missing.push(FieldError::new("file", "is required"));
            }
            return Err(AppError::invalid_fields(missing));
        }
    };
    let Received {
        pending,
        kind,
        size,
        sha256,
    } = received;
    // From here on the work runs in its own task: a client that disconnects cannot
    // cancel it between the file's commit and the row's insert, orphaning the file.
    let state = state.clone();
    tokio::spawn(async move {
        let key = pending.commit().await.map_err(AppError::internal)?;
        let result = record(&state, worker, document_type, &key, kind, size, &sha256).await;
        if result.is_err() {
            // The row was not written: the file must not outlive it.
            let _ = state.uploads.remove(&key).await;
        }
        result
    })
    .await
    .map_err(AppError::internal)?
}

async fn record(
    state: &AppState,
    worker: UserId,
    document_type: KycDocumentType,
    key: &str,
    kind: FileKind,
    size: u64,
    sha256: &str,
) -> Result<KycSubmission, AppError> {
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        // Checked under the worker lock that `refresh_status` also takes.
        workers::table
            .find(worker)
            .select(workers::user_id)
            .for_no_key_update()
            .first::<UserId>(conn)
            .await?;
        if pending_count(conn, worker).await? >= MAX_PENDING {
            return Err(too_many_pending());
        }
        let row: KycRow = diesel::insert_into(kyc_submissions::table)
            .values((
                kyc_submissions::id.eq(KycId::new()),
                kyc_submissions::worker_id.eq(worker),
                kyc_submissions::document_type.eq(document_type),
                kyc_submissions::content_type.eq(kind.content_type()),
                kyc_submissions::size_bytes.eq(i64::try_from(size).unwrap_or(i64::MAX)),
                kyc_submissions::sha256.eq(sha256),
                kyc_submissions::storage_key.eq(key),
            ))
            .returning(KycRow::as_returning())
            .get_result(conn)
            .await?;
        refresh_status(conn, worker).await?;
        Ok(row.into())
    })
    .await
}

/// Which submissions a list shows, and in which order.
enum Listing {
    /// A worker's own, newest first.
    Mine(UserId),
    /// The admin queue for one status, oldest first.
    Queue(KycDecision),
}

/// The worker's own submissions, newest first.
pub async fn list_mine(
    state: &AppState,
    worker: UserId,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<KycSubmission>, AppError> {
    list(state, Listing::Mine(worker), limit, cursor).await
}

/// The admin queue: submissions in `status` (pending by default), oldest first.
pub async fn queue(
    state: &AppState,
    status: Option<KycDecision>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<KycSubmission>, AppError> {
    list(
        state,
        Listing::Queue(status.unwrap_or(KycDecision::Pending)),
        limit,
        cursor,
    )
    .await
}

async fn list(
    state: &AppState,
    listing: Listing,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Page<KycSubmission>, AppError> {
    let limit = pagination::limit(limit)?;
    let after: Option<KycId> = state.cursors.decode_opt(cursor)?;
    let mut query = kyc_submissions::table
        .select(KycRow::as_select())
        .limit(limit + 1)
        .into_boxed();
    query = match (listing, after) {
        (Listing::Mine(worker), after) => {
            let query = query
                .filter(kyc_submissions::worker_id.eq(worker))
                .order(kyc_submissions::id.desc());
            match after {
                Some(after) => query.filter(kyc_submissions::id.lt(after)),
                None => query,
            }
        }
        (Listing::Queue(status), after) => {
            let query = query
                .filter(kyc_submissions::status.eq(status))
                .order(kyc_submissions::id.asc());
            match after {
                Some(after) => query.filter(kyc_submissions::id.gt(after)),
                None => query,
            }
        }
    };
    let mut conn = state.conn().await?;
    let rows = query.load(&mut conn).await?;
    pagination::paginate(&state.cursors, rows, limit, |r| r.id, KycSubmission::from)
}

/// A submission's bytes, for its worker or an admin; anyone else gets 404.
pub async fn file(state: &AppState, caller: CurrentUser, id: KycId) -> Result<Download, AppError> {
    // A rejected submission's file is deleted after the retention period.
    let mut query = kyc_submissions::table
        .find(id)
        .filter(kyc_submissions::file_purged_at.is_null())
        .select(KycRow::as_select())
        .into_boxed();
    if caller.role != UserRole::Admin {
        query = query.filter(kyc_submissions::worker_id.eq(caller.id));
    }
    let mut conn = state.conn().await?;
    let row: KycRow = query.first(&mut conn).await?;
    drop(conn);
    let kind = FileKind::from_content_type(&row.content_type).ok_or_else(|| {
        AppError::internal(format!(
            "stored content type {} is not a FileKind",
            row.content_type
        ))
    })?;
    let body = state
        .uploads
        .open(&row.storage_key)
        .await
        .map_err(|err| match err.kind() {
            // Purged after its retention period, recorded or not yet.
            std::io::ErrorKind::NotFound => AppError::NotFound,
            _ => AppError::internal(err),
        })?;
    Ok(Download {
        body,
        kind,
        filename_stem: format!("kyc-{}", row.id),
    })
}

/// A submission as an admin judges it: with its worker's current `kyc_status`, so a
/// reviewer sees when rejecting would take an existing approval away.
pub struct ForReview {
    pub submission: KycSubmission,
    pub worker_status: KycStatus,
}

/// One submission, any status, with its worker's status (admins only: the caller
/// checked the role).
pub async fn for_review(state: &AppState, id: KycId) -> Result<ForReview, AppError> {
    let mut conn = state.conn().await?;
    let (row, worker_status): (KycRow, KycStatus) = kyc_submissions::table
        .inner_join(workers::table)
        .filter(kyc_submissions::id.eq(id))
        .select((KycRow::as_select(), workers::kyc_status))
        .first(&mut conn)
        .await?;
    Ok(ForReview {
        submission: row.into(),
        worker_status,
    })
}

/// Approves or rejects a pending submission, updates the worker's status and writes
/// the audit row, in one transaction. Not pending → 409 `kyc_not_pending`.
pub async fn decide(
    state: &AppState,
    admin: CurrentUser,
    id: KycId,
    decision: KycDecision,
    reason: Option<&str>,
) -> Result<KycSubmission, AppError> {
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let current: KycDecision = kyc_submissions::table
            .find(id)
            .select(kyc_submissions::status)
            .for_update()
            .first(conn)
            .await?;
        let reason = match decision {
            KycDecision::Rejected => Some(crate::core::validate::moderation_reason(
                reason.unwrap_or_default(),
            )?),
            _ => None,
        };
        if current != KycDecision::Pending {
            return Err(AppError::conflict(
                crate::error::codes::KYC_NOT_PENDING,
                "the submission has already been reviewed",
            ));
        }
        let row: KycRow = diesel::update(kyc_submissions::table.find(id))
            .set((
                kyc_submissions::status.eq(decision),
                kyc_submissions::reason.eq(reason),
                // The database's clock: "most recent decision" must not depend on
                // which instance's clock wrote it.
                kyc_submissions::reviewed_at.eq(diesel::dsl::now),
                kyc_submissions::reviewed_by.eq(admin.id),
            ))
            .returning(KycRow::as_returning())
            .get_result(conn)
            .await?;
        refresh_status(conn, row.worker_id).await?;
        let action = if decision == KycDecision::Approved {
            AuditAction::KycApproved
        } else {
            AuditAction::KycRejected
        };
        audit::record(conn, admin.id, action, Target::Kyc(id), reason).await?;
        let event = Event::KycDecided {
            submission_id: id,
            worker_id: row.worker_id,
            decision,
        };
        events::record(conn, &event).await?;
        Ok(row.into())
    })
    .await
}

/// Deletes the files of submissions rejected more than `KYC_REJECTED_RETENTION` ago,
/// oldest decision first, at most `batch` per call, and returns how many rows it
/// settled. The rows stay (type, size, digest, decision); only the document goes.
/// Several instances may run it at once: each claims its rows with `SKIP LOCKED`.
///
/// A file that cannot be deleted is logged and left for the next run, without holding
/// up the others; one already gone (a run whose commit failed after deleting it) counts
/// as deleted.
pub async fn purge_rejected_files(state: &AppState, batch: i64) -> Result<usize, AppError> {
    let retention_secs = state.settings.kyc_rejected_retention.as_secs_f64();
    let mut conn = state.conn().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let due: Vec<(KycId, String)> = kyc_submissions::table
            .filter(kyc_submissions::status.eq(KycDecision::Rejected))
            .filter(kyc_submissions::file_purged_at.is_null())
            // The database's clock, like the `reviewed_at` it wrote.
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "reviewed_at < now() - make_interval(secs => ",
                )
                .bind::<diesel::sql_types::Double, _>(retention_secs)
                .sql(")"),
            )
            .order(kyc_submissions::reviewed_at.asc())
            .select((kyc_submissions::id, kyc_submissions::storage_key))
            .limit(batch)
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        let mut purged = Vec::with_capacity(due.len());
        for (id, key) in due {
            match state.uploads.remove(&key).await {
                Ok(()) => purged.push(id),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => purged.push(id),
                Err(err) => {
                    tracing::warn!(submission = %id, error = %err, "could not delete a rejected KYC file");
                }
            }
        }
        diesel::update(kyc_submissions::table.filter(kyc_submissions::id.eq_any(&purged)))
            .set(kyc_submissions::file_purged_at.eq(diesel::dsl::now))
            .execute(conn)
            .await?;
        Ok(purged.len())
    })
    .await
}

/// How many submissions await review (the length of the admin queue).
pub async fn count_pending(conn: &mut AsyncPgConnection) -> Result<i64, AppError> {
    Ok(kyc_submissions::table
        .filter(kyc_submissions::status.eq(KycDecision::Pending))
        .count()
        .get_result(conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_contract_rule() {
        use KycDecision::{Approved, Rejected};
        assert_eq!(derive_status(None, false), KycStatus::None);
        assert_eq!(derive_status(None, true), KycStatus::Pending);
        assert_eq!(
            derive_status(Some(Approved), true),
            KycStatus::Approved,
            "a new upload keeps the approval"
        );
        assert_eq!(derive_status(Some(Approved), false), KycStatus::Approved);
        assert_eq!(derive_status(Some(Rejected), true), KycStatus::Pending);
        assert_eq!(derive_status(Some(Rejected), false), KycStatus::Rejected);
    }
}
