DROP TABLE refresh_tokens;
DROP TABLE login_sessions;
