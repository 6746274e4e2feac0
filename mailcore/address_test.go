package mailcore

import (
	"reflect"
	"testing"
	"time"

	"github.com/govhub/govhub/mailcore/envelope"
)

func TestAddressRoundTrip(t *testing.T) {
	for _, tc := range [][]envelope.Address{
		nil,
		{{Addr: "a@gov.example"}},
		{{Name: "张三", Addr: "zhangsan@gov.example"}, {Addr: "b@gov.example"}},
		{{Name: `Li, "Si"`, Addr: "lisi@gov.example"}, {Name: `back\slash <x>`, Addr: "c@gov.example"}},
		{{Name: " padded ", Addr: "d@gov.example"}, {Name: "办公厅 秘书处", Addr: "mishu@gov.example"}},
	} {
		s := FormatAddresses(tc)
		got := ParseAddresses(s)
		if !reflect.DeepEqual(got, tc) && !(len(got) == 0 && len(tc) == 0) {
			t.Errorf("round trip %+v -> %q -> %+v", tc, s, got)
		}
	}
	if s := FormatAddresses([]envelope.Address{{Name: "张三", Addr: "z@gov.example"}, {Addr: "b@gov.example"}}); s != "张三 <z@gov.example>, b@gov.example" {
		t.Errorf("compact form = %q", s)
	}
}

func TestAcceptsMailAt(t *testing.T) {
	left := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := left.Unix()
	grace := 30 * 24 * time.Hour
	for _, tc := range []struct {
		name string
		a    Account
		now  time.Time
		want bool
	}{
		{"active", Account{Status: StatusActive}, left, true},
		{"disabled still receives", Account{Status: StatusDisabled}, left, true},
		{"left, inside grace", Account{Status: StatusLeft, LeftAt: &at}, left.Add(29 * 24 * time.Hour), true},
		{"left, after grace", Account{Status: StatusLeft, LeftAt: &at}, left.Add(31 * 24 * time.Hour), false},
		{"left, date unknown", Account{Status: StatusLeft}, left, false},
	} {
		if got := tc.a.AcceptsMailAt(tc.now, grace); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
