package search

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/govhub/govhub/internal/sqldb"
)

func TestZZProbe(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "x.db"), sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var v string
	db.X.Get(&v, "select sqlite_version()")
	t.Log(v)
	var opts []string
	db.X.Select(&opts, "PRAGMA compile_options")
	t.Log(opts)
	_, err = db.X.Exec(`CREATE VIRTUAL TABLE f USING fts5(head, body, content='', contentless_delete=1, detail=column, tokenize='ascii')`)
	t.Log(err)
	_, err = db.X.Exec(`INSERT INTO f(rowid, head, body) VALUES (5, 'abc 通知', '工作 report 作会 Ab')`)
	t.Log(err)
	for _, q := range []string{`"通知"`, `body : "通知"`, `"工作" "rep"*`, `body : "工作" AND body : "rep"*`, `"ab"`, `{body} : ("工作" "rep"*)`} {
		var ids []int64
		err = db.X.Select(&ids, `SELECT rowid FROM f WHERE f MATCH ?`, q)
		t.Log(q, ids, err)
	}
	_, err = db.X.Exec(`DELETE FROM f WHERE rowid = 5`)
	t.Log(err)
}
