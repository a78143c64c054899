package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

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
	var expires, revoked sql.NullInt64
	err := row.Scan(&k.ID, &k.Secret, &k.AccountID, &wid, &platform, &region, &sessionToken, &expires, &credentialsToken, &revoked, &k.Version)
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
	if revoked.Valid {
		k.RevokedAt = fromMS(revoked.Int64)
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
	ps, err := scanProducts(rows)
	if err != nil {
		return mpmeter.Product{}, readErr(ctx, err, "product %q", code)
	}
	if len(ps) == 0 {
		return mpmeter.Product{}, readErr(ctx, sql.ErrNoRows, "product %q", code)
	}
	return ps[0], nil
}

// scanProducts reads rows of productColumns, ordered by product and then
// dimension position, into products, and closes rows.
func scanProducts(rows *sql.Rows) ([]mpmeter.Product, error) {
	defer rows.Close()
	var out []mpmeter.Product
	for rows.Next() {
		var p mpmeter.Product
		var dim, desc, unit, price sql.NullString
		var concurrent int64
		var fulfillment sql.NullString
		if err := rows.Scan(&p.Code, &p.SellerAccountID, &p.Type, &concurrent, &p.Version, &fulfillment, &dim, &desc, &unit, &price); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Code != p.Code {
			p.ConcurrentAgreements, p.FulfillmentURL = concurrent != 0, fulfillment.String
			out = append(out, p)
		}
		last := &out[len(out)-1]
		if !dim.Valid { // NULL: a product without dimensions
			continue
		}
		last.Dimensions = append(last.Dimensions, dim.String)
		if d := (mpmeter.DimensionDetails{Description: desc.String, Unit: unit.String, PricePerUnit: price.String}); d != (mpmeter.DimensionDetails{}) {
			if last.DimensionDetails == nil {
				last.DimensionDetails = map[string]mpmeter.DimensionDetails{}
			}
			last.DimensionDetails[dim.String] = d
		}
	}
	return out, rows.Err()
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
	var cid, agreement, offer sql.NullString
	var created int64
	var freeTrial int64
	var ended sql.NullInt64
	if err := row.Scan(&sub.LicenseArn, &sub.AccountID, &sub.ProductCode, &cid, &sub.Status, &created,
		&agreement, &offer, &freeTrial, &ended, &sub.Version); err != nil {
		return mpmeter.Subscription{}, err
	}
	sub.CustomerIdentifier, sub.CreatedAt = cid.String, fromMS(created)
	sub.AgreementID, sub.OfferID, sub.FreeTrial = agreement.String, offer.String, freeTrial != 0
	if !agreement.Valid {
		sub.AgreementID = mpmeter.AgreementIDFor(sub.LicenseArn) // a row the backfill has not reached yet
	}
	if ended.Valid {
		sub.EndedAt = fromMS(ended.Int64)
	}
	return sub, nil
}

// RegistrationToken returns the registration token with this value.
func (s *Store) RegistrationToken(ctx context.Context, token string) (mpmeter.RegistrationToken, error) {
	t, err := scanRegistrationToken(s.rst[rRegistrationToken].QueryRowContext(ctx, token))
	if err != nil {
		return mpmeter.RegistrationToken{}, readErr(ctx, err, "registration token")
	}
	return t, nil
}

func scanRegistrationToken(row scanner) (mpmeter.RegistrationToken, error) {
	var t mpmeter.RegistrationToken
	var created, expires int64
	if err := row.Scan(&t.Token, &t.AccountID, &t.ProductCode, &t.LicenseArn, &created, &expires); err != nil {
		return mpmeter.RegistrationToken{}, err
	}
	t.ID = mpmeter.RegistrationTokenID(t.Token)
	t.CreatedAt, t.ExpiresAt = fromMS(created), fromMS(expires)
	return t, nil
}

// PutAccount creates or updates an account by id (a versioned write).
func (s *Store) PutAccount(ctx context.Context, a mpmeter.Account) error {
	return s.write(ctx, "PutAccount", func(w *txn) error {
		return w.putVersioned(a.Version, versionedPut{
			table: "accounts", key: "id", keyValue: a.ID,
			insert: `INSERT INTO accounts (id, name) VALUES (?, ?)`, insertArgs: []any{a.ID, a.Name},
			set: `name = ?`, setArgs: []any{a.Name},
			upsertSet: `name = excluded.name`,
			changed:   distinct("accounts", "name"),
		})
	})
}

