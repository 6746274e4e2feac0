-- +goose Up
-- Sign-in (package sso). Times are Unix seconds.

-- One row per signed-in browser. token_hash is the SHA-256 of the cookie
-- value, so a database reader cannot take over a session. session_index is
-- the SAML SessionIndex or OIDC sid that single logout names.
CREATE TABLE sso_sessions (
	id {{.ID}},
	token_hash {{.Bytes}} NOT NULL UNIQUE,
	account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	person_id TEXT NOT NULL DEFAULT '',
	method TEXT NOT NULL,
	provider TEXT NOT NULL DEFAULT '',
	subject TEXT NOT NULL DEFAULT '',
	session_index TEXT NOT NULL DEFAULT '',
	id_token TEXT NOT NULL DEFAULT '',
	csrf TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	last_seen BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	remote_ip TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sso_sessions_account ON sso_sessions(account_id);
CREATE INDEX sso_sessions_subject ON sso_sessions(provider, subject);
CREATE INDEX sso_sessions_expires ON sso_sessions(expires_at);

-- Sign-ins started and not finished, bound to the browser by a cookie
-- (token_hash) and to one provider; taken exactly once.
CREATE TABLE sso_pending (
	token_hash {{.Bytes}} NOT NULL,
	provider TEXT NOT NULL,
	request_id TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL DEFAULT '',
	nonce TEXT NOT NULL DEFAULT '',
	verifier TEXT NOT NULL DEFAULT '',
	relay TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	PRIMARY KEY (token_hash, provider)
);
CREATE INDEX sso_pending_expires ON sso_pending(expires_at);

-- Things that may be used once (SAML assertion ids, affairs-link login
-- codes, OIDC logout token jti), kept until they could no longer be valid
-- anyway, so every node refuses a second use.
CREATE TABLE sso_used (
	kind TEXT NOT NULL,
	id TEXT NOT NULL,
	until_at BIGINT NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE INDEX sso_used_until ON sso_used(until_at);

-- Who signed in, failed to, or signed out: when, from where, how.
CREATE TABLE sso_audit (
	id {{.ID}},
	at BIGINT NOT NULL,
	event TEXT NOT NULL,
	account_id BIGINT,
	who TEXT NOT NULL DEFAULT '',
	method TEXT NOT NULL DEFAULT '',
	provider TEXT NOT NULL DEFAULT '',
	remote_ip TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sso_audit_at ON sso_audit(at);
CREATE INDEX sso_audit_account ON sso_audit(account_id, at);

-- Passwords for desktop clients of SSO-only staff: named, revocable,
-- shown once, stored as argon2id hashes.
CREATE TABLE app_passwords (
	id {{.ID}},
	account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	hash TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	last_used_at BIGINT NOT NULL DEFAULT 0,
	revoked_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX app_passwords_account ON app_passwords(account_id);

-- +goose Down
DROP TABLE app_passwords;
DROP TABLE sso_audit;
DROP TABLE sso_used;
DROP TABLE sso_pending;
DROP TABLE sso_sessions;
