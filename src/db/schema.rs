// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "audit_action"))]
    pub struct AuditAction;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "user_role"))]
    pub struct UserRole;

    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "user_status"))]
    pub struct UserStatus;
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
    clients (user_id) {
        user_id -> Uuid,
        created_at -> Timestamptz,
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
    refresh_tokens (token_hash) {
        token_hash -> Bytea,
        session_id -> Uuid,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
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
        password_hash -> Text,
        full_name -> Text,
        role -> UserRole,
        status -> UserStatus,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workers (user_id) {
        user_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(audit_log -> users (actor_id));
diesel::joinable!(clients -> users (user_id));
diesel::joinable!(login_sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> login_sessions (session_id));
diesel::joinable!(workers -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_log,
    clients,
    login_sessions,
    refresh_tokens,
    users,
    workers,
);
