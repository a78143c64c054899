package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mpmeter/mpmeter"
)

// goSteps are the Go parts of migrations, by the migration's name (the file
// name without its version, so renumbering a migration keeps its step): run
// after the SQL file, in the same transaction.
var goSteps = map[string]func(ctx context.Context, tx *sql.Tx, d *dialect) error{
	"lean_usage_records": migrateLeanRecords,
}

// migrateChunk is how many old records one step of migrateLeanRecords reads
// and writes.
const migrateChunk = 1000

// migrateLeanRecords copies every row of metering_records (0001's schema)
// into usage_records, then replaces the table by a view of the same name.
// Rows are read in id order, a chunk at a time, and written as RecordUsage
// would write them (the same dictionaries, templates and digests), so a
// migrated record reads back exactly as before and its dedup slot stays
// taken.
func migrateLeanRecords(ctx context.Context, tx *sql.Tx, d *dialect) error {
	s := &Store{d: d, dicts: newDictionaries()}
	const oldColumns = `metering_record_id, kind, product_code, seller_account_id,
		customer_account_id, customer_identifier, license_arn, workload_id, dimension,
		timestamp_ms, quantity, allocations, dedup_key, fingerprint, created_at_ms`
	after := ""
	for {
		rows, err := tx.QueryContext(ctx, d.rebind(`SELECT `+oldColumns+` FROM metering_records
			WHERE metering_record_id > ? ORDER BY metering_record_id LIMIT `+fmt.Sprint(migrateChunk)), after)
		if err != nil {
			return err
		}
		var recs []mpmeter.MeteringRecord
		for rows.Next() {
			var r mpmeter.MeteringRecord
			var ts, created int64
			var allocs, key sql.NullString
			if err := rows.Scan(&r.MeteringRecordID, &r.Kind, &r.ProductCode, &r.SellerAccountID,
				&r.CustomerAccountID, &r.CustomerIdentifier, &r.LicenseArn, &r.WorkloadID, &r.Dimension,
				&ts, &r.Quantity, &allocs, &key, &r.Fingerprint, &created); err != nil {
				rows.Close()
				return err
			}
			r.Timestamp, r.CreatedAt, r.DedupKey = fromMS(ts), fromMS(created), key.String
			if allocs.Valid {
				if err := json.Unmarshal([]byte(allocs.String), &r.Allocations); err != nil {
					rows.Close()
					return fmt.Errorf("record %q: allocations: %w", r.MeteringRecordID, err)
				}
			}
			recs = append(recs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		after = recs[len(recs)-1].MeteringRecordID
		if err := copyLeanRecords(ctx, tx, s, recs); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE metering_records`); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, meteringRecordsView[d.name])
	return err
}

func copyLeanRecords(ctx context.Context, tx *sql.Tx, s *Store, recs []mpmeter.MeteringRecord) error {
	ins := make([]recordInput, len(recs))
	for i := range recs {
		in, err := newRecordInput(&recs[i])
		if err != nil {
			return err
		}
		ins[i] = in
	}
	var pending []interned
	if err := s.resolveRefs(ctx, tx, ins, true, &pending); err != nil {
		return err
	}
	s.dicts.publish(pending) // same transaction: valid for the rest of it
	for start := 0; start < len(ins); start += insertChunk {
		chunk := ins[start:min(start+insertChunk, len(ins))]
		args := make([]any, 0, len(chunk)*recordFields)
		for i := range chunk {
			args = chunk[i].appendArgs(args)
		}
		row := "(?" + strings.Repeat(", ?", recordFields-1) + ")"
		q := `INSERT INTO usage_records (` + recordColumns + `) VALUES ` + row + strings.Repeat(", "+row, len(chunk)-1)
		if _, err := tx.ExecContext(ctx, s.d.rebind(q), args...); err != nil {
			return err
		}
	}
	return nil
}

// meteringRecordsView keeps metering_records readable by ad-hoc SQL (the
// columns of 0001 but dedup_key, which is kept as a digest).
var meteringRecordsView = map[string]string{
	DialectSQLite: `CREATE VIEW metering_records AS SELECT
		CASE WHEN r.record_id_format IS NULL THEN lower(substr(hex(r.record_id), 1, 8) || '-' || substr(hex(r.record_id), 9, 4) || '-' ||
			substr(hex(r.record_id), 13, 4) || '-' || substr(hex(r.record_id), 17, 4) || '-' || substr(hex(r.record_id), 21))
			ELSE CAST(r.record_id AS TEXT) END AS metering_record_id,
		CASE r.kind WHEN 1 THEN 'BatchMeterUsage' WHEN 2 THEN 'MeterUsage' ELSE 'RegisterUsage' END AS kind,
		p.product_code, p.seller_account_id, p.customer_account_id, p.customer_identifier, p.license_arn, p.workload_id,
		d.name AS dimension, r.timestamp_ms, r.quantity, r.allocations,
		COALESCE(r.fingerprint, 'q=' || r.quantity) AS fingerprint, r.created_at_ms
		FROM usage_records r JOIN usage_parties p ON p.id = r.party_id JOIN usage_dimensions d ON d.id = r.dimension_id`,
	DialectPostgres: `CREATE VIEW metering_records AS SELECT
		CASE WHEN r.record_id_format IS NULL THEN encode(r.record_id, 'hex')::uuid::text
			ELSE convert_from(r.record_id, 'UTF8') END AS metering_record_id,
		CASE r.kind WHEN 1 THEN 'BatchMeterUsage' WHEN 2 THEN 'MeterUsage' ELSE 'RegisterUsage' END AS kind,
		p.product_code, p.seller_account_id, p.customer_account_id, p.customer_identifier, p.license_arn, p.workload_id,
		d.name AS dimension, r.timestamp_ms, r.quantity, r.allocations,
		COALESCE(r.fingerprint, 'q=' || r.quantity) AS fingerprint, r.created_at_ms
		FROM usage_records r JOIN usage_parties p ON p.id = r.party_id JOIN usage_dimensions d ON d.id = r.dimension_id`,
}
