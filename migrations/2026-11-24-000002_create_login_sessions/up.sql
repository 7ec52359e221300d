-- A login session: what one successful login and all of its refreshes share.
-- Its id is the `sid` claim of every access token it issues; revoking it kills
-- the access tokens (through Redis, refilled from here) and the refresh family.
CREATE TABLE login_sessions (
    id             uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text
);

CREATE INDEX login_sessions_user_live_idx ON login_sessions (user_id) WHERE revoked_at IS NULL;
-- The Redis refill reads the logins revoked within the last access-token lifetime.
CREATE INDEX login_sessions_revoked_at_idx ON login_sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Refresh tokens are stored only as SHA-256 digests. `used_at` makes rotation
-- single-use: presenting a used token again revokes its whole session.
CREATE TABLE refresh_tokens (
    token_hash bytea       PRIMARY KEY,
    session_id uuid        NOT NULL REFERENCES login_sessions (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
