package volume

import (
	"context"
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/govhub/govhub/mailcore"
)

// benchPut measures Put of distinct 10 KiB bodies, each fsynced before it
// returns, from the given number of goroutines.
func benchPut(b *testing.B, goroutines int) {
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var n atomic.Uint64
	body := func() []byte {
		d := gen("bench", 10<<10)
		binary.LittleEndian.PutUint64(d, n.Add(1))
		return d
	}
	base := s.fsyncs.Load()
	b.SetBytes(10 << 10)
	b.ResetTimer()
	if goroutines == 1 {
		for b.Loop() {
			d := body()
			if err := s.Put(context.Background(), mailcore.BlobIDOf(d), d); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.SetParallelism(max(1, goroutines/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				d := body()
				if err := s.Put(context.Background(), mailcore.BlobIDOf(d), d); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.StopTimer()
	b.ReportMetric(float64(s.fsyncs.Load()-base)/float64(n.Load()), "fsyncs/put")
}

// BenchmarkPutSerial is the baseline: one writer, one fsync per Put.
func BenchmarkPutSerial(b *testing.B) { benchPut(b, 1) }

// BenchmarkPutParallel: 20 writers share fsyncs through group commit.
func BenchmarkPutParallel(b *testing.B) { benchPut(b, 20) }
