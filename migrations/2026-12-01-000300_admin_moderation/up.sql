-- Admin moderation: hiding reviews is audited, and the admin user search has indexes.
ALTER TYPE audit_action ADD VALUE 'review_hidden';

-- GET /admin/users filters by role or status alone, newest first (both together use
-- users_role_status_idx).
CREATE INDEX users_role_idx ON users (role, id DESC);
CREATE INDEX users_status_idx ON users (status, id DESC);

-- `q` is a case-insensitive substring match (ILIKE '%q%') on email or full name:
-- trigram GIN indexes serve it (from three characters on) instead of a full scan.
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: the database
-- owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_email_trgm_idx ON users USING gin (email gin_trgm_ops);
CREATE INDEX users_full_name_trgm_idx ON users USING gin (full_name gin_trgm_ops);
