package main

import (
	"context"
	"testing"
	"time"

	"github.com/govhub/govhub/directory"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/storetest"
)

func TestMailProvisioner(t *testing.T) {
	ctx := context.Background()
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st := storetest.OpenStore(t, b.URL(t), mailcore.Options{})
			p := mailProvisioner{store: st}
			spec := directory.AccountSpec{Address: "Zhao.Liu@gov.example", DisplayName: "赵六", QuotaBytes: 2 << 30, Status: directory.StatusActive}
			for i := 0; i < 2; i++ { // idempotent
				if err := p.EnsureAccount(ctx, spec); err != nil {
					t.Fatal(err)
				}
			}
			a, err := st.AccountByAddress(ctx, "zhao.liu@gov.example")
			if err != nil || a.DisplayName != "赵六" || a.QuotaBytes != 2<<30 || a.HasPassword() || a.Status != mailcore.StatusActive {
				t.Fatalf("account = %+v, %v", a, err)
			}
			if mbs, _ := st.Mailboxes(ctx, a.ID); len(mbs) != len(mailcore.DefaultMailboxes) {
				t.Fatalf("mailboxes = %d", len(mbs))
			}
			spec.Status, spec.DisplayName = directory.StatusLeft, "赵六（已离职）"
			spec.LeftAt = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
			if err := p.EnsureAccount(ctx, spec); err != nil {
				t.Fatal(err)
			}
			a, _ = st.AccountByAddress(ctx, "zhao.liu@gov.example")
			if a.Status != mailcore.StatusLeft || a.DisplayName != "赵六（已离职）" || a.LeftAt == nil || *a.LeftAt != spec.LeftAt.Unix() {
				t.Fatalf("left account = %+v", a)
			}
			// Someone who left before ever getting an account gets none.
			if err := p.EnsureAccount(ctx, directory.AccountSpec{Address: "gone@gov.example", Status: directory.StatusLeft}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.AccountByAddress(ctx, "gone@gov.example"); err == nil {
				t.Fatal("account created for a person who has left")
			}
			if err := p.EnsureAccount(ctx, directory.AccountSpec{Address: "x@gov.example", Status: "retired"}); err == nil {
				t.Fatal("unknown status accepted")
			}
			// The batch path: new ones created in bulk, an existing one
			// updated, a left one without an account skipped, a bad
			// address reported in its place.
			errs := p.EnsureAccounts(ctx, []directory.AccountSpec{
				{Address: "b1@gov.example", DisplayName: "一", Status: directory.StatusActive},
				{Address: "zhao.liu@gov.example", DisplayName: "赵六", Status: directory.StatusActive},
				{Address: "not an address", Status: directory.StatusActive},
				{Address: "b2@gov.example", DisplayName: "二", Status: directory.StatusDisabled},
				{Address: "b3@gov.example", Status: directory.StatusLeft},
			})
			if len(errs) != 5 || errs[0] != nil || errs[1] != nil || errs[2] == nil || errs[3] != nil || errs[4] != nil {
				t.Fatalf("batch errors = %v", errs)
			}
			if a, err := st.AccountByAddress(ctx, "b2@gov.example"); err != nil || a.Status != mailcore.StatusDisabled || a.DisplayName != "二" {
				t.Fatalf("b2 = %+v %v", a, err)
			}
			if a, _ := st.AccountByAddress(ctx, "zhao.liu@gov.example"); a.Status != mailcore.StatusActive || a.LeftAt != nil {
				t.Fatalf("existing account not brought back: %+v", a)
			}
			if _, err := st.AccountByAddress(ctx, "b3@gov.example"); err == nil {
				t.Fatal("account created for someone who left")
			}
		})
	}
}
