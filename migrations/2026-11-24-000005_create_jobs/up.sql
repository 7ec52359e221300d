-- Bookings (jobs), their event history, message threads and reviews.

-- Exclusion constraints over (uuid =, range &&) need btree_gist's uuid operator class.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TYPE job_status AS ENUM ('requested', 'accepted', 'declined', 'in_progress', 'completed', 'cancelled', 'expired');

-- A conversation between a client and a worker: one per booked job, plus at most one
-- inquiry thread (job_id NULL) per pair. Messages come with the messaging feature.
CREATE TABLE threads (
    id         uuid        PRIMARY KEY,
    job_id     uuid        UNIQUE,
    client_id  uuid        NOT NULL REFERENCES clients (user_id) ON DELETE CASCADE,
    worker_id  uuid        NOT NULL REFERENCES workers (user_id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX threads_inquiry_pair_idx ON threads (client_id, worker_id) WHERE job_id IS NULL;

CREATE TABLE thread_participants (
    thread_id  uuid NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (thread_id, user_id)
);
CREATE INDEX thread_participants_user_idx ON thread_participants (user_id);

CREATE TABLE jobs (
    id              uuid        PRIMARY KEY,
    service_id      uuid        NOT NULL REFERENCES services (id),
    client_id       uuid        NOT NULL REFERENCES clients (user_id),
    worker_id       uuid        NOT NULL REFERENCES workers (user_id),
    status          job_status  NOT NULL DEFAULT 'requested',
    -- Snapshots taken at booking time: later listing edits do not change a booking.
    price_cents     bigint      NOT NULL CHECK (price_cents >= 0),
    scheduled_at    timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    address         text        NOT NULL,
    notes           text        NOT NULL DEFAULT '',
    thread_id       uuid        NOT NULL REFERENCES threads (id),
    idempotency_key text,
    -- A request not accepted by then expires: min(created_at + JOB_REQUEST_TTL, scheduled_at).
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (scheduled_at < ends_at),
    UNIQUE (client_id, idempotency_key),
    -- A worker is never committed to two overlapping jobs, whatever the races.
    CONSTRAINT jobs_worker_busy EXCLUDE USING gist (worker_id WITH =, tstzrange(scheduled_at, ends_at) WITH &&)
        WHERE (status IN ('accepted', 'in_progress'))
);
CREATE INDEX jobs_client_idx ON jobs (client_id, id DESC);
CREATE INDEX jobs_worker_idx ON jobs (worker_id, id DESC);
CREATE INDEX jobs_status_idx ON jobs (status, id DESC);
-- The expiry sweep: requested jobs by deadline.
CREATE INDEX jobs_expiry_idx ON jobs (expires_at) WHERE status = 'requested';

-- Every transition. `actor_id` is NULL for the system (expiry).
CREATE TABLE job_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    from_status job_status,
    to_status   job_status  NOT NULL,
    actor_id    uuid        REFERENCES users (id),
    reason      text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_events_job_idx ON job_events (job_id, id);

CREATE TABLE reviews (
    id         uuid        PRIMARY KEY,
    job_id     uuid        NOT NULL UNIQUE REFERENCES jobs (id),
    service_id uuid        NOT NULL REFERENCES services (id),
    worker_id  uuid        NOT NULL REFERENCES workers (user_id),
    client_id  uuid        NOT NULL REFERENCES clients (user_id),
    rating     smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment    text        NOT NULL DEFAULT '',
    -- Hidden reviews leave public lists and averages (an admin endpoint sets it).
    hidden     boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reviews_worker_idx ON reviews (worker_id, id DESC) WHERE NOT hidden;
CREATE INDEX reviews_service_idx ON reviews (service_id) WHERE NOT hidden;
