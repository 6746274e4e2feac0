package mailcore_test

import (
	"context"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/storetest"
)

// TestStore runs the conformance suite on every metadata backend with the
// local volume blob store.
func TestStore(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, opts mailcore.Options) *mailcore.Store {
				return storetest.OpenStore(t, b.URL(t), opts)
			})
		})
	}
}

// TestPruneEvents: outbox events older than the retention go, newer ones
// stay, on every backend.
func TestPruneEvents(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			s := storetest.OpenStore(t, b.URL(t), mailcore.Options{Now: func() time.Time { return clock() }})
			ctx := context.Background()
			acct, err := s.CreateAccount(ctx, mailcore.NewAccount{Address: "a@gov.example"})
			if err != nil {
				t.Fatal(err)
			}
			inbox, _ := s.MailboxByName(ctx, acct.ID, "INBOX")
			deliver := func(subject string) {
				raw := "Subject: " + subject + "\r\n\r\nx\r\n"
				if _, err := s.Deliver(ctx, []byte(raw), []mailcore.Recipient{{AccountID: acct.ID, MailboxID: inbox.ID}}, mailcore.DeliverOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			deliver("old 1")
			deliver("old 2")
			if _, err := s.StoreFlags(ctx, inbox.ID, []uint32{1}, mailcore.FlagsAdd, mailcore.FlagSeen); err != nil {
				t.Fatal(err)
			}
			now = now.Add(8 * 24 * time.Hour)
			deliver("new")
			n, err := s.PruneEvents(ctx, 7*24*time.Hour)
			if err != nil || n != 3 {
				t.Fatalf("pruned %d, %v; want the 3 old events", n, err)
			}
			evs, _ := s.Events(ctx, 0, 100)
			if len(evs) != 1 || evs[0].Kind != mailcore.EventDelivered || evs[0].UID != 3 {
				t.Fatalf("left %+v", evs)
			}
			if n, _ := s.PruneEvents(ctx, 7*24*time.Hour); n != 0 {
				t.Fatalf("second prune removed %d", n)
			}
		})
	}
}