// PutAccessKey creates or updates an access key by id (a versioned write).
// Its account must exist (a foreign key). A stored revocation is kept.
// Secrets are sealed (sealValue) with a fresh nonce each time, so "changed"
// is decided on the opened values: a version-0 put of what is stored
// already (the seed applied again) writes nothing and keeps the version.
func (s *Store) PutAccessKey(ctx context.Context, k mpmeter.AccessKey) error {
	var wid, platform, region any // NULL when the key has no workload
	if k.Workload != nil {
		wid, platform, region = k.Workload.ID, k.Workload.Platform, k.Workload.Region
	}
	var expires, revoked any // NULL: never
	if !k.ExpiresAt.IsZero() {
		expires = ms(k.ExpiresAt)
	}
	if !k.RevokedAt.IsZero() {
		revoked = ms(k.RevokedAt)
	}
	secret := s.sealValue(k.Secret, "secret", k.ID)
	session := nullable(s.sealValue(k.SessionToken, "session_token", k.ID))
	credentials := nullable(s.sealValue(k.CredentialsToken, "credentials_token", k.ID))
	return s.write(ctx, "PutAccessKey", func(w *txn) error {
		if k.Version == 0 {
			stored, err := scanAccessKey(w.tx.QueryRowContext(w.ctx, w.s.d.rebind(`SELECT `+accessKeyColumns+` FROM access_keys WHERE id = ?`), k.ID))
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return err
			default:
				if err := s.openAccessKey(&stored); err != nil {
					return err
				}
				if sameAccessKey(stored, k) {
					return nil
				}
			}
		}
		return w.putVersioned(k.Version, versionedPut{
			table: "access_keys", key: "id", keyValue: k.ID,
			insert: `INSERT INTO access_keys (id, secret, account_id, workload_id, workload_platform, workload_region,
				session_token, expires_at_ms, credentials_token, revoked_at_ms)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			insertArgs: []any{k.ID, secret, k.AccountID, wid, platform, region, session, expires, credentials, revoked},
			set: `secret = ?, account_id = ?, workload_id = ?, workload_platform = ?, workload_region = ?,
				session_token = ?, expires_at_ms = ?, credentials_token = ?,
				revoked_at_ms = COALESCE(revoked_at_ms, ?)`,
			setArgs: []any{secret, k.AccountID, wid, platform, region, session, expires, credentials, revoked},
			upsertSet: `secret = excluded.secret,
				account_id = excluded.account_id,
				workload_id = excluded.workload_id,
				workload_platform = excluded.workload_platform,
				workload_region = excluded.workload_region,
				session_token = excluded.session_token,
				expires_at_ms = excluded.expires_at_ms,
				credentials_token = excluded.credentials_token,
				revoked_at_ms = COALESCE(access_keys.revoked_at_ms, excluded.revoked_at_ms)`,
			changed: "TRUE", // an unchanged key was returned above
		})
	})
}

// sameAccessKey reports whether putting k (version 0) would leave stored
// as it is: the same opened values, and no revocation that stored lacks.
func sameAccessKey(stored, k mpmeter.AccessKey) bool {
	sameWorkload := (stored.Workload == nil) == (k.Workload == nil) &&
		(k.Workload == nil || *stored.Workload == *k.Workload)
	return stored.Secret == k.Secret && stored.AccountID == k.AccountID && sameWorkload &&
		stored.SessionToken == k.SessionToken &&
		stored.ExpiresAt.IsZero() == k.ExpiresAt.IsZero() && (k.ExpiresAt.IsZero() || ms(stored.ExpiresAt) == ms(k.ExpiresAt)) &&
		stored.CredentialsToken == k.CredentialsToken &&
		(k.RevokedAt.IsZero() || !stored.RevokedAt.IsZero())
}

// PutProduct creates or updates a product by code and replaces its
// dimensions, in one transaction (a versioned write). Its seller account
// must exist (a foreign key); a dimension named twice is an error.
func (s *Store) PutProduct(ctx context.Context, p mpmeter.Product) error {
	return s.write(ctx, "PutProduct", func(w *txn) error {
		if p.Version == 0 {
			// The seed's put of what is stored already writes nothing, so
			// the version says "changed" only when something changed.
			rows, err := w.tx.QueryContext(w.ctx, w.s.d.rebind(`SELECT `+productColumns+`
				FROM products p LEFT JOIN product_dimensions d ON d.product_code = p.code
				WHERE p.code = ? ORDER BY d.position`), p.Code)
			if err != nil {
				return err
			}
			stored, err := scanProducts(rows)
			if err != nil {
				return err
			}
			if len(stored) == 1 && sameProduct(stored[0], p) {
				return nil
			}
		}
		// An upsert, not INSERT OR REPLACE: replacing would delete the row,
		// which the subscriptions' foreign keys forbid.
		concurrent := 0
		if p.ConcurrentAgreements {
			concurrent = 1
		}
		err := w.putVersioned(p.Version, versionedPut{
			table: "products", key: "code", keyValue: p.Code,
			insert:     `INSERT INTO products (code, seller_account_id, type, concurrent_agreements, fulfillment_url) VALUES (?, ?, ?, ?, ?)`,
			insertArgs: []any{p.Code, p.SellerAccountID, p.Type, concurrent, nullable(p.FulfillmentURL)},
			set:        `seller_account_id = ?, type = ?, concurrent_agreements = ?, fulfillment_url = ?`,
			setArgs:    []any{p.SellerAccountID, p.Type, concurrent, nullable(p.FulfillmentURL)},
			upsertSet: `seller_account_id = excluded.seller_account_id, type = excluded.type,
				concurrent_agreements = excluded.concurrent_agreements, fulfillment_url = excluded.fulfillment_url`,
			changed: "TRUE", // an unchanged product was returned above
		})
		if err != nil {
			return err
		}
		if _, err := w.exec(`DELETE FROM product_dimensions WHERE product_code = ?`, p.Code); err != nil {
			return err
		}
		for i, d := range p.Dimensions {
			det := p.DimensionDetails[d]
			if _, err := w.exec(`INSERT INTO product_dimensions (product_code, position, name, description, unit, price_per_unit)
				VALUES (?, ?, ?, ?, ?, ?)`,
				p.Code, i, d, nullable(det.Description), nullable(det.Unit), nullable(det.PricePerUnit)); err != nil {
				return fmt.Errorf("dimension %q: %w", d, err)
			}
		}
		return nil
	})
}

// PutSubscription creates or updates a subscription by license ARN (a
// versioned write). The first put's CreatedAt and agreement id are kept; the
// caller always sets CreatedAt (a zero CreatedAt is stored as given, as the
// zero time). A CustomerIdentifier another subscription of the product has
// is an error (a unique constraint); an empty one is stored as NULL and
// never clashes. Its account and product must exist (foreign keys).
func (s *Store) PutSubscription(ctx context.Context, sub mpmeter.Subscription) error {
	return s.write(ctx, "PutSubscription", func(w *txn) error { return w.putSubscription(sub) })
}

// putSubscription is PutSubscription's write, in w.
func (w *txn) putSubscription(sub mpmeter.Subscription) error {
	agreement := sub.AgreementID
	if agreement == "" {
		agreement = mpmeter.AgreementIDFor(sub.LicenseArn)
	}
	freeTrial := 0
	if sub.FreeTrial {
		freeTrial = 1
	}
	var ended any
	if !sub.EndedAt.IsZero() {
		ended = ms(sub.EndedAt)
	}
	return w.putVersioned(sub.Version, versionedPut{
		table: "subscriptions", key: "license_arn", keyValue: sub.LicenseArn,
		insert: `INSERT INTO subscriptions (license_arn, account_id, product_code, customer_identifier, status, created_at_ms,
			agreement_id, offer_id, free_trial, ended_at_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		insertArgs: []any{sub.LicenseArn, sub.AccountID, sub.ProductCode, nullable(sub.CustomerIdentifier), sub.Status, ms(sub.CreatedAt),
			agreement, nullable(sub.OfferID), freeTrial, ended},
		set: `account_id = ?, product_code = ?, customer_identifier = ?, status = ?, offer_id = ?, free_trial = ?,
			ended_at_ms = ?`,
		setArgs: []any{sub.AccountID, sub.ProductCode, nullable(sub.CustomerIdentifier), sub.Status, nullable(sub.OfferID), freeTrial, ended},
		upsertSet: `account_id = excluded.account_id,
			product_code = excluded.product_code,
			customer_identifier = excluded.customer_identifier,
			status = excluded.status,
			agreement_id = COALESCE(subscriptions.agreement_id, excluded.agreement_id),
			offer_id = excluded.offer_id,
			free_trial = excluded.free_trial,
			ended_at_ms = CASE WHEN excluded.status = 'active' THEN NULL
				ELSE COALESCE(subscriptions.ended_at_ms, excluded.ended_at_ms) END`,
		changed: distinct("subscriptions", "account_id", "product_code", "customer_identifier", "status", "offer_id", "free_trial"),
	})
}

// PutRegistrationToken creates or updates a registration token by value.
// Its account and product must exist (foreign keys).
func (s *Store) PutRegistrationToken(ctx context.Context, t mpmeter.RegistrationToken) error {
	return s.write(ctx, "PutRegistrationToken", func(w *txn) error { return w.putRegistrationToken(t) })
}

// putRegistrationToken is PutRegistrationToken's write, in w.
func (w *txn) putRegistrationToken(t mpmeter.RegistrationToken) error {
	_, err := w.exec(`INSERT INTO registration_tokens (token, account_id, product_code, license_arn, created_at_ms, expires_at_ms, id)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (token) DO UPDATE SET
			account_id = excluded.account_id,
			product_code = excluded.product_code,
			license_arn = excluded.license_arn,
			created_at_ms = excluded.created_at_ms,
			expires_at_ms = excluded.expires_at_ms,
			id = excluded.id`,
		t.Token, t.AccountID, t.ProductCode, t.LicenseArn, ms(t.CreatedAt), ms(t.ExpiresAt), mpmeter.RegistrationTokenID(t.Token))
	return err
}

// versionedPut is one row's three ways of being put (see putVersioned).
// Statements use ? placeholders; set and upsertSet are SET lists without
// the version, which putVersioned bumps.
type versionedPut struct {
	table, key string
	keyValue   any
	insert     string // INSERT INTO table (...) VALUES (...), without ON CONFLICT
	insertArgs []any
	set        string // for UPDATE table SET <set>, version = version + 1
	setArgs    []any
	upsertSet  string // for ON CONFLICT (key) DO UPDATE SET <upsertSet>, reading excluded.*
	// changed is true when the upsert changes the stored row (an upsert
	// of what is stored keeps the version: applying a seed again changes
	// nothing).
	changed string
}

// distinct is the SQL condition "some of cols differ between the stored
// row of table and the excluded (proposed) one", NULL-safe.
func distinct(table string, cols ...string) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString(table + "." + c + " IS DISTINCT FROM excluded." + c)
	}
	return b.String()
}

