package bench

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter/sqlstore"
)

// TestWALPagesPerCommit reads which pages SQLite's write-ahead log holds for
// each BatchMeterUsage commit (one call of 25 new records, every agreement
// known, as in BenchmarkStoreBatchInsert25) and which B-tree each page
// belongs to (the dbstat table). A WAL frame is one whole page, so this is
// what a record costs in bytes written, and where.
//
// It fails when a commit writes a page of any B-tree but usage_records and
// its two indexes (and page 1, whose header holds the file's page count):
// an index or table added to the hot path has to be decided, not slipped in
// (docs/storage.md says which query needs each one). -v prints the pages
// per commit by B-tree.
func TestWALPagesPerCommit(t *testing.T) {
	ctx := context.Background()
	const customers = 2000
	path := filepath.Join(t.TempDir(), "wal.db")
	st, err := sqlstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := Marketplace(customers, 1)
	if _, err := m.ApplyConcurrently(ctx, st, time.Now(), time.Hour, 4); err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(m, Region, "", "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	slot := int64(0)
	// Every agreement and dimension seen once: the steady state of a store
	// whose dictionaries hold what it meters.
	for ; slot < customers*int64(len(plan.SaaSDimensions)); slot += BatchSize {
		if _, err := st.RecordUsage(ctx, batchRecords(plan, slot, now), nil); err != nil {
			t.Fatal(err)
		}
	}
	// The log restarts after each checkpoint; keep the longest run of
	// commits seen.
	var wal []byte
	for range 150 {
		if _, err := st.RecordUsage(ctx, batchRecords(plan, slot, now), nil); err != nil {
			t.Fatal(err)
		}
		slot += BatchSize
		b, err := os.ReadFile(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		if len(walCommits(b)) > len(walCommits(wal)) {
			wal = b
		}
	}
	commits := walCommits(wal)
	if len(commits) < 20 {
		t.Fatalf("only %d commits in the log", len(commits))
	}

	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	owner := map[uint32]string{}
	rows, err := db.QueryContext(ctx, `SELECT name, pageno FROM dbstat`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var page uint32
		if err := rows.Scan(&name, &page); err != nil {
			t.Fatal(err)
		}
		owner[page] = name
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}

	hot := map[string]bool{"usage_records": true, "usage_records_id": true, "usage_records_dedup": true}
	perTree := map[string]int{}
	total := 0
	for _, pages := range commits {
		for _, p := range pages {
			name := owner[p]
			switch {
			case p == 1:
				name = "page 1 (header)"
			case name == "":
				name = "free or new since"
			case !hot[name]:
				t.Errorf("a BatchMeterUsage commit wrote page %d of %s", p, name)
			}
			perTree[name]++
			total++
		}
	}
	names := make([]string, 0, len(perTree))
	for n := range perTree {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%d commits of %d records, page size %d: %.1f pages (%.0f bytes) per commit\n",
		len(commits), BatchSize, walPageSize(wal), float64(total)/float64(len(commits)), float64(total*(walPageSize(wal)+24))/float64(len(commits)))
	for _, n := range names {
		fmt.Fprintf(&b, "  %-22s %.2f pages per commit\n", n, float64(perTree[n])/float64(len(commits)))
	}
	t.Log("\n" + b.String())
}

func walPageSize(wal []byte) int { return int(binary.BigEndian.Uint32(wal[8:12])) }

// walCommits parses a SQLite WAL file (https://sqlite.org/fileformat.html,
// "WAL File Format"): the page numbers of each committed transaction's
// frames, up to the first frame of an earlier generation (other salt).
func walCommits(wal []byte) [][]uint32 {
	if len(wal) < 32 {
		return nil
	}
	size, salt := walPageSize(wal), binary.BigEndian.Uint32(wal[16:20])
	var commits [][]uint32
	var cur []uint32
	for off := 32; off+24+size <= len(wal); off += 24 + size {
		h := wal[off : off+24]
		if binary.BigEndian.Uint32(h[8:12]) != salt {
			break
		}
		cur = append(cur, binary.BigEndian.Uint32(h[0:4]))
		if binary.BigEndian.Uint32(h[4:8]) != 0 { // a commit frame
			commits = append(commits, cur)
			cur = nil
		}
	}
	return commits
}
