-- Accounts of every role. Emails are stored trimmed and lower-cased by the
-- application, so the plain unique constraint is case-insensitive in effect.
CREATE TYPE user_role AS ENUM ('client', 'worker', 'admin');
CREATE TYPE user_status AS ENUM ('active', 'suspended');

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash text        NOT NULL,
    full_name     text        NOT NULL,
    role          user_role   NOT NULL,
    status        user_status NOT NULL DEFAULT 'active',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Admin listing filters by role and status, newest first.
CREATE INDEX users_role_status_idx ON users (role, status, id DESC);

-- Role profiles: one row per worker or client, created with the user.
-- Later migrations add the profile fields.
CREATE TABLE workers (
    user_id    uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clients (
    user_id    uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
