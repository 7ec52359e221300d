DROP TABLE oidc_identities;
-- A password-less account gets a hash no password matches (not a valid PHC string).
UPDATE users SET password_hash = '!' WHERE password_hash IS NULL;
ALTER TABLE users ALTER COLUMN password_hash SET NOT NULL;
