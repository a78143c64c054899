// Package faults decides which configured fault (mpmeter.FaultRule) an API
// call gets, so that sellers can watch their retry logic meet throttling,
// 500s, 503s, latency, dropped connections and unprocessed records before
// AWS serves them any (docs/retries.md). The protocol layer (awsjson) asks
// twice per call: once the caller and operation are known (before the body
// is decoded), and once the input is valid (rules that name a product, and
// unprocessed_records); a call gets at most one fault.
//
// Rules live in the database, so every node applies the same ones; a node
// reads them through storecache (at most --cache-ttl stale). A count rule's
// budget is taken from the database atomically on each injection, so the
// count holds exactly across nodes; a rate rule draws locally.
package faults

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Store is the part of mpmeter.Store the injector reads.
type Store interface {
	FaultRules(ctx context.Context) ([]mpmeter.FaultRule, error)
	TakeFaultCount(ctx context.Context, id string, n int64) (int64, error)
}

// Observer counts injected faults (metrics). kind is one of
// mpmeter.FaultKinds, operation an operation table's key.
type Observer interface {
	FaultInjected(kind mpmeter.FaultKind, operation string)
}

// Config configures an Injector.
type Config struct {
	Store    Store
	Clock    mpmeter.Clock // rules' expiry; nil: wall time
	Observer Observer      // nil: none
	Logger   *slog.Logger  // nil: slog.Default()
	// Rand draws rate rules; nil: a randomly seeded source. Tests pass a
	// seeded one.
	Rand *rand.Rand
}

// Injector applies fault rules. Safe for concurrent use.
type Injector struct {
	cfg Config

	mu       sync.Mutex // guards rand and lastLog
	rand     *rand.Rand
	lastLog  time.Time
	logEvery time.Duration
}

// New returns an injector.
func New(cfg Config) *Injector {
	if cfg.Clock == nil {
		cfg.Clock = mpmeter.WallClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := cfg.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return &Injector{cfg: cfg, rand: r, logEvery: 10 * time.Second}
}

// Inject returns the fault call gets, or nil. call.Input nil asks for the
// rules applied before validation, otherwise for those applied after it
// (mpmeter.FaultRule.AfterValidation). Rules are tried in creation order;
// the first that fires is the call's fault. A rule whose store read or
// count take fails is skipped (logged at most every 10 s): a broken fault
// is no reason to fail a call.
func (i *Injector) Inject(ctx context.Context, call mpmeter.FaultCall) *mpmeter.InjectedFault {
	rules, err := i.cfg.Store.FaultRules(ctx)
	if err != nil {
		i.logFailure("reading fault rules", err)
		return nil
	}
	if len(rules) == 0 {
		return nil
	}
	now := i.cfg.Clock.Now()
	after := call.Input != nil
	product := call.ProductCode()
	for _, r := range rules {
		if r.AfterValidation() != after || !r.Active(now) || !slices.Contains(mpmeter.FaultKinds, r.Kind) ||
			(r.Operation != "" && r.Operation != call.Operation) ||
			(r.AccountID != "" && r.AccountID != call.AccountID) ||
			(r.ProductCode != "" && r.ProductCode != product) {
			continue
		}
		f := i.fire(ctx, r, call)
		if f == nil {
			continue
		}
		if i.cfg.Observer != nil {
			i.cfg.Observer.FaultInjected(f.Kind, call.Operation)
		}
		return f
	}
	return nil
}

// fire decides whether r faults call: a draw for a rate rule, a take from
// the shared count for a count rule.
func (i *Injector) fire(ctx context.Context, r mpmeter.FaultRule, call mpmeter.FaultCall) *mpmeter.InjectedFault {
	f := &mpmeter.InjectedFault{RuleID: r.ID, Kind: r.Kind, Latency: r.Latency}
	if r.Kind != mpmeter.FaultUnprocessedRecords {
		if !i.decide(ctx, r) {
			return nil
		}
		return f
	}
	in, ok := call.Input.(*mpmeter.BatchMeterUsageInput)
	if !ok || len(in.UsageRecords) == 0 {
		return nil
	}
	n := len(in.UsageRecords)
	if r.Count > 0 {
		took, err := i.cfg.Store.TakeFaultCount(ctx, r.ID, int64(n))
		if err != nil {
			i.logFailure("taking from fault rule "+r.ID, err)
			return nil
		}
		for k := range int(took) {
			f.Unprocessed = append(f.Unprocessed, k)
		}
	} else {
		i.mu.Lock()
		for k := range n {
			if i.rand.Float64() < r.Rate {
				f.Unprocessed = append(f.Unprocessed, k)
			}
		}
		i.mu.Unlock()
	}
	if len(f.Unprocessed) == 0 {
		return nil
	}
	return f
}

// decide is one call's draw of a rate rule or take of a count rule.
func (i *Injector) decide(ctx context.Context, r mpmeter.FaultRule) bool {
	if r.Count > 0 {
		took, err := i.cfg.Store.TakeFaultCount(ctx, r.ID, 1)
		if err != nil {
			i.logFailure("taking from fault rule "+r.ID, err)
			return false
		}
		return took == 1
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.rand.Float64() < r.Rate
}

func (i *Injector) logFailure(what string, err error) {
	i.mu.Lock()
	now := time.Now()
	quiet := now.Sub(i.lastLog) < i.logEvery
	if !quiet {
		i.lastLog = now
	}
	i.mu.Unlock()
	if !quiet {
		i.cfg.Logger.Warn("fault injection skipped", "what", what, "err", err)
	}
}
