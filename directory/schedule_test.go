package directory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
)

func TestScheduler(t *testing.T) {
	each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e, clk := newTestEngine(db, Config{})
		// Start at 01:58 UTC on a known day.
		clk.mu.Lock()
		clk.t = time.Date(2027, 3, 1, 1, 58, 30, 0, time.UTC)
		clk.mu.Unlock()
		s := e.Store()
		f := newFake("ldap")
		chart(f)
		if err := s.SetSchedule(ctx, "ldap", "delta", "*/5 * * * *"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetSchedule(ctx, "ldap", "full", "0 2 * * *"); err != nil {
			t.Fatal(err)
		}
		for _, bad := range [][2]string{{"delta", "every 5 minutes"}, {"weekly", "@daily"}, {"delta", "* * * * * *"}} {
			if err := s.SetSchedule(ctx, "ldap", bad[0], bad[1]); !errors.Is(err, ErrBadSchedule) {
				t.Errorf("SetSchedule(%q, %q) = %v", bad[0], bad[1], err)
			}
		}
		list, _ := s.Schedules(ctx)
		if len(list) != 2 || list[0].Kind != "delta" || !list[0].Next.Equal(time.Date(2027, 3, 1, 2, 0, 0, 0, time.UTC)) ||
			!list[1].Next.Equal(time.Date(2027, 3, 1, 2, 0, 0, 0, time.UTC)) {
			t.Fatalf("list: %+v", list)
		}
		nodeA := NewScheduler(e, map[string]Peer{"ldap": f})
		e2 := NewEngine(NewStore(db, clk.Now), Config{Now: clk.Now, Holder: "node-b"})
		nodeB := NewScheduler(e2, map[string]Peer{"ldap": f})
		tick := func(sch *Scheduler) []TickResult {
			t.Helper()
			res, err := sch.Tick(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		if res := tick(nodeA); len(res) != 0 {
			t.Fatalf("ran before its time: %+v", res)
		}
		clk.Add(90 * time.Second) // 02:00:00: both fire; full first
		res := tick(nodeA)
		if len(res) != 2 || res[0].Kind != "full" || res[0].Err != nil || res[0].Report.Created != 6 || res[1].Kind != "delta" || res[1].Err != nil {
			t.Fatalf("02:00: %+v", res)
		}
		if res := tick(nodeB); len(res) != 0 {
			t.Fatalf("second node ran a claimed slot: %+v", res)
		}
		clk.Add(4 * time.Minute)
		if res := tick(nodeA); len(res) != 0 {
			t.Fatalf("02:04: %+v", res)
		}
		clk.Add(time.Minute) // 02:05, node B gets it
		if res := tick(nodeB); len(res) != 1 || res[0].Kind != "delta" || res[0].Err != nil {
			t.Fatalf("02:05 on node B: %+v", res)
		}
		// Paused: nothing runs; resumed: missed slots are not caught up.
		if err := s.PauseSchedule(ctx, "ldap", "delta", true); err != nil {
			t.Fatal(err)
		}
		clk.Add(20 * time.Minute)
		if res := tick(nodeA); len(res) != 0 {
			t.Fatalf("paused ran: %+v", res)
		}
		if err := s.PauseSchedule(ctx, "ldap", "delta", false); err != nil {
			t.Fatal(err)
		}
		if res := tick(nodeA); len(res) != 0 {
			t.Fatalf("resume caught up: %+v", res)
		}
		// Down for an hour: one run, not twelve.
		clk.Add(time.Hour)
		if res := tick(nodeA); len(res) != 1 || !res[0].Slot.Equal(time.Date(2027, 3, 1, 3, 25, 0, 0, time.UTC)) {
			t.Fatalf("after downtime: %+v", res)
		}
		if err := s.PauseSchedule(ctx, "nope", "delta", true); !errors.Is(err, ErrNotFound) {
			t.Fatalf("pause unknown: %v", err)
		}
	})
}
