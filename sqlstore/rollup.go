package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter"
)

// The daily usage rollup (migration 0014, docs/storage.md). For every UTC
// day that no call can store usage in any more, usage_daily_sums holds the
// sums of its records per (party, dimension, kind), and usage_rolled_days
// says which days those are. Summaries read rolled-up days from the sums and
// every other time from the records (usageread.go), so a month is ~30 ×
// (parties × dimensions) rows instead of every record.
//
// Why days: the service's dedup keys allow one record per (agreement or
// workload, dimension, hour), which is one record per (party, dimension,
// hour); sums per hour would have as many rows as the records they sum.
//
// The invariant, which every summary rests on: a day has sums exactly when
// its usage_rolled_days row has state rolledUp, and then they are the sums
// of the day's stored records. Three things keep it:
//
//  1. Rolling up (RollUpUsage) is three short transactions: claim the day
//     (a row with state claimed), sum its records on the read pool, then
//     flip the row to rolledUp and write the sums — only if the row is
//     still the same claim. The writer is held for the claim and the
//     flip, never for the summing.
//  2. A write into a claimed or rolled-up day deletes the day's row and
//     sums in the same transaction (unrollDays), so the day is read from
//     records again and a flip of that claim finds nothing to flip.
//  3. The sums are taken after every write that could be missing from them
//     has committed: see claimDays (on PostgreSQL, where writers are
//     concurrent, the claim waits for them).
//
// Records are never deleted or changed, so between 2's un-rolls a day's
// records only grow, and only through 2.

// dayMS is a UTC day in milliseconds.
const dayMS = int64(24 * time.Hour / time.Millisecond)

// dayOf returns the start of the UTC day holding the unix millisecond v
// (rounded down, also before 1970).
func dayOf(v int64) int64 { return v - ((v%dayMS)+dayMS)%dayMS }

// usage_rolled_days.state.
const (
	dayClaimed  = 0
	dayRolledUp = 1
)

// staleClaim is how old (by the service clock, either way) a claim must be
// before another roller may take it over: its roller crashed or lost its
// database between claiming and flipping. A live roller takes seconds.
const staleClaim = 10 * time.Minute

// maxEmptyDays bounds a run of days without records claimed in one step.
const maxEmptyDays = 366

// rollupLockTimeout bounds PostgreSQL's wait for writers in claimDays.
const rollupLockTimeout = 100 * time.Millisecond

// rollupInsertChunk is how many sums one INSERT writes (6 parameters each).
const rollupInsertChunk = 500

// errLostClaim: another roller claimed one of the days first.
var errLostClaim = errors.New("sqlstore: days claimed by another roller")

// rollupCandidate is what a roller works on next: days [from, to), to be
// claimed anew, or the one day from whose stale claim takeOver names.
type rollupCandidate struct {
	from, to int64
	takeOver *int64
}

// RollUpUsage rolls up the first UTC day at or after after (zero: the first
// stored record's day) that is neither rolled up nor claimed and ends by
// closedBefore — or, when days without records come first, that run of days
// (at most maxEmptyDays) — in three short transactions (see the top of this
// file). now is the service clock's, stored with the claim. The caller
// (package rollup) chooses closedBefore so that no call of the service can
// store usage in those days any more; the store knows nothing of the
// service's windows, and a write into a rolled-up day is still right, only
// slower to read until the day is rolled up again.
//
// It returns the days it worked on (zero From and To when there were none)
// and how many it rolled up: none when another roller claimed them first.
// Calling it again with after = the returned To continues.
func (s *Store) RollUpUsage(ctx context.Context, after, closedBefore, now time.Time) (mpmeter.UsageRollupStep, error) {
	var step mpmeter.UsageRollupStep
	c, ok, err := s.nextRollup(ctx, after, closedBefore, now)
	if err != nil {
		return step, readErr(ctx, err, "usage rollup: next day")
	}
	if !ok {
		return step, nil
	}
	step.From, step.To = fromMS(c.from), fromMS(c.to)
	claim := rand.Int64()
	if err := s.claimDays(ctx, c, claim, ms(now)); errors.Is(err, errLostClaim) {
		return step, nil
	} else if err != nil {
		return step, err
	}
	sums, err := s.sumDays(ctx, c.from, c.to)
	if err != nil {
		err = readErr(ctx, err, "usage rollup: summing %s", step.From.Format(time.DateOnly))
	} else {
		step.Days, step.Records, step.Lines, err = s.flipDays(ctx, c, claim, sums)
	}
	if err != nil {
		s.releaseDays(ctx, c, claim)
		return step, err
	}
	return step, nil
}

