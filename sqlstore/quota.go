package sqlstore

import (
	"context"
	"fmt"
	"strings"
)

// takeTokenSQL refills a bucket by the database's clock and takes a token
// when it holds one, in one statement: a new bucket starts full. The row
// lock of the upsert serialises every node's takes of one bucket, so a
// fleet grants exactly what one bucket would. NOW_US is the dialect's
// clock in unix microseconds; REFILL the tokens held now.
const takeTokenSQL = `INSERT INTO quota_buckets (key, tokens, updated_us, granted)
	VALUES (?, CAST(? AS DOUBLE PRECISION) - 1, NOW_US, 1)
	ON CONFLICT (key) DO UPDATE SET
		tokens = CASE WHEN REFILL >= 1 THEN REFILL - 1 ELSE REFILL END,
		granted = CASE WHEN REFILL >= 1 THEN 1 ELSE 0 END,
		updated_us = excluded.updated_us
	RETURNING granted, tokens`

// refill is the tokens a bucket holds at excluded.updated_us; its two
// parameters are the rate and the burst.
const refill = `MIN_FN(CAST(? AS DOUBLE PRECISION), quota_buckets.tokens + CAST(? AS DOUBLE PRECISION) *
	MAX_FN(0, excluded.updated_us - quota_buckets.updated_us) / 1000000.0)`

func (s *Store) takeTokenQuery() string {
	now, minFn, maxFn := `CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)`, "MIN", "MAX"
	if s.d.name == DialectPostgres {
		now, minFn, maxFn = `(extract(epoch from clock_timestamp()) * 1000000)::bigint`, "LEAST", "GREATEST"
	}
	r := strings.NewReplacer("MIN_FN", minFn, "MAX_FN", maxFn).Replace(refill)
	q := strings.NewReplacer("NOW_US", now, "REFILL", r).Replace(takeTokenSQL)
	return s.d.rebind(q)
}

// TakeToken implements ratelimit.SharedBuckets: it refills key's bucket at
// rate tokens a second up to burst (by the database's clock, which every
// node shares), takes a token when there is one, and reports whether it
// did and the tokens left. One statement, outside any transaction.
func (s *Store) TakeToken(ctx context.Context, key string, rate, burst float64) (bool, float64, error) {
	// key, burst for a new row; then REFILL four times (three in tokens'
	// CASE, one in granted's), each taking burst, rate.
	args := []any{key, burst}
	for range 4 {
		args = append(args, burst, rate)
	}
	var granted int64
	var tokens float64
	if err := s.wdb.QueryRowContext(ctx, s.quotaSQL, args...).Scan(&granted, &tokens); err != nil {
		return false, 0, fmt.Errorf("sqlstore: quota bucket %q: %w", key, ctxOr(ctx, err))
	}
	return granted == 1, tokens, nil
}

func ctxOr(ctx context.Context, err error) error {
	if cerr := ctxErr(ctx); cerr != nil {
		return cerr
	}
	return err
}
