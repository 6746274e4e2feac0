// Package archtest checks the dependency direction DESIGN.md fixes: no
// package imports cmd; domain packages import neither adapters nor each
// other (they declare small interfaces instead); adapters never import cmd.
package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/govhub/govhub/"

var domains = []string{"mailcore", "sso", "directory", "notify", "subscribe"}

func top(pkg string) string {
	rel := strings.TrimPrefix(pkg, module)
	if i := strings.IndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return rel
}

func isDomain(pkg string) bool {
	for _, d := range domains {
		if top(pkg) == d {
			return true
		}
	}
	return false
}

func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "-json", "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.ImportPath, module) {
			continue
		}
		from := strings.Fields(p.ImportPath)[0] // "pkg [pkg.test]" for test variants
		checked++
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			switch {
			case top(imp) == "cmd" && top(from) != "cmd": // cmd's own test binary may
				t.Errorf("%s imports %s: nothing may import cmd", from, imp)
			case isDomain(from) && top(imp) == "adapters":
				t.Errorf("%s imports %s: a domain declares interfaces; only cmd/govhub imports adapters", from, imp)
			case isDomain(from) && isDomain(imp) && top(imp) != top(from):
				t.Errorf("%s imports %s: domains reach each other only through interfaces they declare", from, imp)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d project packages listed: the check saw nothing", checked)
	}
}
