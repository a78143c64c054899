package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

func testClockOffset(t *testing.T, s mpmeter.Store) {
	ctx := context.Background()
	d, err := s.ClockOffset(ctx)
	if err != nil || d != 0 {
		t.Fatalf("never set: %v %v, want 0", d, err)
	}
	for _, want := range []time.Duration{-30 * 24 * time.Hour, 5*time.Hour + 123456789, 0} {
		if err := s.SetClockOffset(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.ClockOffset(ctx)
		if err != nil || got != want {
			t.Fatalf("set %v, read %v %v", want, got, err)
		}
	}
}
