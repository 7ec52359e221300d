-- Worker profiles, weekly availability, KYC submissions, service listings and client
-- favorites. A listing is publicly visible when it is active, its worker is active
-- (not suspended) and the worker's KYC is approved.

CREATE TYPE kyc_status AS ENUM ('none', 'pending', 'approved', 'rejected');
CREATE TYPE kyc_document_type AS ENUM ('passport', 'national_id', 'driver_license', 'proof_of_address');
CREATE TYPE kyc_decision AS ENUM ('pending', 'approved', 'rejected');
CREATE TYPE service_status AS ENUM ('active', 'hidden', 'deleted');
CREATE TYPE pricing_unit AS ENUM ('fixed', 'hourly');

ALTER TYPE audit_action ADD VALUE 'kyc_approved';
ALTER TYPE audit_action ADD VALUE 'kyc_rejected';
ALTER TYPE audit_action ADD VALUE 'service_hidden';
ALTER TYPE audit_action ADD VALUE 'service_unhidden';

ALTER TABLE workers
    ADD COLUMN bio               text             NOT NULL DEFAULT '',
    ADD COLUMN skills            text[]           NOT NULL DEFAULT '{}',
    ADD COLUMN city              text,
    ADD COLUMN timezone          text             NOT NULL DEFAULT 'UTC',
    ADD COLUMN hourly_rate_cents bigint           CHECK (hourly_rate_cents >= 0),
    ADD COLUMN kyc_status        kyc_status       NOT NULL DEFAULT 'none',
    ADD COLUMN rating_avg        double precision,
    ADD COLUMN rating_count      integer          NOT NULL DEFAULT 0,
    ADD COLUMN updated_at        timestamptz      NOT NULL DEFAULT now();

ALTER TABLE clients
    ADD COLUMN phone      text,
    ADD COLUMN city       text,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- Wall-clock weekly slots in the worker's timezone; minutes since midnight, end exclusive.
CREATE TABLE availability_slots (
    worker_id    uuid     NOT NULL REFERENCES workers (user_id) ON DELETE CASCADE,
    weekday      smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    start_minute smallint NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute   smallint NOT NULL CHECK (end_minute BETWEEN 1 AND 1440),
    PRIMARY KEY (worker_id, weekday, start_minute),
    CHECK (start_minute < end_minute)
);

CREATE TABLE kyc_submissions (
    id            uuid              PRIMARY KEY,
    worker_id     uuid              NOT NULL REFERENCES workers (user_id) ON DELETE CASCADE,
    document_type kyc_document_type NOT NULL,
    status        kyc_decision      NOT NULL DEFAULT 'pending',
    reason        text,
    content_type  text              NOT NULL,
    size_bytes    bigint            NOT NULL CHECK (size_bytes > 0),
    sha256        text              NOT NULL,
    -- Where the UploadStore keeps the bytes; never derived from the client's filename.
    storage_key   text              NOT NULL,
    created_at    timestamptz       NOT NULL DEFAULT now(),
    reviewed_at   timestamptz,
    reviewed_by   uuid              REFERENCES users (id)
);

CREATE INDEX kyc_submissions_worker_idx ON kyc_submissions (worker_id, id DESC);
CREATE INDEX kyc_submissions_queue_idx ON kyc_submissions (status, id);

CREATE TABLE services (
    id               uuid             PRIMARY KEY,
    worker_id        uuid             NOT NULL REFERENCES workers (user_id) ON DELETE CASCADE,
    title            text             NOT NULL,
    description      text             NOT NULL,
    category         text             NOT NULL,
    price_cents      bigint           NOT NULL CHECK (price_cents >= 0),
    pricing_unit     pricing_unit     NOT NULL,
    city             text             NOT NULL,
    duration_minutes integer          NOT NULL CHECK (duration_minutes BETWEEN 15 AND 1440),
    status           service_status   NOT NULL DEFAULT 'active',
    rating_avg       double precision,
    rating_count     integer          NOT NULL DEFAULT 0,
    created_at       timestamptz      NOT NULL DEFAULT now(),
    updated_at       timestamptz      NOT NULL DEFAULT now(),
    -- Title matches outrank description matches.
    search           tsvector         NOT NULL GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', description), 'B')
    ) STORED
);

-- Every public sort, alone and under the category and city filters, walks an index in
-- order (ids are UUID v7, so id order is creation order); a price range rides the price
-- indexes, and a worker's own listings are few enough to sort. Only active listings are
-- indexed; cities are matched case-insensitively, as lower(city). Ratings sort with unrated listings last as COALESCE(rating_avg, -1): one
-- expression the keyset condition can seek on (ratings are 1 to 5).
CREATE INDEX services_newest_idx ON services (id DESC) WHERE status = 'active';
CREATE INDEX services_price_idx ON services (price_cents, id) WHERE status = 'active';
CREATE INDEX services_rating_idx ON services ((COALESCE(rating_avg, -1)) DESC, id DESC) WHERE status = 'active';
CREATE INDEX services_category_idx ON services (category, id DESC) WHERE status = 'active';
CREATE INDEX services_category_price_idx ON services (category, price_cents, id) WHERE status = 'active';
CREATE INDEX services_category_rating_idx ON services (category, (COALESCE(rating_avg, -1)) DESC, id DESC) WHERE status = 'active';
CREATE INDEX services_city_idx ON services (lower(city), id DESC) WHERE status = 'active';
CREATE INDEX services_city_price_idx ON services (lower(city), price_cents, id) WHERE status = 'active';
CREATE INDEX services_city_rating_idx ON services (lower(city), (COALESCE(rating_avg, -1)) DESC, id DESC) WHERE status = 'active';
CREATE INDEX services_search_idx ON services USING gin (search) WHERE status = 'active';
-- A worker's own listings (any status), and the public filter by worker.
CREATE INDEX services_worker_idx ON services (worker_id, id DESC);

CREATE TABLE favorites (
    client_id  uuid        NOT NULL REFERENCES clients (user_id) ON DELETE CASCADE,
    service_id uuid        NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, service_id)
);

-- A client's favorites, most recently added first; and the cascade from services.
CREATE INDEX favorites_client_recent_idx ON favorites (client_id, created_at DESC, service_id DESC);
CREATE INDEX favorites_service_idx ON favorites (service_id);
