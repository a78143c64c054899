package sqlstore

import "strings"

// The store's fixed statements, prepared once at Open. They are written with
// ? placeholders and are the same for both dialects (dialect.rebind adapts
// the placeholders); only the migrations' DDL differs.

type writeStmt int

// Statements of the RecordUsage hot path, prepared on the write pool.
const (
	wGetToken writeStmt = iota
	wPutToken
	wSavepoint
	wRollbackToSavepoint
	wReleaseSavepoint
	wRolledDayProbe
	numWriteStmts
)

const recordColumns = `timestamp_ms, record_id, record_id_format, kind, party_id, dimension_id,
	quantity, allocations, dedup_hour, dedup_anchor_id, dedup_digest, dedup_template_id, fingerprint, created_at_ms`

var writeSQL = [numWriteStmts]string{
	wGetToken: `SELECT fingerprint, metering_record_id, expires_at_ms
		FROM idempotency_tokens WHERE scope = ? AND token = ?`,
	// Stores a new token, or replaces the stored one only if it has expired
	// by now (the last parameter). Rows affected 0 means someone stored an
	// unexpired token since we looked: the caller retries and finds it.
	wPutToken: `INSERT INTO idempotency_tokens (scope, token, fingerprint, metering_record_id, expires_at_ms)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (scope, token) DO UPDATE SET
			fingerprint = excluded.fingerprint,
			metering_record_id = excluded.metering_record_id,
			expires_at_ms = excluded.expires_at_ms
		WHERE idempotency_tokens.expires_at_ms <= ?`,
	// Group commit's per-caller savepoint (see groupCommitter). Prepared
	// like the rest: parsing them again for every caller of every group
	// cost the one writer more than running them.
	wSavepoint:           `SAVEPOINT record_usage`,
	wRollbackToSavepoint: `ROLLBACK TO record_usage`,
	wReleaseSavepoint:    `RELEASE record_usage`,
	// unrollDays' probe: is any day in [?, ?] rolled up or claimed?
	wRolledDayProbe: `SELECT 1 FROM usage_rolled_days WHERE day_ms >= ? AND day_ms <= ? LIMIT 1`,
}

// insertRecordsSQL inserts rows records in one statement. ON CONFLICT names
// the dedup slot only: a record whose key is taken is skipped (and missing
// from RETURNING), while any other violation, such as a duplicate record
// id, still fails the statement and the call.
func insertRecordsSQL(rows int) string {
	row := "(?" + strings.Repeat(", ?", recordFields-1) + ")"
	return `INSERT INTO usage_records (` + recordColumns + `) VALUES ` + row + strings.Repeat(", "+row, rows-1) +
		` ON CONFLICT (dedup_hour, dedup_anchor_id, dedup_digest) DO NOTHING RETURNING record_id`
}

type readStmt int

// Lookups, prepared on the read pool. AccessKey runs on every request.
const (
	rAccessKey readStmt = iota
	rWorkloadAccessKeys
	rProduct
	rSubscription
	rSubscriptionsOf
	rRegistrationToken
	rSigningKeys
	rGetToken
	rPartyID
	rDimensionID
	rTemplateID
	rAnchorID
	numReadStmts
)

// accessKeyColumns are what scanAccessKey reads: every read of a key's
// secret goes through them and it.
const accessKeyColumns = `id, secret, account_id, workload_id, workload_platform, workload_region,
	session_token, expires_at_ms, credentials_token, revoked_at_ms, version`

const subscriptionColumns = `license_arn, account_id, product_code, customer_identifier, status, created_at_ms,
	agreement_id, offer_id, free_trial, ended_at_ms, version`

// productColumns are what scanProducts reads: one row per dimension.
const productColumns = `p.code, p.seller_account_id, p.type, p.concurrent_agreements, p.version, p.fulfillment_url,
	d.name, d.description, d.unit, d.price_per_unit`

const registrationTokenColumns = `token, account_id, product_code, license_arn, created_at_ms, expires_at_ms`

var readSQL = [numReadStmts]string{
	// The dictionaries' ids, one key at a time (resolveRefs without create).
	rPartyID:     partiesDict.selectOne(),
	rDimensionID: dimensionDict.selectOne(),
	rTemplateID:  templateDict.selectOne(),
	rAnchorID:    anchorDict.selectOne(),
	rAccessKey:   `SELECT ` + accessKeyColumns + ` FROM access_keys WHERE id = ?`,
	// The workload's long-term keys and unexpired temporary ones, by the
	// partial index on workload_id.
	rWorkloadAccessKeys: `SELECT ` + accessKeyColumns + ` FROM access_keys
		WHERE workload_id = ? AND (expires_at_ms IS NULL OR expires_at_ms > ?) AND revoked_at_ms IS NULL ORDER BY id`,
	// One statement, so the product and its dimensions come from one
	// snapshot even while PutProduct replaces them.
	rProduct: `SELECT ` + productColumns + `
		FROM products p LEFT JOIN product_dimensions d ON d.product_code = p.code
		WHERE p.code = ? ORDER BY d.position`,
	rSubscription: `SELECT ` + subscriptionColumns + ` FROM subscriptions WHERE license_arn = ?`,
	rSubscriptionsOf: `SELECT ` + subscriptionColumns + ` FROM subscriptions
		WHERE account_id = ? AND product_code = ? ORDER BY created_at_ms, license_arn`,
	rRegistrationToken: `SELECT ` + registrationTokenColumns + ` FROM registration_tokens WHERE token = ?`,
	rSigningKeys: `SELECT version, private_key_pem, public_key_pem, created_at_ms
		FROM signing_keys ORDER BY version`,
	// PreviewUsage reads what RecordUsage would find, on the read pool.
	rGetToken: writeSQL[wGetToken],
}
