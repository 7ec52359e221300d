DROP INDEX users_full_name_trgm_idx;
DROP INDEX users_email_trgm_idx;
DROP EXTENSION IF EXISTS pg_trgm;
DROP INDEX users_status_idx;
DROP INDEX users_role_idx;

-- PostgreSQL cannot drop enum values: rebuild audit_action without 'review_hidden'.
DELETE FROM audit_log WHERE action::text = 'review_hidden';
ALTER TYPE audit_action RENAME TO audit_action_old;
CREATE TYPE audit_action AS ENUM (
    'user_suspended', 'user_reinstated',
    'kyc_approved', 'kyc_rejected', 'service_hidden', 'service_unhidden'
);
ALTER TABLE audit_log ALTER COLUMN action TYPE audit_action USING action::text::audit_action;
DROP TYPE audit_action_old;
