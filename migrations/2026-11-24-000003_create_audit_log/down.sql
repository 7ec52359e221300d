DROP TABLE audit_log;
DROP TYPE audit_action;
