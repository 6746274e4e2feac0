package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govhub/govhub/adapters/ldap/ldaptest"
)

// TestSyncRunLDAP drives `govhub sync run` against a real slapd with the
// generated chart (Chinese names and hostile entries): a full run creates
// people and their mail accounts, reports the broken entries per object
// without stopping, and a second run changes nothing.
func TestSyncRunLDAP(t *testing.T) {
	srv := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ChartLDIF(0)})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "govhub.yaml")
	os.WriteFile(cfgPath, []byte(`directory:
  peers:
    - name: ldap
      type: ldap
      settings:
        url: `+srv.URL+`
        bind_dn: "`+ldaptest.RootDN+`"
        people: {base_dn: "`+ldaptest.Suffix+`"}
`), 0o600)
	t.Setenv("GOVHUB_PEER_LDAP_SECRET", ldaptest.RootPW)
	base := []string{"--config", cfgPath, "--data", filepath.Join(dir, "data")}
	sync := func() map[string]any {
		t.Helper()
		out, errs, code := run(t, "", append(base, "sync", "run", "ldap", "--full", "--json")...)
		if code != 0 {
			t.Fatalf("sync run: %d\n%s\n%s", code, out, errs)
		}
		if strings.Contains(out+errs, ldaptest.RootPW) {
			t.Fatal("the bind secret was printed")
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return r
	}
	// A dry run reports exactly what the real run then does.
	out, errs, code := run(t, "", append(base, "sync", "run", "ldap", "--full", "--dry-run", "--json")...)
	var dry map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &dry) != nil || dry["dry_run"] != true {
		t.Fatalf("dry run: %d %s %s", code, out, errs)
	}
	first := sync()
	for _, k := range []string{"created", "updated", "removed"} {
		if dry[k] != first[k] {
			t.Errorf("dry run %s=%v, real run %v", k, dry[k], first[k])
		}
	}
	if first["created"].(float64) < 8 || len(first["errors"].([]any)) == 0 {
		t.Fatalf("first run = created %v, errors %v", first["created"], first["errors"])
	}
	out, _, _ = run(t, "", append(base, "user", "list")...)
	for _, want := range []string{"zhangsan@gov.example", "欧阳娜娜", "zhugeliang@gov.example"} {
		if !strings.Contains(out, want) {
			t.Errorf("accounts after sync lack %s:\n%s", want, out)
		}
	}
	second := sync()
	if second["created"].(float64) != 0 || second["updated"].(float64) != 0 || second["removed"].(float64) != 0 {
		t.Fatalf("second run changed things: created %v updated %v removed %v", second["created"], second["updated"], second["removed"])
	}
	// Deleting 2 of the chart's people is more than 5%: the run stops and
	// removes nothing until confirmed.
	for _, p := range ldaptest.People[:2] {
		srv.LDAPModify(t, "dn: "+p.DN()+"\nchangetype: delete\n")
	}
	out, errs, code = run(t, "", append(base, "sync", "run", "ldap", "--full")...)
	if code != 1 || !strings.Contains(errs, "threshold") {
		t.Fatalf("threshold not tripped: %d %s %s", code, out, errs)
	}
	if out, _, _ := run(t, "", append(base, "user", "quota", ldaptest.People[0].Mail)...); !strings.Contains(out, "used") {
		t.Fatalf("account gone after a refused run: %s", out)
	}
	out, errs, code = run(t, "", append(base, "sync", "run", "ldap", "--full", "--confirm-deletions", "--json")...)
	var third map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &third) != nil || third["removed"].(float64) != 2 {
		t.Fatalf("confirmed run: %d %s %s", code, out, errs)
	}
	// Removed people have left: their accounts are marked, not deleted.
	out, _, _ = run(t, "", append(base, "user", "list")...)
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, ldaptest.People[0].Mail) && !strings.Contains(line, "left") {
			t.Fatalf("account of a removed person: %q", line)
		}
	}
}