// nextRollup finds what RollUpUsage works on, reading on the read pool:
// from the first stored record at or after after, the first day that has no
// row in usage_rolled_days (or a stale claim), before the closed limit.
func (s *Store) nextRollup(ctx context.Context, after, closedBefore, now time.Time) (rollupCandidate, bool, error) {
	limit := dayOf(ms(closedBefore)) // days before it end by closedBefore
	start := int64(0)                // days before 1970 are never rolled up
	if !after.IsZero() {
		start = max(start, dayOf(ms(after)+dayMS-1))
	}
	first, ok, err := s.firstRecordFrom(ctx, start)
	if err != nil || !ok {
		return rollupCandidate{}, false, err
	}
	if after.IsZero() {
		start = dayOf(first)
	}
	if start >= limit {
		return rollupCandidate{}, false, nil
	}
	// Walk the rows from start in day order up to the first day without
	// one. Normally every closed day has a row, so from a round's second
	// step on (after = the last step's To) this reads one row or none.
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(`SELECT day_ms, state, claim, claimed_at_ms FROM usage_rolled_days
		WHERE day_ms >= ? AND day_ms < ? ORDER BY day_ms`), start, limit)
	if err != nil {
		return rollupCandidate{}, false, err
	}
	defer rows.Close()
	day, nextRow := start, limit
	for rows.Next() {
		var d, state, claim, claimedAt int64
		if err := rows.Scan(&d, &state, &claim, &claimedAt); err != nil {
			return rollupCandidate{}, false, err
		}
		if d > day {
			nextRow = d
			break
		}
		if age := ms(now) - claimedAt; state == dayClaimed && (age >= staleClaim.Milliseconds() || -age >= staleClaim.Milliseconds()) {
			return rollupCandidate{from: day, to: day + dayMS, takeOver: &claim}, true, nil
		}
		day += dayMS
	}
	if err := rows.Err(); err != nil {
		return rollupCandidate{}, false, err
	}
	rows.Close()
	if day >= limit {
		return rollupCandidate{}, false, nil
	}
	next, ok, err := s.firstRecordFrom(ctx, day)
	if err != nil || !ok {
		return rollupCandidate{}, false, err // no record from day on: nothing to sum
	}
	c := rollupCandidate{from: day, to: day + dayMS}
	if nd := dayOf(next); nd > day {
		// Days without records up to the next one, claimed together so
		// that the rolled-up days stay one run for the readers.
		c.to = min(nd, nextRow, limit, day+maxEmptyDays*dayMS)
	}
	return c, true, nil
}

// firstRecordFrom returns the first stored record's timestamp at or after
// the unix millisecond from: one step into the time index.
func (s *Store) firstRecordFrom(ctx context.Context, from int64) (int64, bool, error) {
	var v sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, s.d.rebind(`SELECT MIN(timestamp_ms) FROM usage_records WHERE timestamp_ms >= ?`), from).Scan(&v)
	return v.Int64, v.Valid, err
}

