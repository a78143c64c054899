// Package rpcv2cbor is the wire format of the Smithy RPC v2 CBOR protocol
// (smithy.protocols#rpcv2Cbor), which the Entitlement Service's model lists
// first and current aws-sdk-go-v2 and .NET clients send: routing by URL
// path, the protocol's headers, CBOR bodies (github.com/fxamacker/cbor/v2)
// and its error envelope. Admission (SigV4, operation, region, quota,
// validation, rules) is package awsjson's, the same for both protocols;
// this package only reads and writes what differs.
//
// What the protocol specification says, as implemented here:
//   - Requests are POST {prefix?}/service/{serviceName}/operation/{operationName};
//     only the last four path segments route. serviceName is the service
//     shape's name (AWSMPEntitlementService) or its absolute shape id with
//     "#" as "." (com.amazonaws.marketplaceentitlementservice.AWSMPEntitlementService).
//   - Requests carry Smithy-Protocol: rpc-v2-cbor, Content-Type:
//     application/cbor with a body, and no X-Amz-Target or X-Amzn-Target
//     (a request with one is malformed and refused).
//   - Responses carry Smithy-Protocol: rpc-v2-cbor and, with a body,
//     Content-Type: application/cbor; success is 200, errors 400 (client) or
//     500 (server) with a body of the error's members plus __type, the
//     error's absolute shape id (namespace#Name), and message. No
//     X-Amzn-ErrorType header.
//   - Structures are maps keyed by member name; null members are left out;
//     timestamps are tag 1 around epoch seconds (mpmeter.Timestamp's
//     MarshalCBOR); floats are never sent as half precision.
package rpcv2cbor

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/mpmeter/mpmeter"
)

// Protocol header and media type.
const (
	ProtocolHeader = "Smithy-Protocol"
	ProtocolValue  = "rpc-v2-cbor"
	ContentType    = "application/cbor"
)

// Route is what a request path names.
type Route struct {
	Service   string // the service shape's name, without namespace
	Namespace string // the namespace, when the path gave an absolute shape id
	Operation string
}

// ParsePath reads the last four segments of path as
// service/{serviceName}/operation/{operationName}; ok is false for any other
// path (an awsJson request's "/").
func ParsePath(path string) (r Route, ok bool) {
	segs := strings.Split(strings.TrimSuffix(path, "/"), "/")
	if len(segs) < 5 {
		return Route{}, false
	}
	segs = segs[len(segs)-4:]
	if segs[0] != "service" || segs[2] != "operation" || segs[1] == "" || segs[3] == "" {
		return Route{}, false
	}
	r.Operation = segs[3]
	r.Service = segs[1]
	if i := strings.LastIndexByte(r.Service, '.'); i >= 0 {
		r.Namespace, r.Service = r.Service[:i], r.Service[i+1:]
	}
	return r, true
}

// Codec reads and writes CBOR bodies. Its modes are immutable and safe for
// concurrent use.
type Codec struct {
	dec cbor.DecMode
	enc cbor.EncMode
}

// New returns the protocol's codec. Its options are fixed, so the library's
// option errors cannot happen: New panics if they do.
func New() *Codec {
	dec, err := cbor.DecOptions{
		// A member twice is malformed, not "the last one wins".
		DupMapKey: cbor.DupMapKeyEnforcedAPF,
		// Member names are exact (ProductCode, not productcode).
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		// Indefinite lengths are valid CBOR that clients may stream.
		IndefLength: cbor.IndefLengthAllowed,
		// mpmeter.Timestamp embeds time.Time, whose UnmarshalBinary must
		// not be taken for a CBOR byte string decoder.
		BinaryUnmarshaler: cbor.BinaryUnmarshalerNone,
		MaxNestedLevels:   16,
	}.DecMode()
	if err != nil {
		panic("rpcv2cbor: decoding options: " + err.Error())
	}
	enc, err := cbor.EncOptions{
		ShortestFloat:   cbor.ShortestFloatNone, // never half precision
		IndefLength:     cbor.IndefLengthForbidden,
		BinaryMarshaler: cbor.BinaryMarshalerNone,
	}.EncMode()
	if err != nil {
		panic("rpcv2cbor: encoding options: " + err.Error())
	}
	return &Codec{dec: dec, enc: enc}
}

