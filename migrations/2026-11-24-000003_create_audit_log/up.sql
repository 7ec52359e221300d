-- Every admin action, for GET /admin/audit-log. Later migrations add actions
-- with ALTER TYPE ... ADD VALUE.
CREATE TYPE audit_action AS ENUM ('user_suspended', 'user_reinstated');

CREATE TABLE audit_log (
    id          uuid         PRIMARY KEY,
    actor_id    uuid         NOT NULL REFERENCES users (id),
    action      audit_action NOT NULL,
    target_type text         NOT NULL,
    target_id   uuid         NOT NULL,
    reason      text,
    at          timestamptz  NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id);
