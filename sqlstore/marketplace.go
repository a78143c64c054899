package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter"
)

// AccessKey returns the access key with this id.
func (s *Store) AccessKey(ctx context.Context, id string) (mpmeter.AccessKey, error) {
	k, err := scanAccessKey(s.rst[rAccessKey].QueryRowContext(ctx, id))
	if err != nil {
		return mpmeter.AccessKey{}, readErr(ctx, err, "access key %q", id)
	}
	if err := s.openAccessKey(&k); err != nil {
		return mpmeter.AccessKey{}, fmt.Errorf("sqlstore: %w", err)
	}
	return k, nil
}

// WorkloadAccessKeys returns the workload's long-term keys and its temporary
// keys that expire after validAt, ordered by id.
func (s *Store) WorkloadAccessKeys(ctx context.Context, workloadID string, validAt time.Time) ([]mpmeter.AccessKey, error) {
	rows, err := s.rst[rWorkloadAccessKeys].QueryContext(ctx, workloadID, ms(validAt))
	if err != nil {
		return nil, readErr(ctx, err, "access keys of workload %q", workloadID)
	}
	defer rows.Close()
	keys := []mpmeter.AccessKey{}
	for rows.Next() {
		k, err := scanAccessKey(rows)
		if err != nil {
			return nil, readErr(ctx, err, "access keys of workload %q", workloadID)
		}
		if err := s.openAccessKey(&k); err != nil {
			return nil, fmt.Errorf("sqlstore: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, err, "access keys of workload %q", workloadID)
	}
	return keys, nil
}

// scanAccessKey reads the accessKeyColumns of one row.
func scanAccessKey(row interface{ Scan(...any) error }) (mpmeter.AccessKey, error) {
	var k mpmeter.AccessKey
	var wid, platform, region, sessionToken, credentialsToken sql.NullString
	var expires sql.NullInt64
	err := row.Scan(&k.ID, &k.Secret, &k.AccountID, &wid, &platform, &region, &sessionToken, &expires, &credentialsToken)
	if err != nil {
		return mpmeter.AccessKey{}, err
	}
	if wid.Valid {
		k.Workload = &mpmeter.Workload{ID: wid.String, Platform: platform.String, Region: region.String}
	}
	k.SessionToken, k.CredentialsToken = sessionToken.String, credentialsToken.String
	if expires.Valid {
		k.ExpiresAt = fromMS(expires.Int64)
	}
	return k, nil
}

// Product returns the product with this code, its dimensions in the order
// they were put.
func (s *Store) Product(ctx context.Context, code string) (mpmeter.Product, error) {
	rows, err := s.rst[rProduct].QueryContext(ctx, code)
	if err != nil {
		return mpmeter.Product{}, readErr(ctx, err, "product %q", code)
	}
	defer rows.Close()
	p := mpmeter.Product{Code: code}
	found := false
	for rows.Next() {
		var dim sql.NullString
		var concurrent int64
		if err := rows.Scan(&p.SellerAccountID, &p.Type, &concurrent, &dim); err != nil {
			return mpmeter.Product{}, readErr(ctx, err, "product %q", code)
		}
		found = true
		p.ConcurrentAgreements = concurrent != 0
		if dim.Valid { // NULL: a product without dimensions
			p.Dimensions = append(p.Dimensions, dim.String)
		}
	}
	if err := rows.Err(); err != nil {
		return mpmeter.Product{}, readErr(ctx, err, "product %q", code)
	}
	if !found {
		return mpmeter.Product{}, readErr(ctx, sql.ErrNoRows, "product %q", code)
	}
	return p, nil
}

// Subscription returns the subscription with this license ARN.
func (s *Store) Subscription(ctx context.Context, licenseArn string) (mpmeter.Subscription, error) {
	sub, err := scanSubscription(s.rst[rSubscription].QueryRowContext(ctx, licenseArn))
	if err != nil {
		return mpmeter.Subscription{}, readErr(ctx, err, "subscription %q", licenseArn)
	}
	return sub, nil
}

// SubscriptionsByCustomers looks up many customers of one product in one
// query.
func (s *Store) SubscriptionsByCustomers(ctx context.Context, productCode string, ids []string) (map[string]mpmeter.Subscription, error) {
	out := make(map[string]mpmeter.Subscription, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	q := `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE product_code = ? AND customer_identifier IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
	args := make([]any, 0, len(ids)+1)
	args = append(args, productCode)
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, readErr(ctx, err, "subscriptions by customers")
	}
	defer rows.Close()
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, readErr(ctx, err, "subscriptions by customers")
		}
		out[sub.CustomerIdentifier] = sub
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, err, "subscriptions by customers")
	}
	return out, nil
}

// SubscriptionsOf returns the account's subscriptions to the product, oldest
// first (ties by license ARN).
func (s *Store) SubscriptionsOf(ctx context.Context, accountID, productCode string) ([]mpmeter.Subscription, error) {
	rows, err := s.rst[rSubscriptionsOf].QueryContext(ctx, accountID, productCode)
	if err != nil {
		return nil, readErr(ctx, err, "subscriptions of %q to %q", accountID, productCode)
	}
	defer rows.Close()
	subs := []mpmeter.Subscription{}
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, readErr(ctx, err, "subscriptions of %q to %q", accountID, productCode)
		}
		subs = append(subs, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, err, "subscriptions of %q to %q", accountID, productCode)
	}
	return subs, nil
}

func scanSubscription(row scanner) (mpmeter.Subscription, error) {
	var sub mpmeter.Subscription
	var cid sql.NullString
	var created int64
	if err := row.Scan(&sub.LicenseArn, &sub.AccountID, &sub.ProductCode, &cid, &sub.Status, &created); err != nil {
		return mpmeter.Subscription{}, err
	}
	sub.CustomerIdentifier, sub.CreatedAt = cid.String, fromMS(created)
	return sub, nil
}

// RegistrationToken returns the registration token with this value.
func (s *Store) RegistrationToken(ctx context.Context, token string) (mpmeter.RegistrationToken, error) {
	t := mpmeter.RegistrationToken{Token: token}
	var created, expires int64
	err := s.rst[rRegistrationToken].QueryRowContext(ctx, token).Scan(&t.AccountID, &t.ProductCode, &t.LicenseArn, &created, &expires)
	if err != nil {
		return mpmeter.RegistrationToken{}, readErr(ctx, err, "registration token")
	}
	t.CreatedAt, t.ExpiresAt = fromMS(created), fromMS(expires)
	return t, nil
}

// PutAccount creates or updates an account by id.
func (s *Store) PutAccount(ctx context.Context, a mpmeter.Account) error {
	return s.write(ctx, "PutAccount", func(w *txn) error {
		_, err := w.exec(`INSERT INTO accounts (id, name) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name`, a.ID, a.Name)
		return err
	})
}

// PutAccessKey creates or updates an access key by id. Its account must
// exist (a foreign key).
func (s *Store) PutAccessKey(ctx context.Context, k mpmeter.AccessKey) error {
	var wid, platform, region any // NULL when the key has no workload
	if k.Workload != nil {
		wid, platform, region = k.Workload.ID, k.Workload.Platform, k.Workload.Region
	}
	var expires any // NULL: never
	if !k.ExpiresAt.IsZero() {
		expires = ms(k.ExpiresAt)
	}
	return s.write(ctx, "PutAccessKey", func(w *txn) error {
		_, err := w.exec(`INSERT INTO access_keys (id, secret, account_id, workload_id, workload_platform, workload_region,
				session_token, expires_at_ms, credentials_token)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET
				secret = excluded.secret,
				account_id = excluded.account_id,
				workload_id = excluded.workload_id,
				workload_platform = excluded.workload_platform,
				workload_region = excluded.workload_region,
				session_token = excluded.session_token,
				expires_at_ms = excluded.expires_at_ms,
				credentials_token = excluded.credentials_token`,
			k.ID, s.sealValue(k.Secret, "secret", k.ID), k.AccountID, wid, platform, region,
			nullable(s.sealValue(k.SessionToken, "session_token", k.ID)), expires,
			nullable(s.sealValue(k.CredentialsToken, "credentials_token", k.ID)))
		return err
	})
}

// PutProduct creates or updates a product by code and replaces its
// dimensions, in one transaction. Its seller account must exist (a foreign
// key); a dimension named twice is an error.
func (s *Store) PutProduct(ctx context.Context, p mpmeter.Product) error {
	return s.write(ctx, "PutProduct", func(w *txn) error {
		// An upsert, not INSERT OR REPLACE: replacing would delete the row,
		// which the subscriptions' foreign keys forbid.
		concurrent := 0
		if p.ConcurrentAgreements {
			concurrent = 1
		}
		if _, err := w.exec(`INSERT INTO products (code, seller_account_id, type, concurrent_agreements) VALUES (?, ?, ?, ?)
			ON CONFLICT (code) DO UPDATE SET seller_account_id = excluded.seller_account_id, type = excluded.type,
				concurrent_agreements = excluded.concurrent_agreements`,
			p.Code, p.SellerAccountID, p.Type, concurrent); err != nil {
			return err
		}
		if _, err := w.exec(`DELETE FROM product_dimensions WHERE product_code = ?`, p.Code); err != nil {
			return err
		}
		for i, d := range p.Dimensions {
			if _, err := w.exec(`INSERT INTO product_dimensions (product_code, position, name) VALUES (?, ?, ?)`,
				p.Code, i, d); err != nil {
				return fmt.Errorf("dimension %q: %w", d, err)
			}
		}
		return nil
	})
}

// PutSubscription creates or updates a subscription by license ARN. The
// first put's CreatedAt is kept; the caller always sets it (a zero CreatedAt
// is stored as given, as the zero time). A CustomerIdentifier another
// subscription of the product has is an error (a unique constraint); an
// empty one is stored as NULL and never clashes. Its account and product
// must exist (foreign keys).
func (s *Store) PutSubscription(ctx context.Context, sub mpmeter.Subscription) error {
	return s.write(ctx, "PutSubscription", func(w *txn) error {
		_, err := w.exec(`INSERT INTO subscriptions (license_arn, account_id, product_code, customer_identifier, status, created_at_ms)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (license_arn) DO UPDATE SET
				account_id = excluded.account_id,
				product_code = excluded.product_code,
				customer_identifier = excluded.customer_identifier,
				status = excluded.status`,
			sub.LicenseArn, sub.AccountID, sub.ProductCode, nullable(sub.CustomerIdentifier), sub.Status, ms(sub.CreatedAt))
		return err
	})
}

// PutRegistrationToken creates or updates a registration token by value.
// Its account and product must exist (foreign keys).
func (s *Store) PutRegistrationToken(ctx context.Context, t mpmeter.RegistrationToken) error {
	return s.write(ctx, "PutRegistrationToken", func(w *txn) error {
		_, err := w.exec(`INSERT INTO registration_tokens (token, account_id, product_code, license_arn, created_at_ms, expires_at_ms)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (token) DO UPDATE SET
				account_id = excluded.account_id,
				product_code = excluded.product_code,
				license_arn = excluded.license_arn,
				created_at_ms = excluded.created_at_ms,
				expires_at_ms = excluded.expires_at_ms`,
			t.Token, t.AccountID, t.ProductCode, t.LicenseArn, ms(t.CreatedAt), ms(t.ExpiresAt))
		return err
	})
}

// SigningKeys returns every signing key version, in version order (versions
// are assigned increasing, so oldest first).
func (s *Store) SigningKeys(ctx context.Context) ([]mpmeter.SigningKey, error) {
	rows, err := s.rst[rSigningKeys].QueryContext(ctx)
	if err != nil {
		return nil, readErr(ctx, err, "signing keys")
	}
	defer rows.Close()
	keys := []mpmeter.SigningKey{}
	for rows.Next() {
		var k mpmeter.SigningKey
		var created int64
		if err := rows.Scan(&k.Version, &k.PrivateKeyPEM, &k.PublicKeyPEM, &created); err != nil {
			return nil, readErr(ctx, err, "signing keys")
		}
		k.CreatedAt = fromMS(created)
		if err := s.openSigningKey(&k); err != nil {
			return nil, fmt.Errorf("sqlstore: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, err, "signing keys")
	}
	return keys, nil
}

// AddSigningKey stores a new key version; an existing version is an error
// wrapping mpmeter.ErrExists, and the stored key is left as it was.
func (s *Store) AddSigningKey(ctx context.Context, k mpmeter.SigningKey) error {
	return s.write(ctx, "AddSigningKey", func(w *txn) error {
		res, err := w.exec(`INSERT INTO signing_keys (version, private_key_pem, public_key_pem, created_at_ms)
			VALUES (?, ?, ?, ?) ON CONFLICT (version) DO NOTHING`,
			k.Version, nonNil(s.sealSigningKey(k)), nonNil(k.PublicKeyPEM), ms(k.CreatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("signing key version %d: %w", k.Version, mpmeter.ErrExists)
		}
		return nil
	})
}

// nonNil binds a nil key as an empty BLOB rather than NULL, which the NOT
// NULL columns would refuse.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
