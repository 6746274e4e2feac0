package ldap

import (
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// FuzzRawMessage: the lean reader parses whatever an LDAP server (or
// anything pretending to be one) sends; no input may make it panic or
// read out of bounds, and a message it accepts yields an entry or an
// error, never garbage lengths. Seeds: a real SearchResultEntry with a
// Chinese value, a SearchResultDone with a paging cookie, truncations.
func FuzzRawMessage(f *testing.F) {
	entry := message(7, tlv(0x64, cat(
		tlv(0x04, []byte("uid=zhangsan,ou=办公厅,dc=gov,dc=example")),
		tlv(0x30, cat(
			tlv(0x30, cat(tlv(0x04, []byte("cn")), tlv(0x31, tlv(0x04, []byte("张三"))))),
			tlv(0x30, cat(tlv(0x04, []byte("mail")), tlv(0x31, cat(tlv(0x04, []byte("a@gov.example")), tlv(0x04, []byte("b@gov.example")))))),
		)),
	)), nil)
	paging := tlv(0x30, cat(tlvInt(0x02, 500), tlv(0x04, []byte("cookie-1"))))
	done := message(7, tlv(0x65, cat(tlvInt(0x0a, 0), tlv(0x04, nil), tlv(0x04, nil))),
		tlv(0xa0, tlv(0x30, cat(tlv(0x04, []byte(goldap.ControlTypePaging)), tlv(0x04, paging)))))
	for _, m := range [][]byte{entry, done} {
		body := ber(m)
		_, inner, err := body.next()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(inner)
		f.Add(inner[:len(inner)/2])
	}
	f.Add([]byte{0x02, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseMessage(body)
		if err != nil {
			return
		}
		if e, err := m.entry(); err == nil {
			for _, a := range e.Attributes {
				if len(a.Values) != len(a.ByteValues) {
					t.Fatalf("attribute %q: %d values, %d byte values", a.Name, len(a.Values), len(a.ByteValues))
				}
			}
		}
		m.resultErr()
	})
}
