DROP TABLE messages;
DROP INDEX thread_participants_activity_idx;
CREATE INDEX thread_participants_user_idx ON thread_participants (user_id);
ALTER TABLE thread_participants
    DROP COLUMN last_read_message_id,
    DROP COLUMN last_activity_at;
