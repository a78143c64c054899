package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/mpmeter/mpmeter"
)

// --- fault injection (docs/retries.md) ---

// FaultStore is the part of mpmeter.Store the fault routes use.
type FaultStore interface {
	AddFaultRule(ctx context.Context, r mpmeter.FaultRule) error
	FaultRule(ctx context.Context, id string) (mpmeter.FaultRule, error)
	FaultRules(ctx context.Context) ([]mpmeter.FaultRule, error)
	DeleteFaultRule(ctx context.Context, id string) error
	DeleteFaultRules(ctx context.Context) (int, error)
}

// FaultsConfig is what the fault routes run on.
type FaultsConfig struct {
	Store  FaultStore
	Clock  mpmeter.Clock // created_at, expires_in, active; nil: wall time
	Logger *slog.Logger
}

// Fault is a fault rule.
type Fault struct {
	ID          string     `json:"id"`
	Operation   string     `json:"operation,omitempty" doc:"The operation faulted; absent: every one."`
	AccountID   string     `json:"account_id,omitempty" doc:"The calling account faulted; absent: every one."`
	ProductCode string     `json:"product_code,omitempty" doc:"The request's ProductCode faulted; absent: every one."`
	Kind        string     `json:"kind" enum:"throttling,internal_error,service_unavailable,latency,drop_connection,unprocessed_records"`
	Rate        float64    `json:"rate,omitempty" doc:"Probability each matching call (record, for unprocessed_records) is faulted."`
	Count       int64      `json:"count,omitempty" doc:"How many calls (records) are faulted in all, across every node."`
	Remaining   *int64     `json:"remaining,omitempty" doc:"Of count, how many are left (count rules only)."`
	Latency     string     `json:"latency,omitempty" doc:"The added delay of a latency fault (a Go duration)."`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty" doc:"When the rule stops (service clock); absent: never."`
	Active      bool       `json:"active" doc:"Whether it may still fault a call (not expired, count not spent)."`
}

func faultOut(r mpmeter.FaultRule, now time.Time) Fault {
	f := Fault{ID: r.ID, Operation: r.Operation, AccountID: r.AccountID, ProductCode: r.ProductCode, Kind: string(r.Kind),
		Rate: r.Rate, Count: r.Count, CreatedAt: r.CreatedAt.UTC(), Active: r.Active(now)}
	if r.Count > 0 {
		rem := r.Remaining
		f.Remaining = &rem
	}
	if r.Latency > 0 {
		f.Latency = r.Latency.String()
	}
	if !r.ExpiresAt.IsZero() {
		e := r.ExpiresAt.UTC()
		f.ExpiresAt = &e
	}
	return f
}

type faultIn struct {
	Body struct {
		ID          string     `json:"id,omitempty" doc:"1-64 of a-z, A-Z, 0-9, '.', '-', '_'; generated (f-...) when absent."`
		Operation   string     `json:"operation,omitempty" enum:"BatchMeterUsage,MeterUsage,RegisterUsage,ResolveCustomer,GetEntitlements"`
		AccountID   string     `json:"account_id,omitempty"`
		ProductCode string     `json:"product_code,omitempty"`
		Kind        string     `json:"kind" enum:"throttling,internal_error,service_unavailable,latency,drop_connection,unprocessed_records"`
		Rate        float64    `json:"rate,omitempty" minimum:"0" maximum:"1" doc:"Give rate or count."`
		Count       int64      `json:"count,omitempty" minimum:"0" maximum:"1000000000"`
		Latency     string     `json:"latency,omitempty" doc:"latency only: a Go duration, up to 5m." example:"2s"`
		ExpiresIn   string     `json:"expires_in,omitempty" doc:"Stop after this long (a Go duration, service clock)." example:"10m"`
		ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	}
}

type faultPath struct {
	ID string `path:"id"`
}

type faultOutput struct{ Body Fault }

type faultsCleared struct {
	Body struct {
		Deleted int `json:"deleted" doc:"How many rules were deleted."`
	}
}

