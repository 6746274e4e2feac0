package ldap

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/govhub/govhub/adapters/ldap/ldaptest"
	"github.com/govhub/govhub/directory"
)

// TestMapping covers the attribute mapping a test slapd cannot show:
// status values, AD's userAccountControl, memberships by attribute.
func TestMapping(t *testing.T) {
	base := Config{URL: "ldap://127.0.0.1:1", People: Search{BaseDN: "dc=gov,dc=example"}}
	depts := &deptIndex{
		byDN:   map[string]string{normDN("ou=财政局,dc=gov,dc=example"): "d-cz", normDN("ou=教育局,dc=gov,dc=example"): "d-jy"},
		byName: map[string]string{"教育局": "d-jy"},
	}
	for _, tc := range []struct {
		name    string
		cfg     func(*Config)
		attrs   map[string][]string
		status  string
		members []string
		errText string
	}{
		{name: "default active", attrs: map[string][]string{"cn": {"张三"}}, status: directory.StatusActive, members: []string{"d-cz"}},
		{name: "status disabled", cfg: func(c *Config) {
			c.Attributes.Status, c.Attributes.DisabledValues, c.Attributes.LeftValues = "employeeType", []string{"disabled"}, []string{"left", "离职"}
		}, attrs: map[string][]string{"cn": {"张三"}, "employeeType": {"Disabled"}}, status: directory.StatusDisabled, members: []string{"d-cz"}},
		{name: "status left", cfg: func(c *Config) {
			c.Attributes.Status, c.Attributes.LeftValues = "employeeType", []string{"离职"}
		}, attrs: map[string][]string{"cn": {"张三"}, "employeeType": {"离职"}}, status: directory.StatusLeft, members: []string{"d-cz"}},
		{name: "AD account disabled", cfg: func(c *Config) { c.Attributes.UserAccountControl = true },
			attrs: map[string][]string{"cn": {"张三"}, "userAccountControl": {"514"}}, status: directory.StatusDisabled, members: []string{"d-cz"}},
		{name: "AD account enabled", cfg: func(c *Config) { c.Attributes.UserAccountControl = true },
			attrs: map[string][]string{"cn": {"张三"}, "userAccountControl": {"512"}}, status: directory.StatusActive, members: []string{"d-cz"}},
		{name: "member attribute by DN and name", cfg: func(c *Config) { c.Attributes.MemberOf = "departmentNumber" },
			attrs:  map[string][]string{"cn": {"张三"}, "departmentNumber": {"OU=教育局,DC=gov,DC=example", "教育局"}},
			status: directory.StatusActive, members: []string{"d-jy"}},
		{name: "member attribute and DN", cfg: func(c *Config) {
			c.Attributes.MemberOf = "departmentNumber"
			yes := true
			c.Attributes.MembershipFromDN = &yes
		}, attrs: map[string][]string{"cn": {"张三"}, "departmentNumber": {"教育局"}},
			status: directory.StatusActive, members: []string{"d-cz", "d-jy"}},
		{name: "member attribute naming nothing", cfg: func(c *Config) { c.Attributes.MemberOf = "departmentNumber" },
			attrs:  map[string][]string{"cn": {"张三"}, "departmentNumber": {"*)(uid=*"}},
			status: directory.StatusActive, errText: "names no known department"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			p := newPeer(t, cfg)
			attrs := map[string][]string{"entryUUID": {"0F6D1E3A-0000-4000-8000-000000000001"}}
			for k, v := range tc.attrs {
				attrs[k] = v
			}
			e, _ := p.personEntry(goldap.NewEntry("uid=zs,ou=财政局,dc=gov,dc=example", attrs), depts)
			if tc.errText != "" {
				if e.Err == nil || !strings.Contains(e.Err.Error(), tc.errText) {
					t.Fatalf("err %v, want %q", e.Err, tc.errText)
				}
				return
			}
			if e.Err != nil {
				t.Fatal(e.Err)
			}
			if e.Anchor != "0f6d1e3a-0000-4000-8000-000000000001" || e.Person.Status != tc.status {
				t.Fatalf("%+v", e.Person)
			}
			var got []string
			for _, m := range e.Person.Memberships {
				got = append(got, m.DeptAnchor)
			}
			if strings.Join(got, ",") != strings.Join(tc.members, ",") {
				t.Fatalf("memberships %v, want %v", got, tc.members)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{URL: "ldap://127.0.0.1:389", People: Search{BaseDN: "dc=x"}}
	for name, mut := range map[string]func(*Config){
		"no url":           func(c *Config) { c.URL = "" },
		"bad scheme":       func(c *Config) { c.URL = "http://x" },
		"ldaps + starttls": func(c *Config) { c.URL, c.StartTLS = "ldaps://x", true },
		"no people base":   func(c *Config) { c.People.BaseDN = "" },
		"bad dept filter":  func(c *Config) { c.Departments.Filter = "ou=x" },
		"bad sync mode":    func(c *Config) { c.ContentSync = "sometimes" },
		"secret, no dn":    func(c *Config) { c.BindSecret = "s" },
		"bad group filter": func(c *Config) { c.Groups.Filter = "(cn=x" },
		"create elsewhere": func(c *Config) { c.Writable, c.CreateBaseDN = true, "ou=people,dc=y" },
	} {
		c := ok
		mut(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
}

// TestSecretNeverLogged: a failed bind names the DN, not the secret, in
// the error and the log.
func TestSecretNeverLogged(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	var logs bytes.Buffer
	cfg := Config{URL: s.URL, BindDN: ldaptest.RootDN, BindSecret: "wrong-Secret-123", People: Search{BaseDN: ldaptest.Suffix},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	p := newPeer(t, cfg)
	_, err := p.Full(context.Background(), func(directory.Entry) error { return nil })
	if !goldap.IsErrorWithCode(errors.Unwrap(err), goldap.LDAPResultInvalidCredentials) && !strings.Contains(err.Error(), "Invalid Credentials") {
		t.Fatalf("err %v", err)
	}
	cfg.BindSecret = ldaptest.RootPW
	p = newPeer(t, cfg)
	if _, err := p.Full(context.Background(), func(directory.Entry) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(err.Error(), "wrong-Secret-123") || strings.Contains(logs.String(), "wrong-Secret-123") || strings.Contains(logs.String(), ldaptest.RootPW) {
		t.Fatalf("secret leaked: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "component=ldap") || !strings.Contains(logs.String(), "conn=") {
		t.Fatalf("log lacks component/conn: %s", logs.String())
	}
}
