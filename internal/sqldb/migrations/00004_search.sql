-- +goose Up
-- Bookkeeping of the full-text index (mailcore/search): one row per body
-- (blobs.id) that has been indexed, written in the same transaction as its
-- index entry, so every body is indexed exactly once even when several
-- nodes index at the same time. No foreign key to blobs: a purge deletes
-- blob rows without knowing about the index; the indexer notices and
-- removes the entry (dead marks a body seen at zero references, watched
-- until its row is gone or referenced again).
-- The index itself is engine-specific (an FTS5 table on SQLite, a GIN-
-- indexed tsvector table on PostgreSQL) and is created by search.New,
-- because migrations are rendered with {{.ID}}/{{.Bytes}} only.
-- status: 0 indexed from the body, 1 body unreadable (missing or corrupt:
-- indexed from nothing), 2 body read failed repeatedly (given up).
CREATE TABLE search_indexed (
	blob_id BIGINT PRIMARY KEY,
	dead SMALLINT NOT NULL DEFAULT 0,
	status SMALLINT NOT NULL DEFAULT 0,
	text_bytes BIGINT NOT NULL DEFAULT 0,
	indexed_at BIGINT NOT NULL
);
CREATE INDEX search_indexed_dead ON search_indexed(blob_id) WHERE dead = 1;

-- +goose Down
-- The engine-specific index tables go too (IF EXISTS: only one exists).
DROP TABLE IF EXISTS search_fts;
DROP TABLE IF EXISTS search_tsv;
DROP TABLE search_indexed;
