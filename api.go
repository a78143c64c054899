package mpmeter

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Timestamp is the model's timestamp type on the wire of awsJson 1.1: epoch
// seconds as a JSON number. botocore sends integers, aws-sdk-go and the
// JavaScript SDKs send fractions; both are accepted. A string is not.
type Timestamp struct{ time.Time }

// NewTimestamp returns a *Timestamp for t.
func NewTimestamp(t time.Time) *Timestamp { return &Timestamp{t} }

var errTimestampNotNumber = errors.New("timestamp must be a JSON number of epoch seconds")

// UnmarshalJSON reads epoch seconds (integer or fraction).
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] == '"' || b[0] == '{' || b[0] == '[' || b[0] == 't' || b[0] == 'f' {
		return errTimestampNotNumber
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > 1e11 {
		return errTimestampNotNumber
	}
	sec, frac := math.Modf(f)
	// Round to microseconds: clients send at most milliseconds, and a float
	// cannot carry more precision than that at today's epoch anyway.
	t.Time = time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
	return nil
}

// MarshalJSON writes epoch seconds, with a fraction only when there is one
// (JS v3 fails on timestamps that are not numbers).
func (t Timestamp) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	if ms%1000 == 0 {
		return strconv.AppendInt(nil, ms/1000, 10), nil
	}
	s := strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
	return []byte(strings.TrimRight(s, "0")), nil
}

// String returns the timestamp in RFC 3339.
func (t Timestamp) String() string { return t.UTC().Format(time.RFC3339Nano) }
