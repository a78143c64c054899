package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Fault rules (fault_rules, migration 0010). Few rows, read by every node
// at most once a second (storecache), so nothing is prepared; the one hot
// statement is TakeFaultCount's, one UPDATE per count-rule injection.

const faultColumns = `id, operation, account_id, product_code, kind, rate, count, remaining, latency_ns, created_at_ms, expires_at_ms`

// AddFaultRule implements mpmeter.Store.
func (s *Store) AddFaultRule(ctx context.Context, r mpmeter.FaultRule) error {
	if err := mpmeter.CheckFaultRule(r); err != nil {
		return fmt.Errorf("sqlstore: fault rule %q: %w", r.ID, err)
	}
	var expires any
	if !r.ExpiresAt.IsZero() {
		expires = ms(r.ExpiresAt)
	}
	return s.write(ctx, "AddFaultRule", func(w *txn) error {
		res, err := w.exec(`INSERT INTO fault_rules (`+faultColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`,
			r.ID, r.Operation, r.AccountID, r.ProductCode, string(r.Kind), r.Rate, r.Count, r.Remaining,
			int64(r.Latency), ms(r.CreatedAt), expires)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("fault rule %q: %w", r.ID, mpmeter.ErrExists)
		}
		return nil
	})
}

func scanFaultRule(row scanner) (mpmeter.FaultRule, error) {
	var r mpmeter.FaultRule
	var kind string
	var latency, created int64
	var expires sql.NullInt64
	if err := row.Scan(&r.ID, &r.Operation, &r.AccountID, &r.ProductCode, &kind, &r.Rate, &r.Count, &r.Remaining,
		&latency, &created, &expires); err != nil {
		return mpmeter.FaultRule{}, err
	}
	r.Kind, r.Latency, r.CreatedAt = mpmeter.FaultKind(kind), time.Duration(latency), fromMS(created)
	if expires.Valid {
		r.ExpiresAt = fromMS(expires.Int64)
	}
	return r, nil
}

// FaultRule implements mpmeter.Store.
func (s *Store) FaultRule(ctx context.Context, id string) (mpmeter.FaultRule, error) {
	r, err := scanFaultRule(s.rdb.QueryRowContext(ctx, s.d.rebind(`SELECT `+faultColumns+` FROM fault_rules WHERE id = ?`), id))
	if err != nil {
		return mpmeter.FaultRule{}, readErr(ctx, err, "fault rule %q", id)
	}
	return r, nil
}

// FaultRules implements mpmeter.Store.
func (s *Store) FaultRules(ctx context.Context) ([]mpmeter.FaultRule, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+faultColumns+` FROM fault_rules ORDER BY created_at_ms, id`)
	if err != nil {
		return nil, readErr(ctx, err, "fault rules")
	}
	return collect(ctx, rows, "fault rules", scanFaultRule)
}

// DeleteFaultRule implements mpmeter.Store.
func (s *Store) DeleteFaultRule(ctx context.Context, id string) error {
	return s.write(ctx, "DeleteFaultRule", func(w *txn) error {
		res, err := w.exec(`DELETE FROM fault_rules WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("fault rule %q: %w", id, mpmeter.ErrNotFound)
		}
		return nil
	})
}

// DeleteFaultRules implements mpmeter.Store.
func (s *Store) DeleteFaultRules(ctx context.Context) (int, error) {
	var n int64
	err := s.write(ctx, "DeleteFaultRules", func(w *txn) error {
		res, err := w.exec(`DELETE FROM fault_rules`)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// TakeFaultCount implements mpmeter.Store: one UPDATE, outside any
// transaction. Every SET expression reads the row as it was, so last_take
// is what this take got; on PostgreSQL concurrent takes wait for the row
// lock and re-evaluate against the row the winner left, so together they
// never take more than the count.
func (s *Store) TakeFaultCount(ctx context.Context, id string, n int64) (int64, error) {
	if n <= 0 {
		return 0, nil
	}
	minFn := "MIN"
	if s.d.name == DialectPostgres {
		minFn = "LEAST"
	}
	q := s.d.rebind(`UPDATE fault_rules SET remaining = remaining - ` + minFn + `(remaining, ?), last_take = ` + minFn + `(remaining, ?)
		WHERE id = ? AND remaining > 0 RETURNING last_take`)
	var took int64
	err := s.wdb.QueryRowContext(ctx, q, n, n, id).Scan(&took)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("sqlstore: fault rule %q: %w", id, ctxOr(ctx, err))
	}
	return took, nil
}
