// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "account_token_purpose"))]
    pub struct AccountTokenPurpose;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "audit_action"))]
    pub struct AuditAction;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "job_status"))]
    pub struct JobStatus;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "kyc_decision"))]
    pub struct KycDecision;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "kyc_document_type"))]
    pub struct KycDocumentType;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "kyc_status"))]
    pub struct KycStatus;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "pricing_unit"))]
    pub struct PricingUnit;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "service_status"))]
    pub struct ServiceStatus;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "tsvector", schema = "pg_catalog"))]
    pub struct Tsvector;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "user_role"))]
    pub struct UserRole;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "user_status"))]
    pub struct UserStatus;
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::AccountTokenPurpose;

    account_tokens (user_id, purpose) {
        user_id -> Uuid,
        purpose -> AccountTokenPurpose,
        token_hash -> Bytea,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    app_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::AuditAction;

    audit_log (id) {
        id -> Uuid,
        actor_id -> Uuid,
        action -> AuditAction,
        target_type -> Text,
        target_id -> Uuid,
        reason -> Nullable<Text>,
        at -> Timestamptz,
    }
}

diesel::table! {
    availability_slots (worker_id, weekday, start_minute) {
        worker_id -> Uuid,
        weekday -> Int2,
        start_minute -> Int2,
        end_minute -> Int2,
    }
}

diesel::table! {
    clients (user_id) {
        user_id -> Uuid,
        created_at -> Timestamptz,
        phone -> Nullable<Text>,
        city -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    events (id) {
        id -> Uuid,
        kind -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        done_at -> Nullable<Timestamptz>,
        parked_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    favorites (client_id, service_id) {
        client_id -> Uuid,
        service_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::JobStatus;

    job_events (id) {
        id -> Int8,
        job_id -> Uuid,
        from_status -> Nullable<JobStatus>,
        to_status -> JobStatus,
        actor_id -> Nullable<Uuid>,
        reason -> Nullable<Text>,
        at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::JobStatus;

    jobs (id) {
        id -> Uuid,
        service_id -> Uuid,
        client_id -> Uuid,
        worker_id -> Uuid,
        status -> JobStatus,
        price_cents -> Int8,
        scheduled_at -> Timestamptz,
        ends_at -> Timestamptz,
        address -> Text,
        notes -> Text,
        thread_id -> Uuid,
        idempotency_key -> Nullable<Text>,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::KycDocumentType;
    use super::sql_types::KycDecision;

    kyc_submissions (id) {
        id -> Uuid,
        worker_id -> Uuid,
        document_type -> KycDocumentType,
        status -> KycDecision,
        reason -> Nullable<Text>,
        content_type -> Text,
        size_bytes -> Int8,
        sha256 -> Text,
        storage_key -> Text,
        created_at -> Timestamptz,
        reviewed_at -> Nullable<Timestamptz>,
        reviewed_by -> Nullable<Uuid>,
        file_purged_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    login_sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    messages (id) {
        id -> Uuid,
        thread_id -> Uuid,
        sender_id -> Uuid,
        body -> Text,
        client_msg_id -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    notifications (id) {
        id -> Uuid,
        user_id -> Uuid,
        event_id -> Uuid,
        kind -> Text,
        payload -> Jsonb,
        read_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    oidc_identities (provider, subject) {
        provider -> Text,
        subject -> Text,
        user_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Bytea,
        session_id -> Uuid,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    reviews (id) {
        id -> Uuid,
        job_id -> Uuid,
        service_id -> Uuid,
        worker_id -> Uuid,
        client_id -> Uuid,
        rating -> Int2,
        comment -> Text,
        hidden -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::PricingUnit;
    use super::sql_types::ServiceStatus;
    use super::sql_types::Tsvector;

    services (id) {
        id -> Uuid,
        worker_id -> Uuid,
        title -> Text,
        description -> Text,
        category -> Text,
        price_cents -> Int8,
        pricing_unit -> PricingUnit,
        city -> Text,
        duration_minutes -> Int4,
        status -> ServiceStatus,
        rating_avg -> Nullable<Float8>,
        rating_count -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        search -> Tsvector,
        listed -> Bool,
        location_lat -> Nullable<Float8>,
        location_lng -> Nullable<Float8>,
        title_search -> Tsvector,
    }
}

diesel::table! {
    thread_participants (thread_id, user_id) {
        thread_id -> Uuid,
        user_id -> Uuid,
        last_activity_at -> Timestamptz,
        last_read_message_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    threads (id) {
        id -> Uuid,
        job_id -> Nullable<Uuid>,
        client_id -> Uuid,
        worker_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::UserRole;
    use super::sql_types::UserStatus;

    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Nullable<Text>,
        full_name -> Text,
        role -> UserRole,
        status -> UserStatus,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        email_verified -> Bool,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::KycStatus;

    workers (user_id) {
        user_id -> Uuid,
        created_at -> Timestamptz,
        bio -> Text,
        skills -> Array<Nullable<Text>>,
        city -> Nullable<Text>,
        timezone -> Text,
        hourly_rate_cents -> Nullable<Int8>,
        kyc_status -> KycStatus,
        rating_avg -> Nullable<Float8>,
        rating_count -> Int4,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(account_tokens -> users (user_id));
diesel::joinable!(audit_log -> users (actor_id));
diesel::joinable!(availability_slots -> workers (worker_id));
diesel::joinable!(clients -> users (user_id));
diesel::joinable!(favorites -> clients (client_id));
diesel::joinable!(favorites -> services (service_id));
diesel::joinable!(job_events -> jobs (job_id));
diesel::joinable!(job_events -> users (actor_id));
diesel::joinable!(jobs -> clients (client_id));
diesel::joinable!(jobs -> services (service_id));
diesel::joinable!(jobs -> threads (thread_id));
diesel::joinable!(jobs -> workers (worker_id));
diesel::joinable!(kyc_submissions -> users (reviewed_by));
diesel::joinable!(kyc_submissions -> workers (worker_id));
diesel::joinable!(login_sessions -> users (user_id));
diesel::joinable!(messages -> threads (thread_id));
diesel::joinable!(messages -> users (sender_id));
diesel::joinable!(notifications -> users (user_id));
diesel::joinable!(oidc_identities -> users (user_id));
diesel::joinable!(refresh_tokens -> login_sessions (session_id));
diesel::joinable!(reviews -> clients (client_id));
diesel::joinable!(reviews -> jobs (job_id));
diesel::joinable!(reviews -> services (service_id));
diesel::joinable!(reviews -> workers (worker_id));
diesel::joinable!(services -> workers (worker_id));
diesel::joinable!(thread_participants -> threads (thread_id));
diesel::joinable!(thread_participants -> users (user_id));
diesel::joinable!(threads -> clients (client_id));
diesel::joinable!(threads -> workers (worker_id));
diesel::joinable!(workers -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    account_tokens,
    app_secrets,
    audit_log,
    availability_slots,
    clients,
    events,
    favorites,
    job_events,
    jobs,
    kyc_submissions,
    login_sessions,
    messages,
    notifications,
    oidc_identities,
    refresh_tokens,
    reviews,
    services,
    thread_participants,
    threads,
    users,
    workers,
);
