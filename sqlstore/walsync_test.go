package sqlstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
)

func walTestRecord(n int) mpmeter.MeteringRecord {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return mpmeter.MeteringRecord{
		MeteringRecordID: uuid.Must(uuid.NewV7()).String(), Kind: mpmeter.UsageBatch, ProductCode: "prod",
		SellerAccountID: "111111111111", CustomerAccountID: "222222222222", CustomerIdentifier: "cust",
		LicenseArn: "arn:aws:license-manager::222222222222:license:l-1", Dimension: "users",
		Timestamp: now.Truncate(time.Hour), Quantity: int64(n + 1),
		DedupKey:    "batch|l-1|users|" + uuid.NewString(),
		Fingerprint: "q=" + string(rune('1'+n)), CreatedAt: now,
	}
}

// A RecordUsage call is answered only after the fsync of the log that
// follows its COMMIT: while the fsync is held, the record is already
// committed (readers see it) but the caller is still waiting.
func TestGroupCommitAnswersAfterFsync(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "wal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entered, release := make(chan struct{}, 16), make(chan struct{})
	s.wal.mu.Lock()
	s.wal.fsync = func(f *os.File) error {
		entered <- struct{}{}
		<-release
		return f.Sync()
	}
	s.wal.mu.Unlock()

	rec := walTestRecord(0)
	answered := make(chan error, 1)
	go func() {
		_, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{rec}, nil)
		answered <- err
	}()
	<-entered // committed, fsync in progress
	if _, err := s.UsageRecord(ctx, rec.MeteringRecordID); err != nil {
		t.Fatalf("the record is not committed while its fsync runs: %v", err)
	}
	select {
	case err := <-answered:
		t.Fatalf("RecordUsage answered (%v) before the fsync of its commit finished", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
}

// A failed fsync fails the calls it was for, and every write after it, until
// the store is reopened; the records committed before it are kept.
func TestWALFsyncFailureIsSticky(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wal.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	first := walTestRecord(0)
	if _, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{first}, nil); err != nil {
		t.Fatal(err)
	}
	broken := errors.New("EIO")
	s.wal.mu.Lock()
	s.wal.fsync = func(*os.File) error { return broken }
	s.wal.mu.Unlock()
	if _, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{walTestRecord(1)}, nil); !errors.Is(err, broken) {
		t.Fatalf("RecordUsage with a failing fsync: %v, want %v", err, broken)
	}
	s.wal.mu.Lock()
	s.wal.fsync = (*os.File).Sync // the disk is back, but the store cannot know what it lost
	s.wal.mu.Unlock()
	if _, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{walTestRecord(2)}, nil); !errors.Is(err, broken) {
		t.Fatalf("RecordUsage after a failed fsync: %v, want %v", err, broken)
	}
	if err := s.PutAccount(ctx, mpmeter.Account{ID: "333333333333", Name: "x"}); !errors.Is(err, broken) {
		t.Fatalf("PutAccount after a failed fsync: %v, want %v", err, broken)
	}
	s.Close()

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.UsageRecord(ctx, first.MeteringRecordID); err != nil {
		t.Fatalf("a record acknowledged before the failure: %v", err)
	}
	if _, err := s.RecordUsage(ctx, []mpmeter.MeteringRecord{walTestRecord(3)}, nil); err != nil {
		t.Fatalf("RecordUsage after reopening: %v", err)
	}
}
