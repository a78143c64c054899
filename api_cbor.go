package mpmeter

import (
	"errors"
	"math"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Timestamps in Smithy RPC v2 CBOR (the Entitlement Service's preferred
// protocol) are tag 1 (epoch-based date/time) around an integer or a float
// of epoch seconds, with millisecond resolution.

// epochTag is CBOR tag 1.
const epochTag = 1

var errTimestampNotEpoch = errors.New("timestamp must be CBOR tag 1 around epoch seconds")

// MarshalCBOR writes tag 1 around whole seconds as an integer, or seconds
// with milliseconds as a double (never a half-precision float, which the
// protocol says not to send).
func (t Timestamp) MarshalCBOR() ([]byte, error) {
	ms := t.UnixMilli()
	var content any = ms / 1000
	if ms%1000 != 0 {
		content = float64(ms) / 1000
	}
	return cbor.Marshal(cbor.Tag{Number: epochTag, Content: content})
}

// UnmarshalCBOR reads tag 1 around an integer or a float of epoch seconds.
func (t *Timestamp) UnmarshalCBOR(b []byte) error {
	var tag cbor.Tag
	if err := cbor.Unmarshal(b, &tag); err != nil || tag.Number != epochTag {
		return errTimestampNotEpoch
	}
	var f float64
	switch v := tag.Content.(type) {
	case uint64:
		f = float64(v)
	case int64:
		f = float64(v)
	case float64:
		f = v
	default:
		return errTimestampNotEpoch
	}
	if math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > 1e11 {
		return errTimestampNotEpoch
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6).UTC()
	return nil
}
