package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mpmeter/mpmeter"
)

// PutEntitlements replaces the subscription's entitlements in one
// transaction. A subscription that does not exist is an error wrapping
// mpmeter.ErrNotFound; a dimension named twice fails the primary key.
func (s *Store) PutEntitlements(ctx context.Context, licenseArn string, ents []mpmeter.Entitlement) error {
	return s.write(ctx, "PutEntitlements", func(w *txn) error {
		// The subscription's row is locked first, so concurrent replacements
		// (nodes applying one seed at once) take turns instead of both
		// inserting after both deleted.
		var one int
		err := w.tx.QueryRowContext(w.ctx, w.s.d.rebind(`SELECT 1 FROM subscriptions WHERE license_arn = ?`+w.s.d.forUpdate), licenseArn).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("subscription %q: %w", licenseArn, mpmeter.ErrNotFound)
		} else if err != nil {
			return err
		}
		if _, err := w.exec(`DELETE FROM entitlements WHERE license_arn = ?`, licenseArn); err != nil {
			return err
		}
		for _, e := range ents {
			kind, text, err := entitlementValueText(e.Value)
			if err != nil {
				return fmt.Errorf("entitlement %q: %w", e.Dimension, err)
			}
			var expires any // NULL: no expiration date
			if !e.ExpiresAt.IsZero() {
				expires = ms(e.ExpiresAt)
			}
			if _, err := w.exec(`INSERT INTO entitlements (license_arn, dimension, value_type, value, expires_at_ms) VALUES (?, ?, ?, ?, ?)`,
				licenseArn, e.Dimension, kind, text, expires); err != nil {
				return fmt.Errorf("entitlement %q: %w", e.Dimension, err)
			}
		}
		return nil
	})
}

// Entitlements returns the entitlements matching f in (license ARN,
// dimension) order. Each filter list becomes one IN (...) condition.
func (s *Store) Entitlements(ctx context.Context, f mpmeter.EntitlementFilter) ([]mpmeter.Entitlement, error) {
	q := strings.Builder{}
	q.WriteString(`SELECT e.license_arn, e.dimension, e.value_type, e.value, e.expires_at_ms,
		s.product_code, s.account_id, s.customer_identifier
		FROM entitlements e JOIN subscriptions s ON s.license_arn = e.license_arn
		WHERE s.product_code = ?`)
	args := []any{f.ProductCode}
	in := func(column string, values []string) {
		if len(values) == 0 {
			return
		}
		q.WriteString(` AND ` + column + ` IN (?` + strings.Repeat(", ?", len(values)-1) + `)`)
		for _, v := range values {
			args = append(args, v)
		}
	}
	in("s.customer_identifier", f.CustomerIdentifiers)
	in("s.account_id", f.CustomerAccountIDs)
	in("e.dimension", f.Dimensions)
	in("e.license_arn", f.LicenseArns)
	if !f.ActiveAt.IsZero() {
		q.WriteString(` AND s.status = ? AND (e.expires_at_ms IS NULL OR e.expires_at_ms > ?)`)
		args = append(args, mpmeter.SubscriptionActive, ms(f.ActiveAt))
	}
	if f.After != nil {
		// Row-value comparison: both dialects have it, and it walks the
		// primary key from the position on.
		q.WriteString(` AND (e.license_arn, e.dimension) > (?, ?)`)
		args = append(args, f.After.LicenseArn, f.After.Dimension)
	}
	q.WriteString(` ORDER BY e.license_arn, e.dimension`)
	if f.Limit > 0 {
		q.WriteString(` LIMIT ` + strconv.Itoa(f.Limit))
	}
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(q.String()), args...)
	if err != nil {
		return nil, readErr(ctx, err, "entitlements of %q", f.ProductCode)
	}
	defer rows.Close()
	out := []mpmeter.Entitlement{}
	for rows.Next() {
		var e mpmeter.Entitlement
		var kind, text string
		var expires sql.NullInt64
		var cid sql.NullString
		if err := rows.Scan(&e.LicenseArn, &e.Dimension, &kind, &text, &expires, &e.ProductCode, &e.CustomerAccountID, &cid); err != nil {
			return nil, readErr(ctx, err, "entitlements of %q", f.ProductCode)
		}
		if e.Value, err = entitlementValueFrom(kind, text); err != nil {
			return nil, fmt.Errorf("sqlstore: entitlement %q of %q: %w", e.Dimension, e.LicenseArn, err)
		}
		if expires.Valid {
			e.ExpiresAt = fromMS(expires.Int64)
		}
		e.CustomerIdentifier = cid.String
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, err, "entitlements of %q", f.ProductCode)
	}
	return out, nil
}

// entitlementValueText is the stored form of a value: its type and text.
func entitlementValueText(v mpmeter.EntitlementValue) (kind, text string, err error) {
	if err := mpmeter.CheckEntitlementValue(v); err != nil {
		return "", "", err
	}
	switch {
	case v.IntegerValue != nil:
		return "integer", strconv.FormatInt(*v.IntegerValue, 10), nil
	case v.DoubleValue != nil:
		return "double", strconv.FormatFloat(*v.DoubleValue, 'g', -1, 64), nil
	case v.BooleanValue != nil:
		return "boolean", strconv.FormatBool(*v.BooleanValue), nil
	}
	return "string", *v.StringValue, nil
}

// entitlementValueFrom reads a stored value back.
func entitlementValueFrom(kind, text string) (mpmeter.EntitlementValue, error) {
	switch kind {
	case "integer":
		n, err := strconv.ParseInt(text, 10, 64)
		return mpmeter.EntitlementInteger(n), err
	case "double":
		f, err := strconv.ParseFloat(text, 64)
		return mpmeter.EntitlementDouble(f), err
	case "boolean":
		b, err := strconv.ParseBool(text)
		return mpmeter.EntitlementBoolean(b), err
	case "string":
		return mpmeter.EntitlementString(text), nil
	}
	return mpmeter.EntitlementValue{}, fmt.Errorf("unknown value type %q", kind)
}
