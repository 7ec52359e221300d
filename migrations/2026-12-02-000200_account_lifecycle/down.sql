DROP TABLE account_tokens;
DROP TYPE account_token_purpose;
ALTER TABLE users DROP COLUMN email_verified;
