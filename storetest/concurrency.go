package storetest

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// parallel runs fn(0) .. fn(n-1) in n goroutines released at once.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// outcomes collects one goroutine's RecordUsage result per slot.
type outcomes struct {
	out [][]mpmeter.MeteringOutcome
	err []error
}

func newOutcomes(n int) *outcomes {
	return &outcomes{out: make([][]mpmeter.MeteringOutcome, n), err: make([]error, n)}
}

// wantOneWinner checks, for outcome position pos of every goroutine's call,
// that exactly one was Created and that all name the same record; it returns
// that record's id.
func (o *outcomes) wantOneWinner(t *testing.T, what string, pos int) string {
	t.Helper()
	created, id := 0, ""
	for g, out := range o.out {
		if o.err[g] != nil {
			t.Fatalf("%s: goroutine %d: %v", what, g, o.err[g])
		}
		if len(out) <= pos {
			t.Fatalf("%s: goroutine %d: %d outcomes", what, g, len(out))
		}
		oc := out[pos]
		if oc.Created {
			created++
		}
		if id == "" {
			id = oc.Record.MeteringRecordID
		} else if oc.Record.MeteringRecordID != id {
			t.Errorf("%s: goroutine %d got record %s, another got %s", what, g, oc.Record.MeteringRecordID, id)
		}
	}
	if created != 1 {
		t.Errorf("%s: %d outcomes have Created, want exactly 1", what, created)
	}
	return id
}

// rounds is how often each concurrency test repeats its race, with new
// keys: the first round may be serialized by connections being opened (a
// network database's pool starts cold), later ones race for real.
const rounds = 4

// 32 goroutines make the very same call (same records, ids included):
// each record is stored once.
func testConcurrentIdentical(t *testing.T, s mpmeter.Store) {
	seed(t, s)
	const n = 32
	var all []mpmeter.MeteringRecord
	for round := range rounds {
		recs := []mpmeter.MeteringRecord{
			rec(name("rec-%d-1", round), name("key-%d-1", round)),
			rec(name("rec-%d-2", round), name("key-%d-2", round)),
			rec(name("rec-%d-3", round), name("key-%d-3", round)),
		}
		o := newOutcomes(n)
		parallel(n, func(g int) {
			o.out[g], o.err[g] = s.RecordUsage(t.Context(), recs, nil)
		})
		for i, r := range recs {
			if id := o.wantOneWinner(t, name("round %d record %d", round, i), i); id != r.MeteringRecordID {
				t.Errorf("round %d record %d: outcomes name %s, want %s", round, i, id, r.MeteringRecordID)
			}
		}
		all = append(all, recs...)
	}
	wantUsage(t, s, mpmeter.UsageFilter{}, all...)
}

