-- Account lifecycle: proven emails, and the single-use links that prove them or reset
-- a password.
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;

CREATE TYPE account_token_purpose AS ENUM ('verify_email', 'reset_password');

-- At most one live link per user and purpose: issuing a new one replaces the row, so
-- only the newest link works. Only the SHA-256 digest of a token is kept; using a
-- token deletes its row.
CREATE TABLE account_tokens (
    user_id    uuid                  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    account_token_purpose NOT NULL,
    token_hash bytea                 NOT NULL UNIQUE,
    expires_at timestamptz           NOT NULL,
    created_at timestamptz           NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, purpose)
);
