package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// ClockOffset returns the virtual clock's offset from wall time; 0 when it
// was never set.
func (s *Store) ClockOffset(ctx context.Context) (time.Duration, error) {
	var ns int64
	err := s.rdb.QueryRowContext(ctx, `SELECT offset_ns FROM service_clock WHERE id = 1`).Scan(&ns)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, readErr(ctx, err, "clock offset")
	}
	return time.Duration(ns), nil
}

// SetClockOffset stores the virtual clock's offset.
func (s *Store) SetClockOffset(ctx context.Context, d time.Duration) error {
	return s.write(ctx, "SetClockOffset", func(w *txn) error {
		_, err := w.exec(`INSERT INTO service_clock (id, offset_ns) VALUES (1, ?)
			ON CONFLICT (id) DO UPDATE SET offset_ns = excluded.offset_ns`, int64(d))
		return err
	})
}