// CheckRequest applies the protocol's request rules to r (its body has
// bodyLen bytes): the Smithy-Protocol header, no X-Amz-Target, and the CBOR
// Content-Type on a body. Its errors are SerializationException.
func CheckRequest(r *http.Request, bodyLen int) error {
	if r.Header.Get("X-Amz-Target") != "" || r.Header.Get("X-Amzn-Target") != "" {
		return mpmeter.Errorf(mpmeter.CodeSerialization, "An %s request must not carry X-Amz-Target: route by the URL path /service/{service}/operation/{operation} only.", ProtocolValue)
	}
	if got := r.Header.Get(ProtocolHeader); got != ProtocolValue {
		return mpmeter.Errorf(mpmeter.CodeSerialization, "Requests to /service/{service}/operation/{operation} must carry %s: %s (got %q).", ProtocolHeader, ProtocolValue, got)
	}
	if ct := r.Header.Get("Content-Type"); bodyLen > 0 && !strings.EqualFold(strings.TrimSpace(strings.Split(ct, ";")[0]), ContentType) {
		return mpmeter.Errorf(mpmeter.CodeSerialization, "Unsupported Content-Type %q: expected %s.", ct, ContentType)
	}
	return nil
}

// Decode reads a CBOR map into v (a generated input type). An empty body is
// {}. Anything else than one well-formed map of the right member types is a
// SerializationException; unknown members are ignored, as in awsJson.
func (c *Codec) Decode(body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	if major := body[0] >> 5; major != 5 { // 5: map
		if body[0] == 0xf6 || body[0] == 0xf7 { // null, undefined: no input
			if len(body) == 1 {
				return nil
			}
		}
		return mpmeter.Errorf(mpmeter.CodeSerialization, "The request body must be a CBOR map (major type 5), not major type %d.", major)
	}
	rest, err := c.dec.UnmarshalFirst(body, v)
	if err == nil && len(rest) > 0 {
		return mpmeter.Errorf(mpmeter.CodeSerialization, "Unexpected content after the request's CBOR map (%d bytes).", len(rest))
	}
	if err == nil {
		return nil
	}
	var typeErr *cbor.UnmarshalTypeError
	var dupErr *cbor.DupMapKeyError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.StructFieldName
		if field == "" {
			field = "request"
		}
		return mpmeter.Errorf(mpmeter.CodeSerialization, "Cannot deserialize CBOR %s at '%s' into %s.", typeErr.CBORType, field, typeName(typeErr.GoType))
	case errors.As(err, &dupErr):
		return mpmeter.Errorf(mpmeter.CodeSerialization, "A CBOR map repeats the key %v.", dupErr.Key)
	}
	return mpmeter.Errorf(mpmeter.CodeSerialization, "Malformed CBOR: %s.", strings.TrimPrefix(err.Error(), "cbor: "))
}

func typeName(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "an integer"
	case strings.Contains(goType, "map["):
		return "a map"
	case strings.HasPrefix(strings.TrimLeft(goType, "*"), "[]"):
		return "a list"
	case strings.HasSuffix(goType, "string"):
		return "a string"
	case strings.HasSuffix(goType, "bool"):
		return "a boolean"
	case strings.Contains(goType, "Timestamp"):
		return "a timestamp (tag 1)"
	}
	return "a structure"
}

// Marshal encodes an output.
func (c *Codec) Marshal(v any) ([]byte, error) { return c.enc.Marshal(v) }

// WriteOutput writes a 200 response with body.
func WriteOutput(w http.ResponseWriter, body []byte) {
	write(w, http.StatusOK, body)
}

// WriteError writes e as the protocol's error envelope with status: __type
// is namespace#Code, the absolute shape id clients strip to the name.
func (c *Codec) WriteError(w http.ResponseWriter, status int, namespace string, e *mpmeter.Error) {
	if len(e.Members) > 0 {
		// The error shape's further members (the Agreement Service's
		// reason, fields, requestId) beside __type and message.
		envelope := map[string]any{}
		for k, v := range e.Members {
			envelope[k] = v
		}
		envelope["__type"], envelope["message"] = namespace+"#"+string(e.Code), e.Message
		body, err := c.enc.Marshal(envelope)
		if err != nil { // members are strings and lists of string structs
			panic(fmt.Sprintf("rpcv2cbor: encoding an error: %v", err))
		}
		write(w, status, body)
		return
	}
	body, err := c.enc.Marshal(struct {
		Type    string `cbor:"__type"`
		Message string `cbor:"message"`
	}{namespace + "#" + string(e.Code), e.Message})
	if err != nil { // two strings always encode
		panic(fmt.Sprintf("rpcv2cbor: encoding an error: %v", err))
	}
	write(w, status, body)
}

func write(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set(ProtocolHeader, ProtocolValue)
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}
