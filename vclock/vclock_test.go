package vclock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// memOffsets is an OffsetStore in memory; the conformance suite tests the
// real stores' ClockOffset.
type memOffsets struct {
	mu    sync.Mutex
	d     time.Duration
	reads int
	fail  bool
}

func (m *memOffsets) ClockOffset(context.Context) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.fail {
		return 0, errors.New("database down")
	}
	return m.d, nil
}

func (m *memOffsets) SetClockOffset(_ context.Context, d time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.d = d
	return nil
}

func TestNodesAgreeWithinRefresh(t *testing.T) {
	ctx := context.Background()
	db := &memOffsets{}
	wall := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	mk := func() *Clock {
		c, err := New(ctx, db, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.wall = func() time.Time { return wall }
		if err := c.reload(ctx); err != nil { // stamp the first read with the test's wall clock
			t.Fatal(err)
		}
		return c
	}
	a, b := mk(), mk()
	target := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := a.Set(ctx, target); err != nil {
		t.Fatal(err)
	}
	if !a.Now().Equal(target) {
		t.Fatalf("the setting node reads %v", a.Now())
	}
	if b.Now().Equal(target) {
		t.Fatal("b reread the store before its refresh interval")
	}
	wall = wall.Add(time.Second)
	if got, want := b.Now(), target.Add(time.Second); !got.Equal(want) {
		t.Fatalf("b after refresh: %v, want %v", got, want)
	}
	if err := b.Advance(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	wall = wall.Add(time.Second)
	if got, want := a.Now(), target.Add(2*time.Second+time.Hour); !got.Equal(want) {
		t.Fatalf("a after b advanced: %v, want %v", got, want)
	}
	db.fail = true
	wall = wall.Add(5 * time.Second)
	if got, want := a.Now(), target.Add(7*time.Second+time.Hour); !got.Equal(want) {
		t.Fatalf("a with the database down: %v, want the last offset (%v)", got, want)
	}
	db.fail = false
	if err := a.Reset(ctx); err != nil || !a.Now().Equal(wall) {
		t.Fatalf("reset: %v %v", a.Now(), err)
	}
}

func TestRefreshIsRateLimited(t *testing.T) {
	db := &memOffsets{}
	c, err := New(context.Background(), db, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		c.Now()
	}
	if db.reads != 1 {
		t.Fatalf("%d reads for 1000 calls within one refresh interval", db.reads)
	}
}
