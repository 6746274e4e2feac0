package search_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govhub/govhub/internal/sqldb"
	"github.com/govhub/govhub/internal/testdb"
	"github.com/govhub/govhub/mailcore"
	"github.com/govhub/govhub/mailcore/search"
)

// benchMessages is the INBOX size of issue 3's target (SEARCH TEXT with a
// Chinese or Latin word <= 100 ms on a 20,000-message INBOX).
const benchMessages = 20000

var (
	zhWords = strings.Fields("会议 文件 工作 部门 领导 安排 材料 报告 同志 单位 落实 情况 要求 制度 检查 服务 项目 资金 培训 系统 安全 管理 年度 计划 总结 意见 方案 政策 规定 标准")
	enWords = strings.Fields("meeting document work department schedule report office review policy project training system safety plan summary opinion standard annual notice")
)

// benchBody is a distinct body of a few hundred bytes of mixed Chinese and
// Latin text. 预算 and "budget" appear in about 5% of bodies, 通知 in about
// half.
func benchBody(i int, r *rand.Rand) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: =?utf-8?B?5Yqe5YWs5Y6F?= <office%d@example.gov.cn>\r\nTo: staff@example.gov.cn\r\n", i%37)
	fmt.Fprintf(&b, "Subject: =?utf-8?B?5bel5L2c566A5oql?= %d\r\nMessage-ID: <bench.%d@example.gov.cn>\r\n", i, i)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	for line := 0; line < 4; line++ {
		for w := 0; w < 8; w++ {
			b.WriteString(zhWords[r.IntN(len(zhWords))])
		}
		b.WriteString("，")
		for w := 0; w < 4; w++ {
			b.WriteString(enWords[r.IntN(len(enWords))])
			b.WriteByte(' ')
		}
		b.WriteString("\r\n")
	}
	if i%20 == 0 {
		b.WriteString("关于预算调整 budget revision\r\n")
	}
	if i%2 == 0 {
		b.WriteString("特此通知。\r\n")
	}
	fmt.Fprintf(&b, "编号 %d-%d\r\n", i, r.IntN(1_000_000))
	return []byte(b.String())
}

// BenchmarkSearch delivers a 20,000-message INBOX of distinct bodies, builds
// the index (reporting the build time per message), then measures
// MatchUIDs for a Chinese and a Latin word against the reference of a full
// scan of the same bodies (read from the blob store, bytes.Contains).
//
//	go test -run '^$' -bench Search -benchtime 20x ./mailcore/search/
func BenchmarkSearch(b *testing.B) {
	for _, be := range testdb.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			ctx := context.Background()
			store := openTestStore(b, be.URL(b), mailcore.Options{}, nil)
			if _, err := store.CreateAccount(ctx, mailcore.NewAccount{Address: "staff@example.gov.cn"}); err != nil {
				b.Fatal(err)
			}
			_, inbox, err := store.ResolveRecipient(ctx, "staff@example.gov.cn")
			if err != nil {
				b.Fatal(err)
			}
			bodies := make([][]byte, benchMessages)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range bodies {
				bodies[i] = benchBody(i, r)
			}
			deliverAll(b, store, inbox, bodies)

			ix, err := search.New(store, search.Config{})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			st, err := ix.CatchUp(ctx)
			if err != nil {
				b.Fatal(err)
			}
			build := time.Since(start)
			if store.DB().Dialect == sqldb.Postgres {
				// Steady state: autovacuum analyzes tables that grew this much;
				// with the statistics of an empty table the planner probes
				// the index once per mailbox row instead (measured ~60 ms).
				if _, err := store.DB().X.ExecContext(ctx, `ANALYZE`); err != nil {
					b.Fatal(err)
				}
			}
			if st.Indexed != benchMessages {
				b.Fatalf("indexed %d bodies, want %d", st.Indexed, benchMessages)
			}
			b.Logf("%s: index build %v for %d bodies = %v per body", be.Name, build, benchMessages, build/benchMessages)
			b.Run("build", func(b *testing.B) {
				b.ReportMetric(float64(build.Nanoseconds())/benchMessages, "ns/body")
			})

			var shas []mailcore.BlobID
			for after := uint32(0); ; {
				ms, err := store.Messages(ctx, inbox.MailboxID, after, 5000)
				if err != nil {
					b.Fatal(err)
				}
				if len(ms) == 0 {
					break
				}
				for _, m := range ms {
					shas = append(shas, m.BlobID())
				}
				after = ms[len(ms)-1].UID
			}
			scan := func(term string) int {
				n := 0
				for _, id := range shas {
					raw, err := store.Blobs().Get(ctx, id)
					if err != nil {
						b.Fatal(err)
					}
					if bytes.Contains(raw, []byte(term)) {
						n++
					}
				}
				return n
			}
			terms := []string{"预算", "budget", "通知"}
			want := map[string]int{}
			for _, term := range terms {
				want[term] = scan(term)
			}
			for _, term := range terms {
				b.Run("index/"+term, func(b *testing.B) {
					var n int
					for b.Loop() {
						uids, err := ix.MatchUIDs(ctx, inbox.MailboxID, "TEXT", term)
						if err != nil {
							b.Fatal(err)
						}
						n = len(uids)
					}
					if n != want[term] {
						b.Errorf("index found %d, scan %d", n, want[term])
					}
					b.ReportMetric(float64(n), "matches")
				})
			}
			for _, term := range terms {
				b.Run("scan/"+term, func(b *testing.B) {
					var n int
					for b.Loop() {
						n = scan(term)
					}
					b.ReportMetric(float64(n), "matches")
				})
			}
		})
	}
}

// deliverAll delivers every body to rcpt from several goroutines, so the
// store's group commit batches them as it would under SMTP load.
func deliverAll(b testing.TB, store *mailcore.Store, rcpt mailcore.Recipient, bodies [][]byte) {
	next := make(chan []byte)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for raw := range next {
				res, err := store.Deliver(context.Background(), raw, []mailcore.Recipient{rcpt}, mailcore.DeliverOptions{})
				if err == nil && res[0].Err != nil {
					err = res[0].Err
				}
				if err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for _, raw := range bodies {
		next <- raw
	}
	close(next)
	wg.Wait()
}
