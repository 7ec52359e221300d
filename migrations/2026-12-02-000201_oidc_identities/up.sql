-- Sign-in with an OpenID Connect provider: accounts made this way have no password
-- until a reset sets one, and each provider account (provider, sub) is linked to one user.
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;

CREATE TABLE oidc_identities (
    provider   text        NOT NULL,
    subject    text        NOT NULL,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);
CREATE INDEX oidc_identities_user_idx ON oidc_identities (user_id);
