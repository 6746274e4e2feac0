// Package search owns the full-text index of message bodies: IMAP SEARCH
// TEXT and BODY (RFC 3501 6.4.4) with Chinese terms, and webmail's search
// box, answered from an index instead of a scan of every body.
//
// It does not own header searches (FROM, SUBJECT, dates, sizes, flags:
// those are SQL over the messages rows), the IMAP command itself
// (mailcore's IMAP server calls MatchUIDs and intersects the result with
// its other keys), or the bodies (mailcore.Store and its BlobStore).
//
// # One entry per body
//
// Bodies are single-instance: one blobs row per distinct body, any number
// of message rows pointing at it. The index is keyed by the blobs row id,
// so a message to 10,000 recipients, or copied to five folders, is indexed
// once; a query joins the mailbox's message rows (mailbox_id, blob_id)
// with the bodies that match.
//
// An entry holds two token sets: the body (mailcore/envelope.Text: text
// parts decoded to UTF-8 from GB2312/GBK/GB18030/Big5/..., HTML stripped,
// attachments skipped, capped at Config.MaxTextBytes) and the header
// (subject, names and addresses of From, Sender, Reply-To, To and Cc, as
// decoded by envelope.Parse, capped at 16 KiB). BODY searches the first,
// TEXT both.
//
// # Tokens
//
// Runs of letters and digits of space-separated scripts are words,
// lower-cased. Runs of CJK characters (Han, Hiragana, Katakana, Hangul)
// are indexed as every character and every pair of adjacent characters:
// most Chinese words are two characters, which a trigram index cannot
// find, and single characters serve one-character queries. Full-width
// forms fold to ASCII. Punctuation, symbols and emoji are not indexed.
//
// A query is tokenised the same way (a CJK run of two or more characters
// contributes only its pairs) and a message matches when it holds every
// query token; Latin query words of three or more letters also match
// longer words that start with them ("meet" finds "meeting"). Order and
// adjacency are not checked (no positions are stored), so the index
// answers a superset of a substring match for CJK phrases — 工作会议 also
// matches a text holding 工作, 作会 and 会议 apart, which is rare — and word
// or word-prefix matching, not infix, for Latin ("port" does not find
// "report"). An empty term matches every message; a term with nothing
// indexable (only punctuation) matches none.
//
// # Storage
//
// The bookkeeping table search_indexed (migration 00004_search.sql, both
// engines) has one row per indexed body, written in the same transaction
// as its entry with INSERT ... ON CONFLICT DO NOTHING, so each body is
// indexed exactly once even with several indexers on one database. The
// entries are engine-specific and created by New (migrations are rendered
// with {{.ID}}/{{.Bytes}} only):
//
//   - SQLite: an FTS5 table search_fts(head, body), rowid = blobs id,
//     contentless (tokens are not stored twice), detail=column, over the
//     space-separated tokens with the ascii tokenizer, which splits only on
//     ASCII punctuation and spaces and so keeps CJK bigrams whole.
//   - PostgreSQL: search_tsv(blob_id PRIMARY KEY, tsv tsvector) with a GIN
//     index. tsv is array_to_tsvector of the tokens (no parser, no
//     dictionary, no positions), header tokens prefixed with '#'; queries
//     are tsquery literals of quoted tokens ('通知' & 'report':*), so the
//     database's locale never changes what a token is.
//
// # Indexing
//
// Run indexes in the background every PollInterval; MatchUIDs first
// indexes up to one batch of bodies delivered since, so a SEARCH right
// after a delivery sees it (with nothing pending that costs two indexed
// queries). New bodies are found by an anti-join of blobs against
// search_indexed above a low-water mark. On PostgreSQL ids can commit out
// of order, so the mark only moves past an id once every transaction that
// could still commit a lower one has ended (snapshot xmin/xmax); SQLite has
// one writer and commits in id order.
//
// A body missing from or corrupt in the BlobStore is indexed empty; any
// other read error is retried on later passes, MaxAttempts times, and
// then the body is indexed empty too: nothing is retried forever, and one
// bad body never holds back the others.
//
// Purge deletes blob rows without telling the index. Each pass marks the
// indexed bodies that have turned dead (reference count zero, dead_at,
// through blobs' partial index) and checks only the marked ones: an entry
// whose blob row is gone is removed, one whose body was delivered again is
// unmarked. The first pass of a process also sweeps for entries whose row
// vanished while no indexer ran. Stale entries never produce results in
// the meantime: no message row points at a purged body.
//
// # Limits of this version
//
//   - The index is global, one entry per body. A query term is matched
//     against all bodies of the installation and then joined with the
//     mailbox; on PostgreSQL the planner may instead probe the index once
//     per message row of the mailbox. Both are well inside 100 ms for a
//     20,000-message mailbox (see BenchmarkSearch), but a very common term
//     over many millions of bodies would want an index partitioned by
//     account (which single-instance bodies make costlier).
//   - A body's distinct tokens are capped at about 900 KB (PostgreSQL's
//     tsvector limit is 1 MiB); text past that is not searchable.
//   - The low-water mark is kept in memory; a restarted process does one
//     anti-join over all blobs rows and one orphan sweep.
package search
