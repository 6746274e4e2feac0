-- +goose Up
-- The outbound delivery queue (mailcore/queue). A queued message holds one
-- reference on its body's blobs row (blobs.refs counts message rows plus
-- queue_messages rows; fsck counts both), released in the same transaction
-- that deletes the queue rows. Times are Unix seconds.

CREATE TABLE queue_messages (
	id {{.ID}},
	blob_id BIGINT NOT NULL REFERENCES blobs(id),
	sender TEXT NOT NULL,                         -- envelope sender; '' = null sender <> (a bounce)
	size BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX queue_messages_blob ON queue_messages(blob_id);

-- One row per recipient. status: 0 queued, 1 delivered, 2 failed with its
-- bounce not yet sent, 3 failed and bounced (or no bounce due). A message is
-- finished, and its rows deleted, when no recipient is at 0 or 2.
-- claimed_by/claim_expires: the worker delivering the row; a claim past its
-- expiry (a crashed worker) is taken again.
CREATE TABLE queue_recipients (
	id {{.ID}},
	queue_id BIGINT NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
	rcpt TEXT NOT NULL,
	domain TEXT NOT NULL,                         -- lower-case
	status SMALLINT NOT NULL DEFAULT 0,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt_at BIGINT NOT NULL,
	last_attempt_at BIGINT NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',          -- e.g. 'smtp; 451 4.3.0 try later'
	dsn_status TEXT NOT NULL DEFAULT '',          -- RFC 3463 code of the last failure
	remote_mta TEXT NOT NULL DEFAULT '',
	claimed_by TEXT NOT NULL DEFAULT '',
	claim_expires BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX queue_recipients_msg ON queue_recipients(queue_id);
CREATE INDEX queue_recipients_due ON queue_recipients(next_attempt_at) WHERE status IN (0, 2);

-- +goose Down
DROP TABLE queue_recipients;
DROP TABLE queue_messages;
