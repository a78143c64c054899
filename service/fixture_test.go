package service_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/keys"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/service"
	"github.com/mpmeter/mpmeter/sqlstore"
)

// The rules are tested here without HTTP or SigV4: a Service on the real
// SQLite store in a temporary directory, the demo marketplace, a service
// clock that moves only when a test moves it, and callers built from the
// seeded access keys as SigV4 verification would build them. mpmetertest
// tests the protocol and the SDKs.

// t0 is the service clock's start: the half hour, so that a test has 30
// minutes either way within one dedup hour.
var t0 = time.Date(2026, 3, 10, 12, 30, 0, 0, time.UTC)

// The demo marketplace's names the tests use (seed/demo.yaml).
const (
	sellerKey      = "AKIAEXAMPLESELLER001"
	otherSellerKey = "AKIAEXAMPLEOTHER0001"
	buyerKey       = "AKIAEXAMPLEBUYER0001" // the buyer's own, no workload
	ec2Key         = "AKIAEXAMPLEEC2000001"
	ecsKey         = "AKIAEXAMPLEECS000001"
	eksKey         = "AKIAEXAMPLEEKS000001"
	fargateKey     = "AKIAEXAMPLEFARGATE01"
	agentKey       = "AKIAEXAMPLEAGENT0001"
	cancelledEC2   = "AKIAEXAMPLECANCEL001"
	cancelledECS   = "AKIAEXAMPLECANCEL002"

	saasProduct      = "exampleprod1"
	amiProduct       = "exampleami1"
	containerProduct = "examplecontainer1"
	otherProduct     = "otherprod1" // the other seller's SaaS product

	buyer            = "444455556666"
	customer         = "cust-example-1"
	license          = "arn:aws:license-manager::444455556666:license/l-0123456789abcdef"
	cancelledBuyer   = "123456789012"
	cancelledCustomr = "cust-cancelled-1"
	region           = "us-east-1"
)

// signingKey is one RegisterUsage key version made once for the whole test
// binary (RSA key generation takes a while) and put into each fixture's
// store.
var signingKey mpmeter.SigningKey

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "service-test-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		ctx := context.Background()
		st, err := sqlstore.Open(ctx, filepath.Join(dir, "keys.db"))
		if err != nil {
			panic(err)
		}
		km, err := keys.New(keys.Config{Store: st, Clock: mpmeter.ClockFunc(func() time.Time { return t0.Add(-24 * time.Hour) })})
		if err == nil {
			err = km.Ensure(ctx)
		}
		if err != nil {
			panic(err)
		}
		ks, err := st.SigningKeys(ctx)
		if err != nil || len(ks) != 1 {
			panic(err)
		}
		signingKey = ks[0]
		st.Close()
		return m.Run()
	}())
}

// fixture is one Service on its own database.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	store mpmeter.Store
	now   time.Time // the service clock; tests move it
	svc   *service.Service
	seen  map[string]int // Observer: "op/outcome" → records
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "service.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := seed.Demo().Apply(ctx, st, t0, 4*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.AddSigningKey(ctx, signingKey); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, store: st, now: t0, seen: map[string]int{}}
	clock := mpmeter.ClockFunc(func() time.Time { return f.now })
	km, err := keys.New(keys.Config{Store: st, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if f.svc, err = service.New(service.Config{Store: st, Clock: clock, Signer: km, Observer: f}); err != nil {
		t.Fatal(err)
	}
	return f
}

// ObserveRecords implements service.Observer.
func (f *fixture) ObserveRecords(op, outcome string, n int) { f.seen[op+"/"+outcome] += n }

// caller is who SigV4 verification finds behind an access key, calling the
// demo region.
func (f *fixture) caller(key string) mpmeter.Caller {
	f.t.Helper()
	k, err := f.store.AccessKey(f.ctx, key)
	if err != nil {
		f.t.Fatalf("access key %s: %v", key, err)
	}
	return mpmeter.Caller{AccountID: k.AccountID, AccessKeyID: k.ID, Workload: k.Workload, Region: region}
}

// usage returns every stored record.
func (f *fixture) usage() []mpmeter.MeteringRecord {
	f.t.Helper()
	recs, err := f.store.Usage(f.ctx, mpmeter.UsageFilter{})
	if err != nil {
		f.t.Fatal(err)
	}
	return recs
}

// wantStored fails unless n records are stored.
func (f *fixture) wantStored(n int) []mpmeter.MeteringRecord {
	f.t.Helper()
	recs := f.usage()
	if len(recs) != n {
		f.t.Fatalf("%d records stored, want %d: %+v", len(recs), n, recs)
	}
	return recs
}

// wantCode fails unless err is an *mpmeter.Error named code.
func wantCode(t *testing.T, err error, code mpmeter.ErrorCode) {
	t.Helper()
	var e *mpmeter.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error %v, want %s", err, code)
	}
	if e.Message == "" {
		t.Errorf("%s without a message", code)
	}
}

func ptr[T any](v T) *T { return &v }

func ts(t time.Time) *mpmeter.Timestamp { return &mpmeter.Timestamp{Time: t} }

func tags(kv ...string) []mpmeter.Tag {
	var out []mpmeter.Tag
	for i := 0; i < len(kv); i += 2 {
		out = append(out, mpmeter.Tag{Key: ptr(kv[i]), Value: ptr(kv[i+1])})
	}
	return out
}

func alloc(q int64, kv ...string) mpmeter.UsageAllocation {
	return mpmeter.UsageAllocation{AllocatedUsageQuantity: ptr(q), Tags: tags(kv...)}
}

func TestNewValidatesConfig(t *testing.T) {
	f := newFixture(t)
	clock := mpmeter.ClockFunc(func() time.Time { return t0 })
	for name, cfg := range map[string]service.Config{
		"no store":                  {Clock: clock},
		"no clock":                  {Store: f.store},
		"negative usage window":     {Store: f.store, Clock: clock, UsageWindow: -time.Hour},
		"negative client token ttl": {Store: f.store, Clock: clock, ClientTokenTTL: -time.Second},
	} {
		if _, err := service.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := service.New(service.Config{Store: f.store, Clock: clock}); err != nil {
		t.Errorf("the minimal config: %v", err)
	}
}

// The configured window and tolerance are the ones applied.
func TestConfiguredUsageWindow(t *testing.T) {
	f := newFixture(t)
	svc, err := service.New(service.Config{Store: f.store, Clock: mpmeter.ClockFunc(func() time.Time { return t0 }), UsageWindow: time.Hour, FutureTolerance: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at time.Time
		ok bool
	}{{t0.Add(-time.Hour + time.Second), true}, {t0.Add(-time.Hour), false}, {t0.Add(time.Minute), true}, {t0.Add(time.Minute + time.Second), false}} {
		r := rec(f, "users", 1)
		r.Timestamp = ts(c.at)
		_, err := svc.BatchMeterUsage(f.ctx, f.caller(sellerKey), batch(saasProduct, r))
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.at, err)
		} else if !c.ok {
			wantCode(t, err, mpmeter.CodeTimestampOutOfBounds)
		}
	}
}
