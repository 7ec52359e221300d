-- Chat messages, per-participant read markers and activity order for thread lists.

-- Each participant's copy of "when did this thread last move" (its creation, then its
-- newest message) and how far they have read. Kept on the participant row so the thread
-- list is one index range scan per user: newest activity first, keyset on (at, thread).
ALTER TABLE thread_participants
    ADD COLUMN last_activity_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_read_message_id uuid;
DROP INDEX thread_participants_user_idx;
CREATE INDEX thread_participants_activity_idx
    ON thread_participants (user_id, last_activity_at DESC, thread_id DESC);

CREATE TABLE messages (
    id            uuid        PRIMARY KEY,
    thread_id     uuid        NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    sender_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- 1 to 4000 characters (not bytes), checked by the service as well.
    body          text        NOT NULL CHECK (char_length(body) BETWEEN 1 AND 4000),
    -- The client's key for retries: the same key from the same sender in the same
    -- thread is the same message (ON CONFLICT DO NOTHING resolves concurrent retries).
    client_msg_id text        CHECK (char_length(client_msg_id) BETWEEN 1 AND 128),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (thread_id, sender_id, client_msg_id)
);
-- History newest first, the last message of a thread, and unread counts (which read
-- sender_id: included so they stay index-only).
CREATE INDEX messages_thread_idx ON messages (thread_id, id DESC) INCLUDE (sender_id);
