-- The outbox: domain events written in the transaction of the change they describe,
-- turned into side effects (notifications, pushes) by the dispatcher.
CREATE TABLE events (
    id uuid PRIMARY KEY,
    kind text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    done_at timestamptz,
    parked_at timestamptz,
    last_error text
);
-- Due work: neither done nor parked, in the claim's order (oldest attempt, then id), so a
-- claim reads its batch off the index instead of sorting the whole backlog when many
-- events share a timestamp.
CREATE INDEX events_due ON events (next_attempt_at, id) WHERE done_at IS NULL AND parked_at IS NULL;
-- Pruning of done events past the retention period.
CREATE INDEX events_done ON events (done_at) WHERE done_at IS NOT NULL;

CREATE TABLE notifications (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- No foreign key: done events are pruned, their notifications stay.
    event_id uuid NOT NULL,
    kind text NOT NULL,
    payload jsonb NOT NULL,
    read_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_once UNIQUE (event_id, user_id)
);
CREATE INDEX notifications_newest ON notifications (user_id, id DESC);
CREATE INDEX notifications_unread ON notifications (user_id, id DESC) WHERE read_at IS NULL;
