-- +goose Up
-- Webmail (package mailcore/webmail): per-user preferences and the
-- sender-requested alerts waiting for the notify module. Times are Unix
-- seconds.

-- One row per account that changed a preference; an account without a row
-- has the defaults (the account's display name, no signature, zh-CN, 50
-- messages a page).
CREATE TABLE webmail_settings (
	account_id BIGINT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
	display_name TEXT NOT NULL DEFAULT '',
	signature TEXT NOT NULL DEFAULT '',
	language TEXT NOT NULL DEFAULT 'zh-CN',
	per_page INTEGER NOT NULL DEFAULT 50,
	updated_at BIGINT NOT NULL
);

-- "Also tell the recipients by SMS/IM": one row per sent message whose
-- sender asked for it and may. recipients is a JSON array of the envelope
-- recipients (To, Cc and Bcc). status is 'pending' until the notify module
-- takes the row ('sent', 'failed' are its to set).
CREATE TABLE webmail_alert_requests (
	id {{.ID}},
	account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	message_id TEXT NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	recipients TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	status TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX webmail_alert_requests_status ON webmail_alert_requests(status, id);

-- Folder listings newest first (the default order, on every page view)
-- read one page of uids from this index instead of sorting the folder;
-- unread counts (the folder list, the portal badge) count the partial
-- index of unread rows (flags bit 1 is \Seen), which holds only the
-- mailbox id, because every delivered row (unread at first) pays for it;
-- unread-only lists walk the date index and skip read rows. The other
-- orders (sender, subject, size, threads) sort the folder's rows: 10-30 ms
-- for 20,000 messages. Indexes for them were measured and left out: all
-- six together made a 200-recipient delivery about three times slower on
-- SQLite, and every delivered row pays for each index.
CREATE INDEX messages_webmail_date ON messages(mailbox_id, internal_date);
CREATE INDEX messages_webmail_unseen ON messages(mailbox_id) WHERE flags & 1 = 0;

-- +goose Down
DROP INDEX messages_webmail_unseen;
DROP INDEX messages_webmail_date;
DROP TABLE webmail_alert_requests;
DROP TABLE webmail_settings;
