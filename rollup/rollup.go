// Package rollup keeps a running mpmeter's daily usage rollup up to date in
// the background: every UTC day that no call can store usage in any more is
// summed once into the store's daily sums, which usage summaries then read
// instead of the day's records (docs/storage.md, "The daily rollup"). Like
// package purge it works in small steps, each a few short transactions of
// its own (the SQLite writer is never held for long), judging time by the
// service clock.
//
// Correctness does not depend on the timing chosen here: a record written
// into a day already rolled up (the virtual clock set back, a direct
// Store.RecordUsage) makes the store drop that day's sums in the same
// transaction, and a later round rolls the day up again.
package rollup

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Store is what the roller needs of a store (sqlstore.Store has it).
type Store interface {
	// RollUpUsage rolls up the first day at or after after (zero: the
	// first stored record's) that is not rolled up and ends by
	// closedBefore; now is the service clock's. See sqlstore.
	RollUpUsage(ctx context.Context, after, closedBefore, now time.Time) (mpmeter.UsageRollupStep, error)
}

// Observer hears what each step rolled up and how far behind the rollup is
// (metrics).
type Observer interface {
	ObserveUsageRollup(step mpmeter.UsageRollupStep)
	// ObserveUsageRollupLag: how much closed time the round had not rolled
	// up yet; 0 once every closed day is.
	ObserveUsageRollupLag(lag time.Duration)
}

// Margin is added to the service's windows in ClosedAfter: slack for the
// nodes' clocks disagreeing and requests in flight.
const Margin = time.Hour

// ClosedAfter is how long after an instant the roller treats usage stamped
// before it as final, for a service with this usage window and future
// tolerance (service.Service's UsageWindow and FutureTolerance): the window
// is how old a timestamp a call may still store; the tolerance (how far
// ahead of the service clock a timestamp may be) and Margin make it
// conservative.
func ClosedAfter(usageWindow, futureTolerance time.Duration) time.Duration {
	return usageWindow + futureTolerance + Margin
}

// Config configures Round and Run.
type Config struct {
	Store Store
	Clock mpmeter.Clock // the service clock
	// ClosedAfter: days that end more than this before the clock's now
	// are rolled up (see the function ClosedAfter). Must be positive.
	ClosedAfter time.Duration
	// Interval between rounds; 0 means one minute.
	Interval time.Duration
	Observer Observer     // may be nil
	Logger   *slog.Logger // may be nil
}

// Result says what a round did.
type Result struct {
	Days    int   // days rolled up
	Records int64 // records summed
}

// Round rolls up every closed day that is not rolled up yet, by the clock's
// now, one step (a day, or a run of days without records) after another.
func Round(ctx context.Context, cfg Config) (Result, error) {
	var total Result
	if cfg.ClosedAfter <= 0 {
		return total, errors.New("rollup: Config.ClosedAfter must be positive")
	}
	now := cfg.Clock.Now()
	closedBefore := now.Add(-cfg.ClosedAfter)
	closedDays := closedBefore.Truncate(24 * time.Hour) // a UTC midnight: the end of the last closed day
	var after time.Time
	for {
		step, err := cfg.Store.RollUpUsage(ctx, after, closedBefore, now)
		if err != nil {
			return total, err
		}
		if step.To.IsZero() {
			cfg.observeLag(0)
			return total, nil
		}
		total.Days += step.Days
		total.Records += step.Records
		if cfg.Observer != nil {
			cfg.Observer.ObserveUsageRollup(step)
		}
		cfg.observeLag(max(0, closedDays.Sub(step.To)))
		after = step.To
	}
}

func (cfg Config) observeLag(d time.Duration) {
	if cfg.Observer != nil {
		cfg.Observer.ObserveUsageRollupLag(d)
	}
}

// Run rolls up a round at once and then every Interval until ctx ends. A
// failed round is logged and tried again at the next interval.
func Run(ctx context.Context, cfg Config) {
	every := cfg.Interval
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		res, err := Round(ctx, cfg)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if cfg.Logger != nil {
				cfg.Logger.Warn("usage rollup: round failed", "err", err)
			}
		case res.Days > 0 && cfg.Logger != nil:
			cfg.Logger.Info("usage rollup", "days", res.Days, "records", res.Records)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