// 32 goroutines record the same usage as the service does on retries: same
// slot and fingerprint, a new record id each. One record is stored and every
// call is answered with it.
func testConcurrentRetries(t *testing.T, s mpmeter.Store) {
	seed(t, s)
	const n = 32
	var winners []string
	for round := range rounds {
		o := newOutcomes(n)
		parallel(n, func(g int) {
			r := rec(name("rec-%d-%02d", round, g), name("key-%d", round))
			r.Fingerprint = "same"
			o.out[g], o.err[g] = s.RecordUsage(t.Context(), []mpmeter.MeteringRecord{r}, nil)
		})
		winners = append(winners, o.wantOneWinner(t, name("round %d", round), 0))
	}
	all, err := s.Usage(t.Context(), mpmeter.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	got := ids(all)
	slices.Sort(winners)
	if want := "[" + strings.Join(winners, " ") + "]"; got != want {
		t.Errorf("stored %s, want %s", got, want)
	}
}

// Batches that share slots, each listing them in another order: every slot
// is stored once, no call fails (a store that deadlocks on the order must
// resolve it, not report it).
func testConcurrentOverlappingBatches(t *testing.T, s mpmeter.Store) {
	seed(t, s)
	const n, keys = 8, 10
	for round := range rounds {
		o := newOutcomes(n)
		// order[g] is goroutine g's order of the keys.
		order := make([][]int, n)
		for g := range order {
			order[g] = rand.New(rand.NewPCG(uint64(g), uint64(round))).Perm(keys)
		}
		parallel(n, func(g int) {
			recs := make([]mpmeter.MeteringRecord, keys)
			for i, k := range order[g] {
				recs[i] = rec(name("rec-%d-g%d-k%d", round, g, k), name("key-%d-%d", round, k))
			}
			o.out[g], o.err[g] = s.RecordUsage(t.Context(), recs, nil)
		})
		// Regroup outcomes by key, so wantOneWinner sees position k as key k.
		byKey := newOutcomes(n)
		for g := range n {
			byKey.err[g] = o.err[g]
			if o.err[g] != nil {
				continue
			}
			byKey.out[g] = make([]mpmeter.MeteringOutcome, keys)
			for i, k := range order[g] {
				byKey.out[g][k] = o.out[g][i]
			}
		}
		for k := range keys {
			byKey.wantOneWinner(t, name("round %d key %d", round, k), k)
		}
	}
	if c := count(t, s); c != rounds*keys {
		t.Errorf("%d records stored, want %d", c, rounds*keys)
	}
}

// 16 goroutines, each with its own idempotency token, record the same slot:
// one record, and every token answers with it afterwards.
func testConcurrentTokensSameDedupKey(t *testing.T, s mpmeter.Store) {
	seed(t, s)
	const n = 16
	for round := range rounds {
		tok := func(g int) *mpmeter.IdempotencyToken {
			return &mpmeter.IdempotencyToken{Scope: "i-0123", Token: name("tok-%d-%02d", round, g), Fingerprint: "f", ExpiresAt: t0.Add(time.Hour)}
		}
		o := newOutcomes(n)
		parallel(n, func(g int) {
			o.out[g], o.err[g] = s.RecordUsage(t.Context(), []mpmeter.MeteringRecord{rec(name("rec-%d-%02d", round, g), name("key-%d", round))}, tok(g))
		})
		id := o.wantOneWinner(t, name("round %d", round), 0)
		for g := range n {
			oc := record1(t, t.Context(), s, rec(name("rec-replay-%d-%02d", round, g), name("key-replay-%d-%02d", round, g)), tok(g))
			if oc.Created || oc.Record.MeteringRecordID != id {
				t.Errorf("round %d: token %d replayed: Created %v, record %s; want false, %s", round, g, oc.Created, oc.Record.MeteringRecordID, id)
			}
		}
	}
	if c := count(t, s); c != rounds {
		t.Errorf("%d records stored, want %d", c, rounds)
	}
}

// 16 goroutines with the same token and new records in distinct slots (so
// only the token can stop them): one record. Then the same with half of them
// sending other parameters: those conflict.
func testConcurrentSameToken(t *testing.T, s mpmeter.Store) {
	seed(t, s)
	const n = 16
	stored := 0
	for round := range rounds {
		tok := mpmeter.IdempotencyToken{Scope: "i-0123", Token: name("tok-%d", round), Fingerprint: "f", ExpiresAt: t0.Add(time.Hour)}
		o := newOutcomes(n)
		parallel(n, func(g int) {
			tk := tok
			o.out[g], o.err[g] = s.RecordUsage(t.Context(), []mpmeter.MeteringRecord{rec(name("rec-%d-%02d", round, g), name("key-%d-%02d", round, g))}, &tk)
		})
		o.wantOneWinner(t, name("round %d same token", round), 0)
		stored++

		tok.Token = name("tok-%d-conflict", round)
		o = newOutcomes(n)
		parallel(n, func(g int) {
			tk := tok
			tk.Fingerprint = name("f%d", g%2)
			o.out[g], o.err[g] = s.RecordUsage(t.Context(), []mpmeter.MeteringRecord{rec(name("rec-%d-c%02d", round, g), "")}, &tk)
		})
		created, conflicts, winner := 0, 0, ""
		for g := range n {
			switch {
			case errors.Is(o.err[g], mpmeter.ErrIdempotencyConflict):
				conflicts++
			case o.err[g] != nil:
				t.Fatalf("round %d: goroutine %d: %v", round, g, o.err[g])
			case o.out[g][0].Created:
				created++
				winner = o.out[g][0].Record.MeteringRecordID
			}
		}
		if created != 1 || conflicts != n/2 {
			t.Fatalf("round %d: %d created and %d conflicts, want 1 and %d", round, created, conflicts, n/2)
		}
		for g := range n {
			if o.err[g] == nil && o.out[g][0].Record.MeteringRecordID != winner {
				t.Errorf("round %d: goroutine %d got record %s, want %s", round, g, o.out[g][0].Record.MeteringRecordID, winner)
			}
		}
		stored++
	}
	if c := count(t, s); c != stored {
		t.Errorf("%d records stored, want %d", c, stored)
	}
}
