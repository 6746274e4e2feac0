package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govhub/govhub/adapters/affairslink/simulator"
	"github.com/govhub/govhub/directory"
	"github.com/govhub/govhub/internal/sqldb"
)

// TestSyncRunAffairsLink drives `govhub sync run` against the affairs-link
// contract simulator: a dry run changes nothing, the real run creates the
// people and provisions their mail accounts, and a second run finds nothing
// to do.
func TestSyncRunAffairsLink(t *testing.T) {
	sim := simulator.New(simulator.Config{AppKey: "govhub-mail", AppSecret: "s3cret-app"})
	sim.Seed(3, 25)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "govhub.yaml")
	os.WriteFile(cfgPath, []byte(`directory:
  match_key: employee_no
  peers:
    - name: affairslink
      type: affairslink
      settings:
        base_url: `+srv.URL+`
        app_key: govhub-mail
`), 0o600)
	t.Setenv("GOVHUB_PEER_AFFAIRSLINK_SECRET", "s3cret-app")
	data := filepath.Join(dir, "data")
	base := []string{"--config", cfgPath, "--data", data}

	out, errs, code := run(t, "", append(base, "sync", "peers")...)
	if code != 0 || !strings.Contains(out, "affairslink") {
		t.Fatalf("sync peers: %d %s %s", code, out, errs)
	}
	report := func(args ...string) map[string]any {
		t.Helper()
		out, errs, code := run(t, "", append(append(base, "sync", "run", "affairslink", "--json"), args...)...)
		if code != 0 {
			t.Fatalf("sync run %v: %d\n%s\n%s", args, code, out, errs)
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if strings.Contains(errs, "s3cret-app") || strings.Contains(out, "s3cret-app") {
			t.Fatal("the app secret was printed")
		}
		return r
	}
	dry := report("--dry-run")
	if dry["created"].(float64) < 25 || dry["dry_run"] != true {
		t.Fatalf("dry run = %v", dry)
	}
	if out, _, _ := run(t, "", append(base, "user", "list")...); strings.Contains(out, "user00001@gov.example.cn") {
		t.Fatal("the dry run provisioned accounts")
	}
	real := report()
	if real["created"] != dry["created"] {
		t.Fatalf("real run created %v, dry run said %v", real["created"], dry["created"])
	}
	out, _, _ = run(t, "", append(base, "user", "list")...)
	if !strings.Contains(out, "user00001@gov.example.cn") || strings.Count(out, "@gov.example.cn") != 25 {
		t.Fatalf("accounts after sync:\n%s", out)
	}
	again := report()
	if again["created"].(float64) != 0 || again["updated"].(float64) != 0 || again["removed"].(float64) != 0 {
		t.Fatalf("second run changed things: %v", again)
	}
	// History lists the three runs; show gives one with its objects.
	out, errs, code = run(t, "", append(base, "sync", "history", "affairslink", "--json")...)
	var runs []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &runs) != nil || len(runs) != 3 {
		t.Fatalf("history: %d %s %s", code, out, errs)
	}
	out, _, code = run(t, "", append(base, "sync", "show", fmt.Sprint(real["run_id"]))...)
	if code != 0 || !strings.Contains(out, `"objects"`) || !strings.Contains(out, "affairslink") {
		t.Fatalf("show: %s", out)
	}
	// Schedules: set, list with a next time, pause, refuse a bad cron line.
	if _, errs, code := run(t, "", append(base, "sync", "schedule", "set", "affairslink", "delta", "*/5 * * * *")...); code != 0 {
		t.Fatalf("schedule set: %s", errs)
	}
	if _, _, code := run(t, "", append(base, "sync", "schedule", "set", "affairslink", "delta", "every tuesday")...); code == 0 {
		t.Fatal("a bad cron expression was accepted")
	}
	out, _, _ = run(t, "", append(base, "sync", "schedule", "list")...)
	if !strings.Contains(out, "*/5 * * * *") || !strings.Contains(out, "false") {
		t.Fatalf("schedule list: %s", out)
	}
	run(t, "", append(base, "sync", "schedule", "pause", "affairslink", "delta")...)
	out, _, _ = run(t, "", append(base, "sync", "schedule", "list")...)
	if !strings.Contains(out, "true") {
		t.Fatalf("schedule not paused: %s", out)
	}

	// The address book and the admin API over HTTP, behind the API token.
	token := strings.Repeat("k", 40)
	t.Setenv("GOVHUB_API_TOKEN", token)
	_, addrs, _ := startServe(t, filepath.Join(dir, "data"), "--config", cfgPath, "--modules", "http")
	get := func(path, tok string) (int, string) {
		req, _ := http.NewRequest("GET", addrs["http"]+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/api/v1/addressbook/people?q=user", ""); code != 401 {
		t.Fatalf("address book without token: %d", code)
	}
	if code, _ := get("/api/v1/addressbook/people?q=user", "wrong"+token); code != 401 {
		t.Fatalf("address book with a wrong token: %d", code)
	}
	code, body := get("/api/v1/addressbook/people?q=user00001", token)
	if code != 200 || !strings.Contains(body, "user00001@gov.example.cn") {
		t.Fatalf("address book search: %d %s", code, body)
	}
	code, body = get("/api/admin/sync/schedules", token)
	if code != 200 || !strings.Contains(body, "*/5 * * * *") {
		t.Fatalf("admin schedules: %d %s", code, body)
	}
	code, body = get("/api/admin/sync/runs?peer=affairslink", token)
	if code != 200 || strings.Count(body, `"peer":"affairslink"`) != 3 {
		t.Fatalf("admin runs: %d %s", code, body)
	}

	// A signed change callback from the affairs link triggers a delta run:
	// a person added there shows up in govhub without waiting for a
	// schedule. A forged callback is refused.
	sim.PutUser(simulator.User{ID: "u90001", Name: "新同事", Email: "newcomer@gov.example.cn", JobNumber: "E090001", Status: "active",
		Departments: []simulator.Member{{ID: "d001", Order: 1}}})
	ev := simulator.Event{EventID: "ev-1", Type: "user.upsert", ID: "u90001", OccurredAt: time.Now()}
	if code, err := sim.SendCallback(context.Background(), addrs["http"]+"/callbacks/affairslink", ev, simulator.CallbackOptions{Secret: "forged"}); err != nil || code != 401 {
		t.Fatalf("forged callback: %d %v", code, err)
	}
	if code, err := sim.SendCallback(context.Background(), addrs["http"]+"/callbacks/affairslink", ev, simulator.CallbackOptions{}); err != nil || code != 200 {
		t.Fatalf("callback: %d %v", code, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := get("/api/v1/addressbook/people?q=newcomer", token)
		if code == 200 && strings.Contains(body, "newcomer@gov.example.cn") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("callback did not lead to a sync: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Department distribution lists follow the synced chart.
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(dir, "data", "govhub.db"), sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dst := directory.NewStore(db, nil)
	depts, err := dst.Departments(ctx)
	if err != nil || len(depts) != 4 {
		t.Fatalf("departments = %v, %v", depts, err)
	}
	g := deptGroups{dir: dst, domain: "gov.example.cn"}
	var root, child int64
	for _, d := range depts {
		if d.ParentID == 0 {
			root = d.ID
		} else {
			child = d.ID
		}
	}
	direct, ok, err := g.Members(ctx, fmt.Sprintf("dept-%d@gov.example.cn", child))
	if err != nil || !ok || len(direct) == 0 || !strings.HasSuffix(direct[0], "@gov.example.cn") {
		t.Fatalf("members of %d = %v %v %v", child, direct, ok, err)
	}
	all, ok, _ := g.Members(ctx, fmt.Sprintf("DEPT-%d-all@GOV.example.cn", root))
	if !ok || len(all) != 26 { // 25 seeded + the newcomer
		t.Fatalf("root with sub-departments: %d members (%v)", len(all), ok)
	}
	for _, notGroup := range []string{"user00001@gov.example.cn", fmt.Sprintf("dept-%d@elsewhere.example", child), "dept-x@gov.example.cn", "dept-999999@gov.example.cn"} {
		if _, ok, err := g.Members(ctx, notGroup); ok || err != nil {
			t.Errorf("%s taken as a group (%v)", notGroup, err)
		}
	}
}
