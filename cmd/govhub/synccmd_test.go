package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govhub/govhub/adapters/affairslink/simulator"
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
}
