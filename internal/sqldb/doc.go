// Package sqldb opens govhub's metadata database and keeps its schema.
//
// It owns the choice between the embedded SQLite file (the default, through
// the pure-Go modernc.org/sqlite driver, so a fresh machine needs no C
// toolchain) and PostgreSQL (through pgx, chosen when the database URL starts
// with postgres:// or postgresql://), the connection settings that make each
// one keep govhub's durability promise, and the embedded, ordered migrations
// (applied with github.com/pressly/goose/v3). It owns no domain tables' meaning:
// the mail core and the other domains write the SQL; this package only makes
// one SQL text run on both engines (sqlx.Rebind for placeholders, Dialect for
// the few other differences).
//
// SQLite durability: WAL journal with synchronous=FULL. In WAL mode NORMAL
// only fsyncs at checkpoints, so a power cut can lose the last committed
// transactions; that would break "250 only after fsync and commit". FULL
// fsyncs the WAL at every commit. The mail core's group commit puts many
// deliveries in one transaction, so the extra fsync is paid once per batch.
package sqldb
