package service

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Fingerprints are stored (metering_records.fingerprint,
// idempotency_tokens.fingerprint) and compared with those of later requests,
// so their bytes are a storage format: they are written out here field by
// field, never derived from struct tags, so that a regenerated API model or a
// renamed domain field cannot turn an honest retry into DuplicateRecord or
// IdempotencyConflictException. The byte layouts are those the earlier
// json.Marshal-based code produced, so fingerprints stored by earlier versions
// still match; fingerprint_test.go pins them.

// fingerprint is what makes two records in one dedup slot "the same record
// again": the quantity and the allocations, the latter as a set.
//
//	no allocations:  q=<quantity>
//	allocations:     q=<quantity>;a=<hex of the first 12 bytes of SHA-256(allocationsEncoding(canonical order))>
//
// Canonical order: each allocation's tags sorted by key (keys are unique
// within an allocation), the allocations sorted by their sorted tags (tag
// sets are distinct), so the order a client lists them in does not matter.
func fingerprint(quantity int64, allocs []mpmeter.Allocation) string {
	if len(allocs) == 0 {
		return "q=" + strconv.FormatInt(quantity, 10)
	}
	sum := sha256.Sum256(allocationsEncoding(canonicalAllocations(allocs)))
	return "q=" + strconv.FormatInt(quantity, 10) + ";a=" + hex.EncodeToString(sum[:12])
}

// sameRecord reports whether rec is the stored record again. Records stored
// before the allocations' canonical order (their fingerprint hashed them as
// listed) are compared by recomputing the fingerprint from what was stored:
// a compatibility read, so no migration rewrites old rows.
func sameRecord(stored, rec mpmeter.MeteringRecord) bool {
	if stored.Fingerprint == rec.Fingerprint {
		return true
	}
	return len(stored.Allocations) > 0 && fingerprint(stored.Quantity, stored.Allocations) == rec.Fingerprint
}

// canonicalAllocations returns allocs in canonical order, leaving allocs as
// they are.
func canonicalAllocations(allocs []mpmeter.Allocation) []mpmeter.Allocation {
	out := make([]mpmeter.Allocation, len(allocs))
	for i, a := range allocs {
		out[i] = mpmeter.Allocation{Quantity: a.Quantity, Tags: sortedTags(a.Tags)}
	}
	slices.SortStableFunc(out, func(a, b mpmeter.Allocation) int { return compareTags(a.Tags, b.Tags) })
	return out
}

func sortedTags(tags []mpmeter.AllocationTag) []mpmeter.AllocationTag {
	if tags == nil {
		return nil
	}
	sorted := slices.Clone(tags)
	slices.SortStableFunc(sorted, func(a, b mpmeter.AllocationTag) int { return strings.Compare(a.Key, b.Key) })
	return sorted
}

// compareTags orders sorted tag lists: pairwise by key then value, a prefix
// first.
func compareTags(a, b []mpmeter.AllocationTag) int {
	for i := range min(len(a), len(b)) {
		if c := cmp.Or(strings.Compare(a[i].Key, b[i].Key), strings.Compare(a[i].Value, b[i].Value)); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// tagSetKey names a set of tags independent of order (distinct tag sets
// within one record).
func tagSetKey(tags []mpmeter.AllocationTag) string {
	var b []byte
	for _, t := range sortedTags(tags) {
		b = appendJSONString(b, t.Key)
		b = append(b, '=')
		b = appendJSONString(b, t.Value)
		b = append(b, ';')
	}
	return string(b)
}

// allocationsEncoding writes allocations, in the order given, as
//
//	[{"q":<quantity>,"t":[{"k":<key>,"v":<value>},...]},...]
//
// with "t" left out of an allocation without tags, strings as JSON strings
// (HTML characters escaped as \u003c and the like), no spaces.
func allocationsEncoding(allocs []mpmeter.Allocation) []byte {
	b := []byte{'['}
	for i, a := range allocs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"q":`...)
		b = strconv.AppendInt(b, a.Quantity, 10)
		if len(a.Tags) > 0 {
			b = append(b, `,"t":[`...)
			for j, t := range a.Tags {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"k":`...)
				b = appendJSONString(b, t.Key)
				b = append(b, `,"v":`...)
				b = appendJSONString(b, t.Value)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// meterRequestFingerprint is what makes a MeterUsage ClientToken's retry "the
// same parameters": every parameter but the token itself and DryRun, with the
// allocations as the client listed them (a retry resends the same request).
// It is the hex of the first 16 bytes of SHA-256 over
//
//	[<product code>,<timestamp in Unix microseconds>,<dimension>,<quantity>,<allocations>]
//
// where <allocations> is null when the request has none, else
//
//	[{"AllocatedUsageQuantity":<quantity>,"Tags":[{"Key":<key>,"Value":<value>},...]},...]
//
// with "Tags" left out of an allocation without tags, strings as JSON
// strings, no spaces.
func meterRequestFingerprint(product string, ts time.Time, dimension string, quantity int64, allocs []mpmeter.Allocation) string {
	b := []byte{'['}
	b = appendJSONString(b, product)
	b = append(b, ',')
	b = strconv.AppendInt(b, ts.UnixMicro(), 10)
	b = append(b, ',')
	b = appendJSONString(b, dimension)
	b = append(b, ',')
	b = strconv.AppendInt(b, quantity, 10)
	b = append(b, ',')
	if allocs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, a := range allocs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"AllocatedUsageQuantity":`...)
			b = strconv.AppendInt(b, a.Quantity, 10)
			if len(a.Tags) > 0 {
				b = append(b, `,"Tags":[`...)
				for j, t := range a.Tags {
					if j > 0 {
						b = append(b, ',')
					}
					b = append(b, `{"Key":`...)
					b = appendJSONString(b, t.Key)
					b = append(b, `,"Value":`...)
					b = appendJSONString(b, t.Value)
					b = append(b, '}')
				}
				b = append(b, ']')
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, ']')
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// appendJSONString appends s as a JSON string, as encoding/json writes one
// (HTML-safe escapes; invalid UTF-8 as U+FFFD). A string's JSON form does not
// depend on any struct tag.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