// sameProduct reports whether stored (as read) is what p would store.
func sameProduct(stored, p mpmeter.Product) bool {
	if stored.SellerAccountID != p.SellerAccountID || stored.Type != p.Type || stored.ConcurrentAgreements != p.ConcurrentAgreements ||
		stored.FulfillmentURL != p.FulfillmentURL || len(stored.Dimensions) != len(p.Dimensions) {
		return false
	}
	for i, d := range p.Dimensions {
		if stored.Dimensions[i] != d || stored.DimensionDetails[d] != p.DimensionDetails[d] {
			return false
		}
	}
	return true
}

// putVersioned writes one row as mpmeter.Store's versioned writes say:
// version 0 upserts, CreateOnly inserts (ErrExists when the key is taken),
// n > 0 updates only the row at version n (ErrConflict at another version,
// ErrNotFound without a row). A unique constraint other than the key
// failing (a customer identifier) is ErrExists, except for an upsert, whose
// caller (the seed) validated the file and treats it as the database's.
func (w *txn) putVersioned(version int64, p versionedPut) error {
	var res sql.Result
	var err error
	switch {
	case version == 0:
		_, err = w.exec(p.insert+` ON CONFLICT (`+p.key+`) DO UPDATE SET `+p.upsertSet+`,
			version = CASE WHEN `+p.changed+` THEN `+p.table+`.version + 1 ELSE `+p.table+`.version END`, p.insertArgs...)
		return err
	case version == mpmeter.CreateOnly:
		res, err = w.exec(p.insert+` ON CONFLICT (`+p.key+`) DO NOTHING`, p.insertArgs...)
	case version > 0:
		args := append(append(append([]any{}, p.setArgs...), p.keyValue), version)
		res, err = w.exec(`UPDATE `+p.table+` SET `+p.set+`, version = version + 1 WHERE `+p.key+` = ? AND version = ?`, args...)
	default:
		return fmt.Errorf("%s %v: version %d is neither 0, CreateOnly nor a stored version", p.table, p.keyValue, version)
	}
	if err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("%s %v: %w: %v", p.table, p.keyValue, mpmeter.ErrExists, err)
		}
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	if version == mpmeter.CreateOnly {
		return fmt.Errorf("%s %v: %w", p.table, p.keyValue, mpmeter.ErrExists)
	}
	var one int
	switch err := w.tx.QueryRowContext(w.ctx, w.s.d.rebind(`SELECT 1 FROM `+p.table+` WHERE `+p.key+` = ?`), p.keyValue).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s %v: %w", p.table, p.keyValue, mpmeter.ErrNotFound)
	case err != nil:
		return err
	}
	return fmt.Errorf("%s %v is no longer at version %d: %w", p.table, p.keyValue, version, mpmeter.ErrConflict)
}

// isUniqueViolation reports whether err is a unique constraint's failure
// (PostgreSQL's SQLSTATE 23505, SQLite's SQLITE_CONSTRAINT_UNIQUE).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
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