// claimDays claims c's days for this roller (a claimed row per day, or the
// stale claim replaced by ours), or fails with errLostClaim.
//
// Why the sums taken after the claim miss no record (point 3 above): a
// record of a claimed day is either committed before the claim commits, and
// so seen by the summing that follows, or its transaction probes
// usage_rolled_days after the claim has committed (unrollDays runs after the
// INSERT), finds the claim and deletes it. What must not happen is a write
// that probed before the claim committed but commits after the summing
// began. SQLite has one writer: the claim's transaction runs between
// writers', never beside one. PostgreSQL runs writers concurrently, so the
// claim first takes usage_records in SHARE mode (waitForWriters), which
// waits for every transaction that has inserted records (an INSERT holds ROW
// EXCLUSIVE until its transaction ends) and makes those that insert next
// wait until the claim commits; their probe, a later statement, then sees
// the claim. Only writers wait, for the claim's few milliseconds (bounded by
// rollupLockTimeout), once per day rolled up; readers never do.
//
// This holds whatever the writers' clocks say: a node whose virtual clock
// is behind another's, a clock set back or forward while writes are in
// flight, a caller of Store.RecordUsage with any timestamp.
func (s *Store) claimDays(ctx context.Context, c rollupCandidate, claim, now int64) error {
	return s.write(ctx, "RollUpUsage", func(w *txn) error {
		for _, q := range s.d.waitForWriters {
			if _, err := w.exec(q); err != nil {
				return err
			}
		}
		if c.takeOver != nil {
			r, err := w.exec(`UPDATE usage_rolled_days SET claim = ?, claimed_at_ms = ? WHERE day_ms = ? AND state = ? AND claim = ?`,
				claim, now, c.from, dayClaimed, *c.takeOver)
			return claimedAll(r, err, 1)
		}
		var b strings.Builder
		args := make([]any, 0, 4*int((c.to-c.from)/dayMS))
		b.WriteString(`INSERT INTO usage_rolled_days (day_ms, state, claim, claimed_at_ms) VALUES `)
		for d := c.from; d < c.to; d += dayMS {
			if d > c.from {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?)")
			args = append(args, d, dayClaimed, claim, now)
		}
		b.WriteString(` ON CONFLICT (day_ms) DO NOTHING`)
		r, err := w.exec(b.String(), args...)
		return claimedAll(r, err, int64(len(args)/4))
	})
}

