package sqlstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
)

// How a metering record is kept compactly (usage_records, migration 0005).
// Everything here round-trips exactly: a record reads back as it was put.
//
//   - The record id is its 16 bytes when it is a UUID in canonical form
//     (what the service makes), else its text's bytes with record_id_format
//     1 (the conformance suite's "rec-a").
//   - The kind is a small integer.
//   - Product, seller, customer account, customer identifier, license and
//     workload are one integer, a row of usage_parties (one per agreement
//     or workload); the dimension is a row of usage_dimensions.
//   - The dedup key is kept as the unique triple (dedup_hour, dedup_anchor_id,
//     dedup_digest) plus a template to spell it again: dedup_hour is the
//     number a key ends with after its last '|' (the service's keys end
//     with the hour), so keys of one hour sit together in the unique index;
//     dedup_anchor_id names the key's longest '|'-separated part (see
//     dedupAnchor); both are functions of the key, so the triple is unique
//     exactly when the digest is. dedup_digest is
//     the first 16 bytes of the key's SHA-256 (two distinct keys share one
//     with probability about 2^-128 per pair); the template is the key with
//     the record's own field values replaced by placeholder bytes
//     ("batch|\x01|\x02|\x08"), interned in usage_dedup_templates, of which
//     there are as many as key formats.
//   - The fingerprint is NULL when it is "q=<quantity>", the service's
//     fingerprint of a record without allocations.

// Record kinds as stored.
var kindCodes = map[string]int64{mpmeter.UsageBatch: 1, mpmeter.UsageMeter: 2, mpmeter.UsageRegister: 3}

var kindNames = map[int64]string{1: mpmeter.UsageBatch, 2: mpmeter.UsageMeter, 3: mpmeter.UsageRegister}

func kindCode(kind string) (int64, error) {
	c, ok := kindCodes[kind]
	if !ok {
		return 0, fmt.Errorf("unknown record kind %q", kind)
	}
	return c, nil
}

// recordKey is the stored form of a MeteringRecordID and whether it is text.
func recordKey(id string) (key []byte, text bool) {
	if len(id) == 36 {
		if u, err := uuid.Parse(id); err == nil && u.String() == id {
			return u[:], false
		}
	}
	return []byte(id), true
}

// recordIDOf turns a stored key back into the MeteringRecordID.
func recordIDOf(key []byte, text bool) (string, error) {
	if text {
		return string(key), nil
	}
	u, err := uuid.FromBytes(key)
	if err != nil {
		return "", fmt.Errorf("stored record id: %w", err)
	}
	return u.String(), nil
}

// Placeholders of dedup key templates, one per record field; a template
// starting with templateLiteral is the key itself.
const (
	phLicense byte = iota + 1
	phWorkload
	phCustomerIdentifier
	phProduct
	phCustomerAccount
	phSeller
	phDimension
	phHour
	templateLiteral = "\x00"
)

// dedupParts is a dedup key's stored form.
type dedupParts struct {
	hour     int64
	anchor   string
	digest   []byte
	template string
}

// dedupAnchor is the longest '|'-separated part of key (the first of
// equals), a function of the key alone. Its dictionary id leads the unique
// index after the hour, so the keys of one agreement or workload (the
// service's keys contain its license ARN or workload id) sit together, in
// the order agreements were first seen, instead of wherever a digest puts
// them.
func dedupAnchor(key string) string {
	best := ""
	for part := range strings.SplitSeq(key, "|") {
		if len(part) > len(best) {
			best = part
		}
	}
	return best
}

// splitDedupKey computes the stored form of r's DedupKey (non-empty).
func splitDedupKey(r *mpmeter.MeteringRecord) dedupParts {
	key := r.DedupKey
	sum := sha256.Sum256([]byte(key))
	p := dedupParts{digest: sum[:16], anchor: dedupAnchor(key)}
	rest := key
	if i := strings.LastIndexByte(key, '|'); i >= 0 {
		if n, err := strconv.ParseInt(key[i+1:], 10, 64); err == nil && n > 0 && strconv.FormatInt(n, 10) == key[i+1:] {
			p.hour, rest = n, key[:i+1]
		}
	}
	// p.hour depends on the key alone (never on the record's fields), so
	// that (dedup_hour, dedup_digest) is unique exactly when the key is.
	if strings.IndexFunc(rest, func(c rune) bool { return c <= rune(phHour) }) >= 0 {
		p.template = templateLiteral + key
		return p
	}
	// Longest values first, so that an account id inside a license ARN goes
	// with the ARN.
	for _, f := range []struct {
		ph  byte
		val string
	}{
		{phLicense, r.LicenseArn}, {phWorkload, r.WorkloadID}, {phCustomerIdentifier, r.CustomerIdentifier},
		{phProduct, r.ProductCode}, {phCustomerAccount, r.CustomerAccountID}, {phSeller, r.SellerAccountID},
		{phDimension, r.Dimension},
	} {
		if f.val != "" && strings.IndexFunc(f.val, func(c rune) bool { return c <= rune(phHour) }) < 0 {
			rest = strings.ReplaceAll(rest, f.val, string(f.ph))
		}
	}
	if p.hour != 0 {
		rest += string(phHour)
	}
	p.template = rest
	if renderDedupKey(p.template, p.hour, r) != key {
		p.template = templateLiteral + key
	}
	return p
}

// renderDedupKey spells a dedup key from its template and the record's
// fields.
func renderDedupKey(template string, hour int64, r *mpmeter.MeteringRecord) string {
	if lit, ok := strings.CutPrefix(template, templateLiteral); ok {
		return lit
	}
	var b strings.Builder
	for i := 0; i < len(template); i++ {
		switch c := template[i]; c {
		case phLicense:
			b.WriteString(r.LicenseArn)
		case phWorkload:
			b.WriteString(r.WorkloadID)
		case phCustomerIdentifier:
			b.WriteString(r.CustomerIdentifier)
		case phProduct:
			b.WriteString(r.ProductCode)
		case phCustomerAccount:
			b.WriteString(r.CustomerAccountID)
		case phSeller:
			b.WriteString(r.SellerAccountID)
		case phDimension:
			b.WriteString(r.Dimension)
		case phHour:
			b.WriteString(strconv.FormatInt(hour, 10))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// compactFingerprint is the stored fingerprint: NULL for "q=<quantity>".
func compactFingerprint(fp string, quantity int64) any {
	if fp == "q="+strconv.FormatInt(quantity, 10) {
		return nil
	}
	return fp
}

// Cursors are opaque to callers: base64url of the last record's timestamp
// (8 bytes, big-endian) and its stored id key.
func encodeCursor(ts int64, key []byte) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(ts))
	return base64.RawURLEncoding.EncodeToString(append(b, key...))
}

// errBadCursor wraps mpmeter.ErrInvalidCursor, so callers (the admin API)
// tell a client's bad cursor from a failing database.
var errBadCursor = fmt.Errorf("sqlstore: malformed usage cursor: %w", mpmeter.ErrInvalidCursor)

func decodeCursor(c string) (int64, []byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 9 {
		return 0, nil, errBadCursor
	}
	return int64(binary.BigEndian.Uint64(b)), b[8:], nil
}
