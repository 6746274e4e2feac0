-- +goose Up
-- When an account's person left the organisation (Unix seconds, NULL while
-- not left): mail is still accepted for a grace period after it
-- (store.left_grace), so senders are not bounced the day someone moves on.
ALTER TABLE accounts ADD COLUMN left_at BIGINT;

-- +goose Down
ALTER TABLE accounts DROP COLUMN left_at;
