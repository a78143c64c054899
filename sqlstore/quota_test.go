package sqlstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter/sqlstore"
)

// A shared bucket starts full, grants burst takes, then refuses until the
// database's clock refills it. The rate here is so low (one token in 10^6
// seconds) that no refill happens while the test runs, so the counts are
// exact without timing.
func TestTakeToken(t *testing.T) {
	for _, d := range benchDialects {
		t.Run(d.name, func(t *testing.T) {
			s := d.open(t)
			ctx := context.Background()
			for i := range 3 {
				granted, tokens, err := s.TakeToken(ctx, "a|us-east-1|MeterUsage", 1e-6, 3)
				if err != nil || !granted || int(tokens+0.5) != 2-i {
					t.Fatalf("take %d: %v %v %v", i, granted, tokens, err)
				}
			}
			if granted, tokens, err := s.TakeToken(ctx, "a|us-east-1|MeterUsage", 1e-6, 3); err != nil || granted || tokens >= 1 {
				t.Fatalf("beyond burst: %v %v %v", granted, tokens, err)
			}
			if granted, _, err := s.TakeToken(ctx, "a|us-west-2|MeterUsage", 1e-6, 3); err != nil || !granted {
				t.Fatalf("another region shares the bucket: %v %v", granted, err)
			}
			// A fast rate refills: after the empty bucket, the next take a
			// moment later at 10^9 tokens a second is granted. The
			// database's clock has millisecond steps, and two statements
			// can run within one on a fast machine (no time passes, nothing
			// refills): wait for the clock to step first.
			time.Sleep(3 * time.Millisecond)
			if granted, _, err := s.TakeToken(ctx, "a|us-east-1|MeterUsage", 1e9, 3); err != nil || !granted {
				t.Fatalf("refill: %v %v", granted, err)
			}
		})
	}
}

// Concurrent takes from several stores (nodes, each with its own pool) on
// one PostgreSQL database grant exactly burst between them.
func TestTakeTokenAcrossNodes(t *testing.T) {
	dsn := postgresDSN(t)
	ctx := context.Background()
	var nodes []*sqlstore.Store
	for range 3 {
		s, err := sqlstore.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		nodes = append(nodes, s)
	}
	var granted atomic.Int64
	var wg sync.WaitGroup
	for _, s := range nodes {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 25 {
					ok, _, err := s.TakeToken(ctx, "k", 1e-6, 40)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						granted.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	if got := granted.Load(); got != 40 {
		t.Fatalf("granted %d of 300 takes, want the burst, 40", got)
	}
}

// BenchmarkTakeToken: what a shared quota costs a granted call.
func BenchmarkTakeToken(b *testing.B) {
	for _, d := range benchDialects {
		b.Run(d.name, func(b *testing.B) {
			s := d.open(b)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.TakeToken(ctx, "bench", 1e9, 1e9); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
