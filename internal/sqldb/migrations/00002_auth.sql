-- +goose Up
-- Password sign-in failures (mailcore/auth), shared by every node so a
-- brute-force attempt spread over several SMTP/IMAP hosts is counted once.
-- key is 'account:<address>' or 'ip:<address>'. Times are Unix seconds.
-- failures counts failures since first_at (the window start); locked_until
-- is 0 or the end of a temporary lockout. Rows are pruned once both the
-- window and any lockout are over.
CREATE TABLE auth_failures (
	key TEXT PRIMARY KEY,
	failures BIGINT NOT NULL,
	first_at BIGINT NOT NULL,
	last_at BIGINT NOT NULL,
	locked_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX auth_failures_last ON auth_failures(last_at);

-- +goose Down
DROP TABLE auth_failures;
