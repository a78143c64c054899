package storetest

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Temporary credentials keep their session token and expiry; a key put
// again without them is long-term again (NULL, not an empty token or the
// zero time's milliseconds).
func testTemporaryAccessKey(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)
	expires := time.Date(2026, 5, 1, 12, 30, 0, 123_000_000, time.UTC)
	wl := &mpmeter.Workload{ID: "task-1", Platform: mpmeter.PlatformECS, Region: "us-east-1"}
	tmp := mpmeter.AccessKey{ID: "ASIATEMPORARY0001", Secret: "s", AccountID: buyer, Workload: wl,
		SessionToken: "session-token-1", ExpiresAt: expires}
	must(t, s.PutAccessKey(ctx, tmp))
	wantAccessKey(t, s, "temporary key", tmp)

	noExpiry := tmp
	noExpiry.ExpiresAt = time.Time{}
	must(t, s.PutAccessKey(ctx, noExpiry))
	wantAccessKey(t, s, "temporary key without expiry", noExpiry)

	long := tmp
	long.SessionToken, long.ExpiresAt = "", time.Time{}
	long.CredentialsToken = "workload-credentials-token"
	must(t, s.PutAccessKey(ctx, long))
	wantAccessKey(t, s, "long-term key with a credentials token", long)

	long.CredentialsToken = ""
	must(t, s.PutAccessKey(ctx, long))
	wantAccessKey(t, s, "credentials token removed", long)
}

// WorkloadAccessKeys finds a workload's long-term keys and the temporary
// keys that work at the given time, and nothing of other workloads.
func testWorkloadAccessKeys(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	keys, err := s.WorkloadAccessKeys(ctx, "task-1", time.Now())
	if err != nil || keys == nil || len(keys) != 0 {
		t.Fatalf("WorkloadAccessKeys on an empty store = %v, %v; want an empty slice", keys, err)
	}
	seed(t, s)
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	wl := &mpmeter.Workload{ID: "task-1", Platform: mpmeter.PlatformECS, Region: "us-east-1"}
	other := &mpmeter.Workload{ID: "task-2", Platform: mpmeter.PlatformECS, Region: "us-east-1"}
	role := mpmeter.AccessKey{ID: "AKIAWORKLOADROLE01", Secret: "s", AccountID: buyer, Workload: wl, CredentialsToken: "ct"}
	current := mpmeter.AccessKey{ID: "ASIAWORKLOADCURR01", Secret: "s", AccountID: buyer, Workload: wl,
		SessionToken: "t1", ExpiresAt: at.Add(time.Hour)}
	endsNow := mpmeter.AccessKey{ID: "ASIAWORKLOADENDS01", Secret: "s", AccountID: buyer, Workload: wl,
		SessionToken: "t2", ExpiresAt: at}
	expired := mpmeter.AccessKey{ID: "ASIAWORKLOADOLD001", Secret: "s", AccountID: buyer, Workload: wl,
		SessionToken: "t3", ExpiresAt: at.Add(-time.Hour)}
	forever := mpmeter.AccessKey{ID: "ASIAWORKLOADEVER01", Secret: "s", AccountID: buyer, Workload: wl, SessionToken: "t4"}
	elsewhere := mpmeter.AccessKey{ID: "ASIAOTHERWORKLOAD1", Secret: "s", AccountID: buyer, Workload: other,
		SessionToken: "t5", ExpiresAt: at.Add(time.Hour)}
	plain := mpmeter.AccessKey{ID: "AKIANOWORKLOAD0001", Secret: "s", AccountID: buyer}
	for _, k := range []mpmeter.AccessKey{role, current, endsNow, expired, forever, elsewhere, plain} {
		must(t, s.PutAccessKey(ctx, k))
	}
	got, err := s.WorkloadAccessKeys(ctx, "task-1", at)
	if err != nil {
		t.Fatal(err)
	}
	// By id: AKIA... before ASIA...
	want := []mpmeter.AccessKey{role, current, forever}
	for i := range got {
		got[i].Version = 0 // versions are testVersions'
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WorkloadAccessKeys(task-1, at):\n got %+v\nwant %+v", got, want)
	}
	got, err = s.WorkloadAccessKeys(ctx, "task-1", at.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := []mpmeter.AccessKey{role, current, endsNow, forever, expired}; !sameKeys(got, want) {
		t.Errorf("WorkloadAccessKeys(task-1, at-2h) = %v; want %v", keyIDs(got), keyIDs(want))
	}
	got, err = s.WorkloadAccessKeys(ctx, "task-3", at)
	if err != nil || len(got) != 0 {
		t.Errorf("WorkloadAccessKeys(unknown workload) = %v, %v; want none", got, err)
	}
}

func wantAccessKey(t *testing.T, s mpmeter.Store, what string, want mpmeter.AccessKey) {
	t.Helper()
	got, err := s.AccessKey(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	got.Version = 0 // versions are testVersions'
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func keyIDs(keys []mpmeter.AccessKey) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

// sameKeys compares by id, in order: WorkloadAccessKeys orders by id.
func sameKeys(got, want []mpmeter.AccessKey) bool {
	w := keyIDs(want)
	slices.Sort(w)
	return slices.Equal(keyIDs(got), w)
}
