package sqlstore_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/sqlstore"
)

// crashHelperEnv, when set, makes TestCrashHelper the child of
// TestCrashDurability: its value is "<database path>|<round>".
const crashHelperEnv = "MPMETER_CRASH_HELPER"

// TestCrashDurability checks that a write acknowledged to the caller survives
// the process being killed (SIGKILL: no deferred functions, no Close, no
// checkpoint). A child process records usage from several goroutines and
// prints each record's id once RecordUsage has returned it (an "ack", what a
// 200 to the client would be); the parent kills it mid-stream, reopens the
// database, and requires every acked id to be there. Three rounds on one
// file, so recovery is also followed by more writes and another crash.
//
// What this does not test: power loss, where the OS page cache is lost too.
// That is what synchronous=FULL is for (an fsync of the WAL in every commit),
// and it needs a VM or a fault-injecting block device to test honestly.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	total := 0
	for round := range 3 {
		acked := runCrashChild(t, path, round, 200)
		s, err := sqlstore.Open(context.Background(), path)
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		recs, err := s.Usage(context.Background(), mpmeter.UsageFilter{})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		stored := map[string]bool{}
		for _, r := range recs {
			stored[r.MeteringRecordID] = true
		}
		lost := 0
		for _, id := range acked {
			if !stored[id] {
				lost++
				if lost <= 5 {
					t.Errorf("round %d: acknowledged record %s is gone", round, id)
				}
			}
		}
		if lost > 0 {
			t.Errorf("round %d: %d of %d acknowledged records lost", round, lost, len(acked))
		}
		// Records committed but killed before their ack may be there too;
		// nothing else may.
		if len(recs) < total+len(acked) {
			t.Errorf("round %d: %d records stored, want at least %d", round, len(recs), total+len(acked))
		}
		total = len(recs)
		t.Logf("round %d: %d acked, %d stored in all", round, len(acked), total)
	}
}

// runCrashChild starts the child on path, reads its acks, kills it with
// SIGKILL once it has acked at least killAfter records, and returns every
// ack it printed before it died.
func runCrashChild(t *testing.T, path string, round, killAfter int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d", crashHelperEnv, path, round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	// A watchdog, so a child that hangs cannot hang the test.
	watchdog := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()

	var acked []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		// Only whole lines count: a line cut short by the kill was never
		// acknowledged.
		id, ok := strings.CutPrefix(sc.Text(), "ACK ")
		if !ok {
			continue
		}
		acked = append(acked, id)
		if len(acked) == killAfter && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
				t.Fatal(err)
			}
			killed = true
		}
		// Keep reading: acks the child wrote before it died are in the pipe.
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("round %d: child exited after %d acks (%v):\n%s", round, len(acked), err, stderr.String())
	}
	if wal, err := os.Stat(path + "-wal"); err == nil {
		t.Logf("round %d: killed with a %d-byte WAL to recover", round, wal.Size())
	}
	return acked
}

// TestCrashHelper is the child process of TestCrashDurability; run on its
// own it does nothing. It writes until it is killed.
func TestCrashHelper(t *testing.T) {
	arg := os.Getenv(crashHelperEnv)
	if arg == "" {
		t.Skip("helper process for TestCrashDurability")
	}
	path, round, _ := strings.Cut(arg, "|")
	s, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	const writers = 4
	done := make(chan error)
	for w := range writers {
		go func() {
			for i := 0; ; i++ {
				// A two-record batch (one with a DedupKey, one without) or
				// a single record with an idempotency token.
				id := fmt.Sprintf("r%s-w%d-%d", round, w, i)
				recs := []mpmeter.MeteringRecord{crashRecord(id+"a", id), crashRecord(id+"b", "")}
				var tok *mpmeter.IdempotencyToken
				if i%3 == 0 {
					recs = recs[:1]
					tok = &mpmeter.IdempotencyToken{Scope: "w", Token: id, Fingerprint: "f", ExpiresAt: time.Unix(1e10, 0)}
				}
				out, err := s.RecordUsage(context.Background(), recs, tok)
				if err != nil {
					done <- err
					return
				}
				// os.Stdout is unbuffered: each line is one write(2) to the
				// pipe, made only after RecordUsage returned.
				var b strings.Builder
				for _, o := range out {
					fmt.Fprintf(&b, "ACK %s\n", o.Record.MeteringRecordID)
				}
				if _, err := os.Stdout.WriteString(b.String()); err != nil {
					done <- err
					return
				}
			}
		}()
	}
	err = <-done
	fmt.Fprintln(os.Stderr, err)
	os.Exit(3)
}

func crashRecord(id, key string) mpmeter.MeteringRecord {
	ts := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return mpmeter.MeteringRecord{
		MeteringRecordID: id, Kind: mpmeter.UsageBatch, ProductCode: "prod", SellerAccountID: "111111111111",
		CustomerAccountID: "222222222222", Dimension: "users", Timestamp: ts, Quantity: 1,
		DedupKey: key, Fingerprint: "fp", CreatedAt: ts,
	}
}
