package storetest

import (
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// preview calls PreviewUsage and fails the test on an error.
func preview(t *testing.T, s mpmeter.Store, r mpmeter.MeteringRecord, tok *mpmeter.IdempotencyToken) mpmeter.MeteringOutcome {
	t.Helper()
	o, err := s.PreviewUsage(t.Context(), r, tok)
	if err != nil {
		t.Fatalf("PreviewUsage(%s): %v", r.MeteringRecordID, err)
	}
	return o
}

// PreviewUsage answers what RecordUsage would, and stores nothing: not the
// record, and not the token.
func testPreviewUsage(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	seed(t, s)

	a := rec("rec-a", "key-a")
	wantOutcome(t, "new record", preview(t, s, a, nil), true, a)
	tok := &mpmeter.IdempotencyToken{Scope: "i-0123", Token: "tok-1", Fingerprint: "A", ExpiresAt: t0.Add(time.Hour)}
	wantOutcome(t, "new record with a new token", preview(t, s, a, tok), true, a)
	wantUsage(t, s, mpmeter.UsageFilter{})
	// The token was not stored: other parameters are no conflict.
	other := *tok
	other.Fingerprint = "B"
	wantOutcome(t, "the previewed token again, other parameters", preview(t, s, a, &other), true, a)

	// A taken dedup key answers the stored record.
	record1(t, ctx, s, a, tok)
	again := rec("rec-a2", "key-a")
	again.Quantity = 8
	wantOutcome(t, "taken dedup key", preview(t, s, again, nil), false, a)
	// A record without a dedup key is always new.
	free := rec("rec-free", "")
	wantOutcome(t, "no dedup key", preview(t, s, free, nil), true, free)

	// The stored token: same parameters answer its first record, even for a
	// record of another slot; other parameters conflict.
	elsewhere := rec("rec-b", "key-b")
	wantOutcome(t, "token retry", preview(t, s, elsewhere, tok), false, a)
	_, err := s.PreviewUsage(ctx, elsewhere, &other)
	wantErr(t, "token reused with other parameters", err, mpmeter.ErrIdempotencyConflict)

	// An expired token is no answer: the record's own slot is.
	late := rec("rec-b", "key-b")
	late.CreatedAt = t0.Add(time.Hour)
	wantOutcome(t, "expired token", preview(t, s, late, &other), true, late)

	wantUsage(t, s, mpmeter.UsageFilter{}, a)
}
