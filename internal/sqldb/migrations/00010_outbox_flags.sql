-- +goose Up
-- Flag and keyword changes become outbox events (kind 3), so IMAP
-- sessions in every process, and webmail's changes, reach clients in IDLE.
-- origin is the IMAP session (a random id) that made a change, 0 for
-- anyone else: a session does not hear its own changes back. created_at
-- (Unix seconds; 0 on rows older than this migration) lets maintenance
-- prune events no consumer needs any more.
ALTER TABLE outbox ADD COLUMN origin BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE outbox DROP COLUMN created_at;
ALTER TABLE outbox DROP COLUMN origin;
