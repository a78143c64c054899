package service

import (
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

func TestCheckTimestamp(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// checkTimestamp reads neither the store nor the clock.
	newService := func(cfg Config) *Service {
		t.Helper()
		cfg.Store, cfg.Clock = struct{ Store }{}, mpmeter.WallClock{}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	six := newService(Config{})
	day := newService(Config{UsageWindow: 24 * time.Hour})
	strict := newService(Config{FutureTolerance: NoFutureTolerance})
	lastDay := "2026-01-31T10:00:00Z" // 20 hours before 06:00 on February 1st
	for _, c := range []struct {
		name    string
		svc     *Service
		now, ts string
		ok      bool
	}{
		{"6h: 5h59m59s old", six, "2026-03-10T12:00:00Z", "2026-03-10T06:00:01Z", true},
		{"6h: exactly 6h old", six, "2026-03-10T12:00:00Z", "2026-03-10T06:00:00Z", false},
		{"6h: 7h old", six, "2026-03-10T12:00:00Z", "2026-03-10T05:00:00Z", false},
		{"24h: 23h59m59s old", day, "2026-03-10T12:00:00Z", "2026-03-09T12:00:01Z", true},
		{"24h: exactly 24h old", day, "2026-03-10T12:00:00Z", "2026-03-09T12:00:00Z", false},
		// The month-end cut-off: last month's usage until 06:00 UTC on the 1st.
		{"24h: last month's record at 05:59:59 on the 1st", day, "2026-02-01T05:59:59Z", lastDay, true},
		{"24h: last month's record at 06:00:00 on the 1st", day, "2026-02-01T06:00:00Z", lastDay, false},
		{"24h: last second of last month at 06:00:00", day, "2026-02-01T06:00:00Z", "2026-01-31T23:59:59Z", false},
		{"24h: this month's record at 06:00:00 on the 1st", day, "2026-02-01T06:00:00Z", "2026-02-01T00:00:00Z", true},
		{"24h: December's record at 05:59:59 on January 1st", day, "2027-01-01T05:59:59Z", "2026-12-31T08:00:00Z", true},
		{"24h: December's record at 06:00:00 on January 1st", day, "2027-01-01T06:00:00Z", "2026-12-31T08:00:00Z", false},
		{"6h: last month's record at 05:59:59, 6h01m old", six, "2026-02-01T05:59:59Z", "2026-01-31T23:59:00Z", false},
		{"6h: this month's record at 05:59:59 on the 1st", six, "2026-02-01T05:59:59Z", "2026-02-01T00:00:59Z", true},
		// The future: 15 minutes by default.
		{"14m59s ahead", six, "2026-03-10T12:00:00Z", "2026-03-10T12:14:59Z", true},
		{"15m ahead", six, "2026-03-10T12:00:00Z", "2026-03-10T12:15:00Z", true},
		{"15m01s ahead", six, "2026-03-10T12:00:00Z", "2026-03-10T12:15:01Z", false},
		{"none: now", strict, "2026-03-10T12:00:00Z", "2026-03-10T12:00:00Z", true},
		{"none: 1s ahead", strict, "2026-03-10T12:00:00Z", "2026-03-10T12:00:01Z", false},
	} {
		err := c.svc.checkTimestamp(at(c.now), at(c.ts))
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && mpmeter.CodeOf(err) != mpmeter.CodeTimestampOutOfBounds {
			t.Errorf("%s: got %v, want TimestampOutOfBoundsException", c.name, err)
		}
	}
}
