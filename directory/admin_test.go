package directory

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/govhub/govhub/internal/sqldb"
)

func TestAdminHandler(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		e, _ := newTestEngine(db, Config{})
		f := newFake("ldap")
		chart(f)
		rep := mustRun(t, e, f, RunOptions{Full: true})
		srv := httptest.NewServer(AdminHandler(e.Store()))
		defer srv.Close()
		do := func(method, path, body string) (int, string) {
			req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, body := do("PUT", "/schedules/ldap/delta", `{"spec":"*/5 * * * *"}`); code != 200 {
			t.Fatalf("put: %d %s", code, body)
		}
		if code, _ := do("PUT", "/schedules/ldap/delta", `{"spec":"now and then"}`); code != 400 {
			t.Fatalf("bad cron accepted: %d", code)
		}
		if code, _ := do("PUT", "/schedules/ldap/delta", `not json`); code != 400 {
			t.Fatalf("bad body accepted: %d", code)
		}
		if code, body := do("POST", "/schedules/ldap/delta/pause", ""); code != 200 {
			t.Fatalf("pause: %d %s", code, body)
		}
		if code, body := do("GET", "/schedules", ""); code != 200 || !strings.Contains(body, `"paused":true`) {
			t.Fatalf("list: %d %s", code, body)
		}
		if code, body := do("GET", "/runs?peer=ldap", ""); code != 200 || !strings.Contains(body, `"peer":"ldap"`) {
			t.Fatalf("runs: %d %s", code, body)
		}
		if code, body := do("GET", "/runs/"+strconv.FormatInt(rep.RunID, 10), ""); code != 200 || !strings.Contains(body, `"objects"`) {
			t.Fatalf("run: %d %s", code, body)
		}
		if code, _ := do("GET", "/runs/999999", ""); code != 404 {
			t.Fatalf("missing run: %d", code)
		}
		if code, _ := do("GET", "/runs/abc", ""); code != 400 {
			t.Fatalf("bad run id: %d", code)
		}
	})
}
