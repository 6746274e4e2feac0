package mailcore_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/volume"
)

// The crash tests run this test binary as a child (GOVHUB_CRASH_CHILD set)
// that delivers (and, in the compaction variant, expunges, purges and
// compacts) in a loop, printing a line for every operation that returned.
// The parent SIGKILLs it at random moments, reopens the store the way
// `govhub serve` does (volume recovery, then Recover with the orphan
// sweep) and checks that every acknowledged message reads back
// byte-identical and that a deep fsck is clean.

func TestMain(m *testing.M) {
	if mode := os.Getenv("GOVHUB_CRASH_CHILD"); mode != "" {
		if err := crashChild(mode, os.Getenv("GOVHUB_CRASH_DIR"), os.Getenv("GOVHUB_CRASH_START")); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashMessage is deterministic in i so the parent can regenerate it.
func crashMessage(i int) []byte {
	body := strings.Repeat(fmt.Sprintf("第%d封 crash-test line of text\r\n", i), 200+i%300)
	return []byte(fmt.Sprintf("From: a@gov.example\r\nTo: b@gov.example\r\nSubject: =?UTF-8?B?5rWL6K+V?= %d\r\nMessage-ID: <crash%d@gov.example>\r\n\r\n%s", i, i, body))
}

type crashEnv struct {
	db    *sqldb.DB
	vs    *volume.Store
	store *mailcore.Store
}

func openCrashEnv(dir string, recover bool) (*crashEnv, error) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(dir, "govhub.db"), sqldb.Options{})
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx, nil); err != nil {
		return nil, err
	}
	vs, err := volume.Open(volume.Options{Dir: filepath.Join(dir, "volumes"), VolumeSize: 1 << 20})
	if err != nil {
		return nil, err
	}
	s, err := mailcore.Open(mailcore.Options{DB: db, Blobs: vs})
	if err != nil {
		return nil, err
	}
	if recover {
		if _, err := s.Recover(ctx, true); err != nil {
			return nil, err
		}
	}
	return &crashEnv{db, vs, s}, nil
}

func (e *crashEnv) close() {
	e.store.Close()
	e.vs.Close()
	e.db.Close()
}

func crashChild(mode, dir, startS string) error {
	ctx := context.Background()
	start, _ := strconv.Atoi(startS)
	e, err := openCrashEnv(dir, true)
	if err != nil {
		return err
	}
	_, r, err := e.store.ResolveRecipient(ctx, "crash@gov.example")
	if err != nil {
		return err
	}
	out := os.Stdout
	for i := start; ; i++ {
		res, err := e.store.Deliver(ctx, crashMessage(i), []mailcore.Recipient{r}, mailcore.DeliverOptions{})
		if err != nil {
			return err
		}
		if res[0].Err != nil {
			return res[0].Err
		}
		fmt.Fprintf(out, "ACK %d %d\n", i, res[0].UID)
		if mode == "compact" && i%5 == 4 {
			// Expunge three of the last five, then purge and compact.
			uids := []uint32{res[0].UID - 4, res[0].UID - 2, res[0].UID}
			// Announced before the call: once it starts, the parent may no
			// longer count on these messages being there.
			fmt.Fprintf(out, "EXPUNGE %d %d %d\n", uids[0], uids[1], uids[2])
			gone, err := e.store.Expunge(ctx, r.MailboxID, uids)
			if err != nil {
				return err
			}
			for _, u := range gone {
				fmt.Fprintf(out, "DEL %d\n", u)
			}
			_, st, err := e.store.Compact(ctx, 0, mailcore.CompactOptions{DeadFraction: 0.2})
			if err != nil {
				return err
			}
			if st.VolumesRewritten > 0 {
				fmt.Fprintf(out, "COMPACTED %d\n", st.VolumesRewritten)
			}
		}
	}
}

func TestCrashDeliver(t *testing.T) { runCrash(t, "deliver", 20) }
func TestCrashCompact(t *testing.T) { runCrash(t, "compact", 20) }

func runCrash(t *testing.T, mode string, kills int) {
	dir := t.TempDir()
	ctx := context.Background()
	e, err := openCrashEnv(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CreateAccount(ctx, mailcore.NewAccount{Address: "crash@gov.example", QuotaBytes: -1}); err != nil {
		t.Fatal(err)
	}
	e.close()
	acked := map[uint32]int{} // uid -> message index
	compactions := 0
	next := 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for k := 0; k < kills; k++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "GOVHUB_CRASH_CHILD="+mode, "GOVHUB_CRASH_DIR="+dir, "GOVHUB_CRASH_START="+strconv.Itoa(next))
		stdout, _ := cmd.StdoutPipe()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Let it make progress, then kill it at a random moment.
		wait := time.Duration(150+rng.IntN(500)) * time.Millisecond
		timer := time.After(wait)
		got := 0
	collect:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break collect
				}
				got++
				apply(t, l, acked, &next, &compactions)
			case <-timer:
				cmd.Process.Signal(syscall.SIGKILL)
				timer = nil
			}
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("kill %d: child ended on its own (%v): %s", k, err, stderr.String())
		}
		// Reopen as serve does and check every acknowledged message.
		e, err := openCrashEnv(dir, true)
		if err != nil {
			t.Fatalf("kill %d: reopen: %v", k, err)
		}
		_, r, err := e.store.ResolveRecipient(ctx, "crash@gov.example")
		if err != nil {
			t.Fatal(err)
		}
		for uid, i := range acked {
			raw, err := e.store.ReadMessage(ctx, r.MailboxID, uid)
			if err != nil {
				t.Fatalf("kill %d: acknowledged message %d (uid %d) lost: %v", k, i, uid, err)
			}
			if !bytes.Equal(raw, crashMessage(i)) {
				t.Fatalf("kill %d: message %d (uid %d) differs after crash", k, i, uid)
			}
		}
		rep, err := e.store.Fsck(ctx, mailcore.FsckOptions{Deep: true})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Clean() {
			t.Fatalf("kill %d: fsck after recovery: %+v", k, rep.Problems)
		}
		t.Logf("kill %d after %v: %d lines, %d acknowledged live, recovery %+v", k, wait, got, len(acked), e.vs.Recovery())
		e.close()
	}
	if len(acked) == 0 {
		t.Fatal("no delivery was ever acknowledged: the test proved nothing")
	}
	if mode == "compact" && compactions == 0 {
		t.Fatal("no volume was ever rewritten: the compaction crash test proved nothing")
	}
	t.Logf("%d volumes rewritten across the runs", compactions)
}

func apply(t *testing.T, l string, acked map[uint32]int, next *int, compactions *int) {
	f := strings.Fields(l)
	switch {
	case len(f) == 2 && f[0] == "COMPACTED":
		n, _ := strconv.Atoi(f[1])
		*compactions += n
	case len(f) == 3 && f[0] == "ACK":
		i, _ := strconv.Atoi(f[1])
		uid, _ := strconv.Atoi(f[2])
		acked[uint32(uid)] = i
		*next = i + 1
	case len(f) == 4 && f[0] == "EXPUNGE":
		for _, u := range f[1:] {
			uid, _ := strconv.Atoi(u)
			delete(acked, uint32(uid))
		}
	case len(f) == 2 && f[0] == "DEL":
		uid, _ := strconv.Atoi(f[1])
		if _, still := acked[uint32(uid)]; still {
			t.Fatalf("expunged uid %d was not announced", uid)
		}
	default:
		t.Fatalf("child said %q", l)
	}
}
