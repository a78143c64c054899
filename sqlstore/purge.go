package sqlstore

import (
	"context"
	"time"

	"github.com/mpmeter/mpmeter"
)

// PurgeExpired implements mpmeter.Store: one short write transaction
// deleting at most limit rows of each table, found by their expiry index,
// so the writer is held for a few milliseconds at a time.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time, limit int) (mpmeter.PurgeResult, error) {
	var res mpmeter.PurgeResult
	if limit < 1 {
		limit = 1
	}
	err := s.write(ctx, "PurgeExpired", func(w *txn) error {
		r, err := w.exec(`DELETE FROM idempotency_tokens WHERE (scope, token) IN
			(SELECT scope, token FROM idempotency_tokens WHERE expires_at_ms <= ? ORDER BY expires_at_ms LIMIT ?)`, ms(now), limit)
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		if err != nil {
			return err
		}
		res.IdempotencyTokens = int(n)
		r, err = w.exec(`DELETE FROM registration_tokens WHERE token IN
			(SELECT token FROM registration_tokens WHERE expires_at_ms <= ? ORDER BY expires_at_ms LIMIT ?)`,
			ms(now.Add(-mpmeter.RegistrationTokenRetention)), limit)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		res.RegistrationTokens = int(n)
		return err
	})
	if err != nil {
		return mpmeter.PurgeResult{}, err
	}
	return res, nil
}
