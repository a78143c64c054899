// Package purge deletes what expires from a running mpmeter's store in the
// background: MeterUsage ClientTokens past their TTL and registration
// tokens expired for longer than mpmeter.RegistrationTokenRetention. It
// works in small batches, each its own short transaction (the SQLite writer
// is never held for long), judging expiry by the service clock. Metering
// records are history and are never purged.
package purge

import (
	"context"
	"log/slog"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Store is what the purger needs of an mpmeter.Store.
type Store interface {
	PurgeExpired(ctx context.Context, now time.Time, limit int) (mpmeter.PurgeResult, error)
}

// Observer hears how many rows each batch deleted (metrics).
type Observer interface {
	ObservePurged(what string, n int)
}

// Config configures Run.
type Config struct {
	Store Store
	Clock mpmeter.Clock // the service clock
	// Interval between rounds; 0 means one minute.
	Interval time.Duration
	// Batch is the most rows of each kind one transaction deletes; 0 means
	// 500.
	Batch    int
	Observer Observer     // may be nil
	Logger   *slog.Logger // may be nil
}

// Round deletes everything that has expired by the clock's now, one batch
// after another, and returns what it deleted.
func Round(ctx context.Context, cfg Config) (mpmeter.PurgeResult, error) {
	batch := cfg.Batch
	if batch <= 0 {
		batch = 500
	}
	now := cfg.Clock.Now()
	var total mpmeter.PurgeResult
	for {
		res, err := cfg.Store.PurgeExpired(ctx, now, batch)
		if err != nil {
			return total, err
		}
		total.IdempotencyTokens += res.IdempotencyTokens
		total.RegistrationTokens += res.RegistrationTokens
		if cfg.Observer != nil {
			cfg.Observer.ObservePurged("client_tokens", res.IdempotencyTokens)
			cfg.Observer.ObservePurged("registration_tokens", res.RegistrationTokens)
		}
		if res.IdempotencyTokens < batch && res.RegistrationTokens < batch {
			return total, nil
		}
	}
}

// Run purges a round every Interval until ctx ends. A failed round is
// logged and tried again at the next interval.
func Run(ctx context.Context, cfg Config) {
	every := cfg.Interval
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := Round(ctx, cfg); err != nil && ctx.Err() == nil && cfg.Logger != nil {
			cfg.Logger.Warn("purging expired tokens failed", "err", err)
		}
	}
}
