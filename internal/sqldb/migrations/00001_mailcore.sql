-- +goose Up
-- The mail core's tables. Written once for both engines: {{.ID}} is the
-- dialect's never-reused auto-increment key, {{.Bytes}} its binary type.
-- Times are Unix seconds (BIGINT) so both engines compare them the same way.

CREATE TABLE domains (
	id {{.ID}},
	name TEXT NOT NULL UNIQUE,
	created_at BIGINT NOT NULL
);

CREATE TABLE accounts (
	id {{.ID}},
	domain_id BIGINT NOT NULL REFERENCES domains(id),
	address TEXT NOT NULL UNIQUE,                 -- lower-case local@domain
	display_name TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL DEFAULT '',       -- '' = SSO only: no password sign-in
	status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'left')),
	quota_bytes BIGINT NOT NULL,                  -- 0 = unlimited
	used_bytes BIGINT NOT NULL DEFAULT 0,
	next_uidvalidity BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX accounts_domain ON accounts(domain_id);

CREATE TABLE aliases (
	id {{.ID}},
	address TEXT NOT NULL UNIQUE,
	account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	created_at BIGINT NOT NULL
);
CREATE INDEX aliases_account ON aliases(account_id);

CREATE TABLE mailboxes (
	id {{.ID}},
	account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL,                           -- full path, '/' between levels
	special_use TEXT NOT NULL DEFAULT '',         -- '', '\Drafts', '\Sent', ...
	uidvalidity BIGINT NOT NULL,
	uidnext BIGINT NOT NULL DEFAULT 1,
	highest_modseq BIGINT NOT NULL DEFAULT 1,
	subscribed SMALLINT NOT NULL DEFAULT 1,
	created_at BIGINT NOT NULL,
	UNIQUE (account_id, name)
);

-- One row per stored body. refs counts message rows pointing at it; a blob
-- at zero refs is dead (dead_at set) and purged after a grace period.
-- state 0 = normal, 1 = purging (being deleted from the blob store: a
-- delivery of the same bytes waits until the row is gone, then stores anew).
CREATE TABLE blobs (
	id {{.ID}},
	sha {{.Bytes}} NOT NULL UNIQUE,
	size BIGINT NOT NULL,
	refs BIGINT NOT NULL DEFAULT 0,
	state SMALLINT NOT NULL DEFAULT 0,
	dead_at BIGINT
);
CREATE INDEX blobs_dead ON blobs(dead_at) WHERE refs = 0;

-- Per-mailbox message rows: everything listing, sorting, threading and most
-- searches need, so they never read bodies. flags is a bit set (see
-- mailcore.Flag*); keywords is space-separated IMAP keywords or NULL.
CREATE TABLE messages (
	id {{.ID}},
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid BIGINT NOT NULL,
	modseq BIGINT NOT NULL,
	blob_id BIGINT NOT NULL REFERENCES blobs(id),
	flags INTEGER NOT NULL DEFAULT 0,
	keywords TEXT,
	internal_date BIGINT NOT NULL,
	size BIGINT NOT NULL,
	sent_date BIGINT NOT NULL DEFAULT 0,
	from_addr TEXT NOT NULL DEFAULT '',
	to_addr TEXT NOT NULL DEFAULT '',
	cc_addr TEXT NOT NULL DEFAULT '',
	reply_to TEXT,
	subject TEXT NOT NULL DEFAULT '',
	message_id TEXT NOT NULL DEFAULT '',
	in_reply_to TEXT NOT NULL DEFAULT '',
	refs TEXT,
	thread_id BIGINT NOT NULL DEFAULT 0,
	preview TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX messages_uid ON messages(mailbox_id, uid);

-- Events written in the same transaction as the change they announce
-- (delivery, expunge), read by IDLE, alerts and the badge. The row id is the
-- idempotency key for at-least-once consumers, who read in id order (so no
-- secondary index: every byte here is paid per delivered message).
CREATE TABLE outbox (
	id {{.ID}},
	kind SMALLINT NOT NULL,                       -- mailcore.Event* constants
	account_id BIGINT NOT NULL,
	mailbox_id BIGINT NOT NULL,
	uid BIGINT NOT NULL
);

-- Leases: work only one node may do at a time (a maintenance pass, a sync
-- run) is done by whoever holds the row until expires_at.
CREATE TABLE leases (
	name TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE leases;
DROP TABLE outbox;
DROP TABLE messages;
DROP TABLE blobs;
DROP TABLE mailboxes;
DROP TABLE aliases;
DROP TABLE accounts;
DROP TABLE domains;
