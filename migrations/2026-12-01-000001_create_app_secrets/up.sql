-- Keys the service generates for itself when none is configured (the JWT signing key
-- outside production), so every instance of a deployment signs and verifies alike.
CREATE TABLE app_secrets (
    name text PRIMARY KEY,
    value text NOT NULL CHECK (length(value) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
