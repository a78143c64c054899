package workloadcreds_test

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/workloadcreds"
)

func store(t *testing.T) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.PutAccount(t.Context(), mpmeter.Account{ID: "444455556666"}); err != nil {
		t.Fatal(err)
	}
	w := &mpmeter.Workload{ID: "task-1", Platform: mpmeter.PlatformECS, Region: "us-east-1"}
	for _, k := range []mpmeter.AccessKey{
		{ID: "AKIAROLE0000000001", Secret: "s", AccountID: "444455556666", Workload: w, CredentialsToken: "ct"},
		// A temporary key with the token as its session token is no way in.
		{ID: "ASIASEEDED00000001", Secret: "s", AccountID: "444455556666", Workload: w, SessionToken: "st"},
	} {
		if err := st.PutAccessKey(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// Concurrent first fetches of one workload mint one set of credentials;
// a seeded temporary key without expiry is never handed out.
func TestConcurrentFetchesMintOnce(t *testing.T) {
	st := store(t)
	now := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	iss, err := workloadcreds.New(workloadcreds.Config{Store: st, Clock: mpmeter.ClockFunc(func() time.Time { return now })})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			k, err := iss.Credentials(t.Context(), "task-1", "ct")
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = k.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == "ASIASEEDED00000001" {
			t.Fatalf("ids %v, want one minted id", ids)
		}
	}
	keys, err := st.WorkloadAccessKeys(t.Context(), "task-1", now)
	if err != nil || len(keys) != 3 {
		t.Fatalf("stored keys %v, %v; want the role, the seeded and one minted", keys, err)
	}
	k, err := st.AccessKey(t.Context(), ids[0])
	if err != nil || !k.ExpiresAt.Equal(now.Add(workloadcreds.DefaultTTL)) || k.CredentialsToken != "" {
		t.Fatalf("minted %+v, %v", k, err)
	}
}

func TestRefusals(t *testing.T) {
	st := store(t)
	iss, err := workloadcreds.New(workloadcreds.Config{Store: st, Clock: mpmeter.ClockFunc(time.Now), TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ workload, token string }{
		{"task-1", ""}, {"task-1", "c"}, {"task-1", "st"}, {"task-2", "ct"},
	} {
		if _, err := iss.Credentials(t.Context(), c.workload, c.token); !errors.Is(err, workloadcreds.ErrUnauthorized) {
			t.Errorf("%s with %q: %v, want ErrUnauthorized", c.workload, c.token, err)
		}
	}
	// A TTL below the minimum is raised to it.
	k, err := iss.Credentials(t.Context(), "task-1", "ct")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(k.ExpiresAt); d < workloadcreds.MinTTL-time.Minute || d > workloadcreds.MinTTL {
		t.Errorf("expires in %s, want %s", d, workloadcreds.MinTTL)
	}
}