// claimedAll is errLostClaim unless r affected want rows.
func claimedAll(r sql.Result, err error, want int64) error {
	if err != nil {
		return err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n != want {
		return errLostClaim // rolls the transaction back: nothing claimed
	}
	return nil
}

// daySum is one row of usage_daily_sums.
type daySum struct {
	day, party, dimension, kind, quantity, records int64
}

// sumDays sums the records of days [from, to) per day, party, dimension and
// kind, on the read pool (one index range; no lock held). Memory and the
// flip's write grow with the distinct (party, dimension, kind) of a day, not
// with its records.
func (s *Store) sumDays(ctx context.Context, from, to int64) ([]daySum, error) {
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(`SELECT r.timestamp_ms / `+strconv.FormatInt(dayMS, 10)+`, r.party_id, r.dimension_id, r.kind,
		CAST(SUM(r.quantity) AS bigint), COUNT(*) FROM usage_records r
		WHERE r.timestamp_ms >= ? AND r.timestamp_ms < ? GROUP BY 1, 2, 3, 4`), from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var sums []daySum
	for rows.Next() {
		var d daySum
		if err := rows.Scan(&d.day, &d.party, &d.dimension, &d.kind, &d.quantity, &d.records); err != nil {
			return nil, err
		}
		d.day *= dayMS // from >= 0: the division rounded down
		sums = append(sums, d)
	}
	return sums, rows.Err()
}

// flipDays marks c's days that are still claimed by claim as rolled up and
// writes their sums, in one transaction. A day a write un-rolled since the
// claim has no row any more and is left alone (on PostgreSQL the UPDATE
// waits for such a write's row lock, and then finds the row gone; a write
// that comes after the flip deletes the flipped row and the sums it finds
// committed).
func (s *Store) flipDays(ctx context.Context, c rollupCandidate, claim int64, sums []daySum) (days int, records int64, lines int, err error) {
	err = s.write(ctx, "RollUpUsage", func(w *txn) error {
		days, records, lines = 0, 0, 0
		rows, err := w.tx.QueryContext(w.ctx, s.d.rebind(`UPDATE usage_rolled_days SET state = ?
			WHERE day_ms >= ? AND day_ms < ? AND claim = ? AND state = ? RETURNING day_ms`), dayRolledUp, c.from, c.to, claim, dayClaimed)
		if err != nil {
			return err
		}
		flipped := map[int64]bool{}
		for rows.Next() {
			var d int64
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return err
			}
			flipped[d] = true
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		days = len(flipped)
		var chunk []daySum
		flush := func() error {
			if len(chunk) == 0 {
				return nil
			}
			q := `INSERT INTO usage_daily_sums (day_ms, party_id, dimension_id, kind, quantity, records) VALUES (?, ?, ?, ?, ?, ?)` +
				strings.Repeat(", (?, ?, ?, ?, ?, ?)", len(chunk)-1)
			args := make([]any, 0, 6*len(chunk))
			for _, d := range chunk {
				args = append(args, d.day, d.party, d.dimension, d.kind, d.quantity, d.records)
			}
			chunk = chunk[:0]
			_, err := w.exec(q, args...)
			return err
		}
		for _, d := range sums {
			if !flipped[d.day] {
				continue
			}
			records += d.records
			lines++
			if chunk = append(chunk, d); len(chunk) == rollupInsertChunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return flush()
	})
	return days, records, lines, err
}

// releaseDays drops what is left of a claim after a failed step, so that the
// days need not wait staleClaim to be rolled up. Best effort: a claim left
// behind is only taken over later.
func (s *Store) releaseDays(ctx context.Context, c rollupCandidate, claim int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = s.write(ctx, "RollUpUsage", func(w *txn) error {
		_, err := w.exec(`DELETE FROM usage_rolled_days WHERE day_ms >= ? AND day_ms < ? AND claim = ? AND state = ?`,
			c.from, c.to, claim, dayClaimed)
		return err
	})
}

// unrollDays keeps the rollup equal to the records when recs, just written
// in this transaction, fall in days that are rolled up or claimed: it
// deletes those days' rows in usage_rolled_days and their sums, so they are
// read from the records until a roller rolls them up again. The service
// stores usage only in days that are not closed yet, so normally this is
// one probe of a small table that finds nothing; it finds something after
// the virtual clock was set back, or for a direct Store.RecordUsage with an
// old timestamp.
//
// It must run after the INSERT into usage_records in the same transaction
// (claimDays says why).
func unrollDays(w *txn, recs []mpmeter.MeteringRecord) error {
	if len(recs) == 0 {
		return nil
	}
	days := make([]int64, len(recs))
	for i := range recs {
		days[i] = dayOf(ms(recs[i].Timestamp))
	}
	lo, hi := slices.Min(days), slices.Max(days)
	var one int
	err := w.stmt(wRolledDayProbe).QueryRowContext(w.ctx, lo, hi).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("usage rollup probe: %w", err)
	}
	slices.Sort(days)
	days = slices.Compact(days)
	in := "(?" + strings.Repeat(", ?", len(days)-1) + ")"
	args := make([]any, len(days))
	for i, d := range days {
		args[i] = d
	}
	// The row first, then the sums: the order a flip writes them in, so
	// that on PostgreSQL a flip and an un-roll of one day serialize on the
	// row (see flipDays).
	if _, err := w.exec(`DELETE FROM usage_rolled_days WHERE day_ms IN `+in, args...); err != nil {
		return err
	}
	_, err = w.exec(`DELETE FROM usage_daily_sums WHERE day_ms IN `+in, args...)
	return err
}