// FaultRoutes returns the registration of the fault routes under
// /admin/v1/faults (server.New adds it to Config.Routes).
func FaultRoutes(cfg FaultsConfig) func(api huma.API) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// The shared helpers (now, storeErr) need only the clock and logger.
	a := &API{cfg: Config{Clock: cfg.Clock, Logger: cfg.Logger}}
	st := cfg.Store
	return func(api huma.API) {
		huma.Register(api, created(op("create-fault", http.MethodPost, "/faults", "Add a fault rule (every node applies it within a second)", "faults")),
			func(ctx context.Context, in *faultIn) (*faultOutput, error) {
				b := in.Body
				now := a.now()
				r := mpmeter.FaultRule{ID: b.ID, Operation: b.Operation, AccountID: b.AccountID, ProductCode: b.ProductCode,
					Kind: mpmeter.FaultKind(b.Kind), Rate: b.Rate, Count: b.Count, Remaining: b.Count, CreatedAt: now}
				if r.ID == "" {
					var id [6]byte
					rand.Read(id[:])
					r.ID = "f-" + hex.EncodeToString(id[:])
				}
				var problems []string
				if b.Latency != "" {
					d, err := time.ParseDuration(b.Latency)
					if err != nil {
						problems = append(problems, "latency "+b.Latency+" is not a Go duration (250ms, 2s)")
					}
					r.Latency = d
				}
				switch {
				case b.ExpiresIn != "" && b.ExpiresAt != nil:
					problems = append(problems, "give expires_in or expires_at, not both")
				case b.ExpiresIn != "":
					d, err := time.ParseDuration(b.ExpiresIn)
					if err != nil || d <= 0 {
						problems = append(problems, "expires_in "+b.ExpiresIn+" is not a positive Go duration")
					}
					r.ExpiresAt = now.Add(d)
				case b.ExpiresAt != nil:
					r.ExpiresAt = b.ExpiresAt.UTC()
				}
				if err := mpmeter.CheckFaultRule(r); err != nil {
					problems = append(problems, strings.TrimPrefix(err.Error(), mpmeter.ErrInvalidFaultRule.Error()+": "))
				}
				if err := invalidAll("fault", problems); err != nil {
					return nil, err
				}
				rules, err := st.FaultRules(ctx)
				if err != nil {
					return nil, a.storeErr(ctx, "fault rules", err)
				}
				if len(rules) >= mpmeter.MaxFaultRules {
					return nil, conflict("there are %d fault rules already, the most there may be; delete some", len(rules))
				}
				if err := st.AddFaultRule(ctx, r); err != nil {
					if errors.Is(err, mpmeter.ErrInvalidFaultRule) {
						return nil, invalid("fault: %v", err)
					}
					return nil, a.storeErr(ctx, "fault rule "+r.ID, err)
				}
				return &faultOutput{faultOut(r, now)}, nil
			})
		huma.Register(api, op("list-faults", http.MethodGet, "/faults", "List fault rules, in the order they are tried (creation)", "faults"),
			func(ctx context.Context, _ *struct{}) (*struct{ Body List[Fault] }, error) {
				rules, err := st.FaultRules(ctx)
				if err != nil {
					return nil, a.storeErr(ctx, "fault rules", err)
				}
				out := &struct{ Body List[Fault] }{List[Fault]{Items: []Fault{}}}
				now := a.now()
				for _, r := range rules {
					out.Body.Items = append(out.Body.Items, faultOut(r, now))
				}
				return out, nil
			})
		huma.Register(api, op("get-fault", http.MethodGet, "/faults/{id}", "Get a fault rule (with its remaining count)", "faults"),
			func(ctx context.Context, in *faultPath) (*faultOutput, error) {
				r, err := st.FaultRule(ctx, in.ID)
				if err != nil {
					return nil, a.storeErr(ctx, "fault rule "+in.ID, err)
				}
				return &faultOutput{faultOut(r, a.now())}, nil
			})
		huma.Register(api, op("delete-fault", http.MethodDelete, "/faults/{id}", "Delete a fault rule", "faults"),
			func(ctx context.Context, in *faultPath) (*struct{}, error) {
				return nil, a.storeErr(ctx, "fault rule "+in.ID, st.DeleteFaultRule(ctx, in.ID))
			})
		huma.Register(api, op("clear-faults", http.MethodDelete, "/faults", "Delete every fault rule", "faults"),
			func(ctx context.Context, _ *struct{}) (*faultsCleared, error) {
				n, err := st.DeleteFaultRules(ctx)
				if err != nil {
					return nil, a.storeErr(ctx, "fault rules", err)
				}
				out := &faultsCleared{}
				out.Body.Deleted = n
				return out, nil
			})
	}
}
