package seed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Fault is a fault rule (docs/retries.md): which calls, what happens to
// them, and how often.
//
//	faults:
//	  - {operation: BatchMeterUsage, kind: throttling, count: 2}
//	  - {id: slow-meter, operation: MeterUsage, kind: latency, latency: 2s, rate: 0.5}
//	  - {product: exampleprod1, kind: unprocessed_records, count: 3, remaining: 1, expires_at: 2030-01-01T00:00:00Z}
type Fault struct {
	// ID names the rule; derived from the rule's fields when empty, so the
	// same file always yields the same ids.
	ID        string `yaml:"id,omitempty"`
	Operation string `yaml:"operation,omitempty"` // empty: every operation
	Account   string `yaml:"account,omitempty"`   // the calling account; empty: any
	Product   string `yaml:"product,omitempty"`   // the request's ProductCode; empty: any
	// Kind is throttling, internal_error, service_unavailable, latency,
	// drop_connection or unprocessed_records.
	Kind string `yaml:"kind"`
	// Rate (0 < rate <= 1) or Count (n >= 1), not both.
	Rate  float64 `yaml:"rate,omitempty"`
	Count int64   `yaml:"count,omitempty"`
	// Remaining is how many of Count are left when the rule is added (an
	// export writes it for a rule partly spent); nil: Count. A rule stored
	// already with the same definition keeps its own.
	Remaining *int64 `yaml:"remaining,omitempty"`
	// Latency is a latency fault's delay, a Go duration ("2s").
	Latency string `yaml:"latency,omitempty"`
	// ExpiresAt ends the rule (service clock); nil: never.
	ExpiresAt *time.Time `yaml:"expires_at,omitempty"`
}

// FaultTarget is what applying a seed with faults needs of the store
// besides Target (every mpmeter.Store has it).
type FaultTarget interface {
	AddFaultRule(ctx context.Context, r mpmeter.FaultRule) error
	FaultRule(ctx context.Context, id string) (mpmeter.FaultRule, error)
	DeleteFaultRule(ctx context.Context, id string) error
}

// rule is f as a rule (ID derived when empty, from the definition: not
// Remaining), without CreatedAt.
func (f Fault) rule() (mpmeter.FaultRule, error) {
	r := mpmeter.FaultRule{ID: f.ID, Operation: f.Operation, AccountID: f.Account, ProductCode: f.Product,
		Kind: mpmeter.FaultKind(f.Kind), Rate: f.Rate, Count: f.Count, Remaining: f.Count}
	if f.Remaining != nil {
		r.Remaining = *f.Remaining
	}
	var errs []error
	if f.Latency != "" {
		d, err := time.ParseDuration(f.Latency)
		if err != nil {
			errs = append(errs, fmt.Errorf("latency %q is not a Go duration (250ms, 2s)", f.Latency))
		}
		r.Latency = d
	}
	if f.ExpiresAt != nil {
		r.ExpiresAt = f.ExpiresAt.UTC()
	}
	if r.ID == "" {
		sum := sha256.Sum256([]byte(strings.Join([]string{"mpmeter/fault", f.Operation, f.Account, f.Product, f.Kind,
			strconv.FormatFloat(f.Rate, 'g', -1, 64), strconv.FormatInt(f.Count, 10), r.Latency.String(), r.ExpiresAt.String()}, "\x00")))
		r.ID = "seed-" + hex.EncodeToString(sum[:6])
	}
	if err := mpmeter.CheckFaultRule(r); err != nil {
		// It wraps ErrInvalidFaultRule and the problems (joined), the
		// second of two: errors.Unwrap, which takes one, would give nil.
		if w, ok := err.(interface{ Unwrap() []error }); ok && len(w.Unwrap()) == 2 {
			err = w.Unwrap()[1]
		}
		errs = append(errs, err)
	}
	return r, errors.Join(errs...)
}

// fault checks the i-th fault rule.
func (rv *resolver) fault(i int, f Fault, ids map[string]string) Fault {
	r, err := f.rule()
	item := itemName("faults", i, r.ID)
	if err != nil {
		for _, e := range strings.Split(err.Error(), "\n") {
			rv.errs.add(item, "%s", e)
		}
		return f
	}
	if other, dup := ids[r.ID]; dup {
		rv.errs.add(item, "the same rule as %s (give each an id)", other)
	}
	ids[r.ID] = item
	f.ID = r.ID
	if f.Remaining != nil {
		rem := *f.Remaining
		f.Remaining = &rem
	}
	if f.ExpiresAt != nil {
		e := f.ExpiresAt.UTC()
		f.ExpiresAt = &e
	}
	return f
}

// exportFault is a stored fault rule as a seed file writes it: its id,
// and its remaining count when part of it is spent.
func exportFault(r mpmeter.FaultRule) Fault {
	f := Fault{ID: r.ID, Operation: r.Operation, Account: r.AccountID, Product: r.ProductCode, Kind: string(r.Kind),
		Rate: r.Rate, Count: r.Count}
	if r.Count > 0 && r.Remaining != r.Count {
		rem := r.Remaining
		f.Remaining = &rem
	}
	if r.Latency != 0 {
		f.Latency = r.Latency.String()
	}
	if !r.ExpiresAt.IsZero() {
		e := r.ExpiresAt.UTC()
		f.ExpiresAt = &e
	}
	return f
}

// applyFaults adds the file's fault rules, in file order (CreatedAt now,
// now+1ms, ...: the order they are tried in). A rule stored already with
// the same definition is kept as it is, its remaining count included, so
// applying the file again changes nothing; one whose definition changed is
// replaced (its count starts over).
func applyFaults(ctx context.Context, st Target, faults []Fault, now time.Time) error {
	if len(faults) == 0 {
		return nil
	}
	ft, ok := st.(FaultTarget)
	if !ok {
		return errors.New("seed: faults: this store keeps no fault rules")
	}
	for i, f := range faults {
		r, err := f.rule()
		if err != nil {
			return fmt.Errorf("seed: fault %s: %w", r.ID, err)
		}
		r.CreatedAt = now.Add(time.Duration(i) * time.Millisecond)
		err = ft.AddFaultRule(ctx, r)
		if errors.Is(err, mpmeter.ErrExists) {
			old, rerr := ft.FaultRule(ctx, r.ID)
			if rerr != nil {
				return fmt.Errorf("seed: fault %s: %w", r.ID, rerr)
			}
			if sameFault(old, r) {
				continue
			}
			if err := ft.DeleteFaultRule(ctx, r.ID); err != nil && !errors.Is(err, mpmeter.ErrNotFound) {
				return fmt.Errorf("seed: fault %s: %w", r.ID, err)
			}
			err = ft.AddFaultRule(ctx, r)
		}
		if err != nil {
			return fmt.Errorf("seed: fault %s: %w", r.ID, err)
		}
	}
	return nil
}

// sameFault compares definitions: not the creation time or what is left of
// the count.
func sameFault(a, b mpmeter.FaultRule) bool {
	ea, eb := a.ExpiresAt, b.ExpiresAt
	a.CreatedAt, b.CreatedAt, a.Remaining, b.Remaining, a.ExpiresAt, b.ExpiresAt = time.Time{}, time.Time{}, 0, 0, time.Time{}, time.Time{}
	return a == b && ea.Equal(eb)
}
