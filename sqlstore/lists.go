package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"math"

	"github.com/mpmeter/mpmeter"
)

// The admin side's reads: lists in key order from a cursor (the last key
// seen), each one index range scan. They run on the read pool, ad hoc
// (not prepared): the admin API is not a hot path.

// limitOf is p's LIMIT: all rows when p.Limit <= 0.
func limitOf(p mpmeter.Page) int {
	if p.Limit <= 0 {
		return math.MaxInt32
	}
	return p.Limit
}

// Account returns the account with this id.
func (s *Store) Account(ctx context.Context, id string) (mpmeter.Account, error) {
	a := mpmeter.Account{ID: id}
	err := s.rdb.QueryRowContext(ctx, s.d.rebind(`SELECT name, version FROM accounts WHERE id = ?`), id).Scan(&a.Name, &a.Version)
	if err != nil {
		return mpmeter.Account{}, readErr(ctx, err, "account %q", id)
	}
	return a, nil
}

// Accounts lists accounts by id.
func (s *Store) Accounts(ctx context.Context, p mpmeter.Page) ([]mpmeter.Account, error) {
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(`SELECT id, name, version FROM accounts WHERE id > ? ORDER BY id LIMIT ?`), p.After, limitOf(p))
	if err != nil {
		return nil, readErr(ctx, err, "accounts")
	}
	return collect(ctx, rows, "accounts", func(r scanner) (mpmeter.Account, error) {
		var a mpmeter.Account
		err := r.Scan(&a.ID, &a.Name, &a.Version)
		return a, err
	})
}

// AccessKeys lists the access keys matching f by id.
func (s *Store) AccessKeys(ctx context.Context, f mpmeter.AccessKeyFilter, p mpmeter.Page) ([]mpmeter.AccessKey, error) {
	q := `SELECT ` + accessKeyColumns + ` FROM access_keys WHERE id > ?`
	args := []any{p.After}
	if f.AccountID != "" {
		q += ` AND account_id = ?`
		args = append(args, f.AccountID)
	}
	if f.WorkloadID != "" {
		q += ` AND workload_id = ?`
		args = append(args, f.WorkloadID)
	}
	q += ` ORDER BY id LIMIT ?`
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(q), append(args, limitOf(p))...)
	if err != nil {
		return nil, readErr(ctx, err, "access keys")
	}
	return collect(ctx, rows, "access keys", func(r scanner) (mpmeter.AccessKey, error) {
		k, err := scanAccessKey(r)
		if err == nil {
			err = s.openAccessKey(&k)
		}
		return k, err
	})
}

// Products lists products by code, with their dimensions: one query over
// the page's products joined with their dimensions.
func (s *Store) Products(ctx context.Context, p mpmeter.Page) ([]mpmeter.Product, error) {
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(`SELECT `+productColumns+`
		FROM products p LEFT JOIN product_dimensions d ON d.product_code = p.code
		WHERE p.code IN (SELECT code FROM products WHERE code > ? ORDER BY code LIMIT ?)
		ORDER BY p.code, d.position`), p.After, limitOf(p))
	if err != nil {
		return nil, readErr(ctx, err, "products")
	}
	ps, err := scanProducts(rows)
	if err != nil {
		return nil, readErr(ctx, err, "products")
	}
	if ps == nil {
		ps = []mpmeter.Product{}
	}
	return ps, nil
}

// SubscriptionByAgreement returns the subscription with this agreement id.
func (s *Store) SubscriptionByAgreement(ctx context.Context, agreementID string) (mpmeter.Subscription, error) {
	sub, err := scanSubscription(s.rdb.QueryRowContext(ctx, s.d.rebind(`SELECT `+subscriptionColumns+` FROM subscriptions WHERE agreement_id = ?`), agreementID))
	if err != nil {
		return mpmeter.Subscription{}, readErr(ctx, err, "subscription %q", agreementID)
	}
	return sub, nil
}

// Subscriptions lists the subscriptions matching f by agreement id.
func (s *Store) Subscriptions(ctx context.Context, f mpmeter.SubscriptionFilter, p mpmeter.Page) ([]mpmeter.Subscription, error) {
	q := `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE agreement_id > ?`
	args := []any{p.After}
	for _, c := range []struct{ col, v string }{{"account_id", f.AccountID}, {"product_code", f.ProductCode}, {"status", f.Status}} {
		if c.v != "" {
			q += ` AND ` + c.col + ` = ?`
			args = append(args, c.v)
		}
	}
	q += ` ORDER BY agreement_id LIMIT ?`
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(q), append(args, limitOf(p))...)
	if err != nil {
		return nil, readErr(ctx, err, "subscriptions")
	}
	return collect(ctx, rows, "subscriptions", func(r scanner) (mpmeter.Subscription, error) { return scanSubscription(r) })
}

// RegistrationTokenByID returns the registration token with this ID.
func (s *Store) RegistrationTokenByID(ctx context.Context, id string) (mpmeter.RegistrationToken, error) {
	t, err := scanRegistrationToken(s.rdb.QueryRowContext(ctx, s.d.rebind(`SELECT `+registrationTokenColumns+` FROM registration_tokens WHERE id = ?`), id))
	if err != nil {
		return mpmeter.RegistrationToken{}, readErr(ctx, err, "registration token %q", id)
	}
	return t, nil
}

// RegistrationTokens lists registration tokens by ID.
func (s *Store) RegistrationTokens(ctx context.Context, p mpmeter.Page) ([]mpmeter.RegistrationToken, error) {
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(`SELECT `+registrationTokenColumns+` FROM registration_tokens
		WHERE id > ? ORDER BY id LIMIT ?`), p.After, limitOf(p))
	if err != nil {
		return nil, readErr(ctx, err, "registration tokens")
	}
	return collect(ctx, rows, "registration tokens", func(r scanner) (mpmeter.RegistrationToken, error) { return scanRegistrationToken(r) })
}

// collect scans every row with scan and closes rows; an empty result is an
// empty slice.
func collect[T any](ctx context.Context, rows *sql.Rows, what string, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, readErr(ctx, err, "%s", what)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, err, "%s", what)
	}
	return out, nil
}

// backfill gives rows stored before migration 0005 the values it added
// that are derived in Go: subscriptions' agreement ids and registration
// tokens' ids. Idempotent and deterministic, so nodes opening at once agree;
// a no-op (two index lookups) once done.
func (s *Store) backfill(ctx context.Context) error {
	fill := func(sel, upd string, derive func(string) string) error {
		rows, err := s.wdb.QueryContext(ctx, sel)
		if err != nil {
			return err
		}
		keys, err := collect(ctx, rows, "backfill", func(r scanner) (string, error) {
			var k string
			err := r.Scan(&k)
			return k, err
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := s.write(ctx, "backfill", func(w *txn) error {
				_, err := w.exec(upd, derive(k), k)
				return err
			}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := fill(`SELECT license_arn FROM subscriptions WHERE agreement_id IS NULL`,
		`UPDATE subscriptions SET agreement_id = ? WHERE license_arn = ? AND agreement_id IS NULL`, mpmeter.AgreementIDFor); err != nil {
		return fmt.Errorf("sqlstore: backfilling agreement ids: %w", err)
	}
	if err := fill(`SELECT token FROM registration_tokens WHERE id IS NULL`,
		`UPDATE registration_tokens SET id = ? WHERE token = ? AND id IS NULL`, mpmeter.RegistrationTokenID); err != nil {
		return fmt.Errorf("sqlstore: backfilling registration token ids: %w", err)
	}
	return nil
}
