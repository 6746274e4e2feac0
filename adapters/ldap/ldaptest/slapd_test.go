package ldaptest

import (
	"strings"
	"testing"
)

// TestStart: the harness brings up slapd with the chart, Chinese names
// intact as ldapsearch (another client) sees them.
func TestStart(t *testing.T) {
	s := Start(t, Options{LDIF: ChartLDIF(0)})
	out := s.LDAPSearch(t, Suffix, "(uid=zhangsan)", "cn", "entryUUID")
	if !strings.Contains(out, "cn:: ") && !strings.Contains(out, "张三") {
		t.Fatalf("ldapsearch:\n%s", out)
	}
	if !strings.Contains(out, "entryUUID: ") {
		t.Fatalf("no entryUUID:\n%s", out)
	}
}
