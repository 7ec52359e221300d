DROP TABLE favorites;
DROP TABLE services;
DROP TABLE kyc_submissions;
DROP TABLE availability_slots;

ALTER TABLE clients DROP COLUMN phone, DROP COLUMN city, DROP COLUMN updated_at;
ALTER TABLE workers
    DROP COLUMN bio, DROP COLUMN skills, DROP COLUMN city, DROP COLUMN timezone,
    DROP COLUMN hourly_rate_cents, DROP COLUMN kyc_status, DROP COLUMN rating_avg,
    DROP COLUMN rating_count, DROP COLUMN updated_at;

-- PostgreSQL cannot drop enum values: rebuild audit_action without the catalog actions.
DELETE FROM audit_log WHERE action::text IN ('kyc_approved', 'kyc_rejected', 'service_hidden', 'service_unhidden');
ALTER TYPE audit_action RENAME TO audit_action_old;
CREATE TYPE audit_action AS ENUM ('user_suspended', 'user_reinstated');
ALTER TABLE audit_log ALTER COLUMN action TYPE audit_action USING action::text::audit_action;
DROP TYPE audit_action_old;

DROP TYPE pricing_unit;
DROP TYPE service_status;
DROP TYPE kyc_decision;
DROP TYPE kyc_document_type;
DROP TYPE kyc_status;
