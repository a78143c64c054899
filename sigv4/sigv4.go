// Package sigv4 authenticates requests the way AWS does: it checks the
// Signature Version 4 in the Authorization header against the caller's access
// key and answers with AWS's own error names and messages, so that real SDKs
// react to our failures (retries, clock-skew correction, error classes) as they
// would to AWS's.
//
// The signature is recomputed here, as the SigV4 specification writes it:
// the canonical request over exactly the headers the client listed in
// SignedHeaders, the string to sign, and a key derived from the secret by an
// HMAC chain and cached per day. Not with aws-sdk-go-v2's signer, the
// reference clients agree with: it decides for itself which headers it
// signs and cannot sign "content-length: 0", which the AWS SDK for
// JavaScript v3 signs for an empty body, and handing it a rebuilt request
// cost most of a verification. The tests hold this code to that signer
// (requests it signs, over fuzzed paths, queries and header values, must
// verify) and to the captured requests of boto3, the AWS CLI, aws-sdk-go and
// the JavaScript SDKs v2 and v3. What a signer could not have produced, or
// what signs another request than the one received, is rejected, never
// accepted on a partial signature: a SignedHeaders list that is not lower
// case, sorted and free of repeats, one without host or x-amz-date, a listed
// header that is absent, an x-amz-content-sha256 or a content-length that
// does not describe the body.
package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mpmeter/mpmeter"
)

// KeySource finds access keys; mpmeter.Store satisfies it.
type KeySource interface {
	AccessKey(ctx context.Context, id string) (mpmeter.AccessKey, error)
}

// Verifier checks SigV4 signatures. Only Keys must be set; a Verifier is
// safe for concurrent use and must not be copied after first use (it caches
// signing keys).
type Verifier struct {
	Keys KeySource
	// Now is the wall clock for the skew check; nil means time.Now. It is not
	// the service clock: clients sign with their real clock, so moving the
	// service's virtual clock must not expire their signatures.
	Now func() time.Time
	// MaxSkew is how far X-Amz-Date may be from Now in either direction;
	// 0 (or less) means 15 minutes, AWS's window. It bounds how long a
	// captured request can be replayed.
	MaxSkew time.Duration
	// ServiceClock decides whether temporary credentials have expired; nil
	// means Now. It is the service clock, unlike Now: credential expiry is
	// a marketplace rule a test moves the clock to reach, and the container
	// credentials endpoint translates the expiry to wall time for the SDKs.
	ServiceClock mpmeter.Clock

	mu sync.RWMutex
	// keys caches the signing key of each (secret, region, service) for
	// the last day it verified a request: deriving one costs four HMACs.
	// Keying by the secret, not by the access key id, makes a rotation take
	// effect at once: the old secret's key is never found again.
	keys map[scopeKey]signingKey
}

type scopeKey struct{ secret, region, service string }

// signingKey is the key derived for one scopeKey on one day.
type signingKey struct {
	date string // YYYYMMDD
	key  [sha256.Size]byte
}

const (
	algorithm       = "AWS4-HMAC-SHA256"
	amzDateLayout   = "20060102T150405Z"
	scopeTerminator = "aws4_request"
	defaultMaxSkew  = 15 * time.Minute
	// maxSigningKeys bounds the signing-key cache. It only grows on
	// successful verifications, so an attacker without a secret cannot flush
	// it; beyond it an arbitrary entry is dropped and re-derived on its next
	// use.
	maxSigningKeys = 4096
)

// AWS's wording, so SDK users can search for the messages they get.
const (
	msgMissingToken      = "Missing Authentication Token"
	msgUnrecognized      = "The security token included in the request is invalid."
	msgExpiredToken      = "The security token included in the request is expired"
	msgMismatch          = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgHostNotSigned     = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
	msgRequiresDate      = "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
	msgTwoAuthorizations = "Only one Authorization header is allowed."
)

// Verify checks r's SigV4 signature over body (the full request body, already
// read; r.Body is not touched). On success it returns the caller: AccountID,
// AccessKeyID and Workload from the access key, Region from the credential
// scope.
//
// Every failure is an *mpmeter.Error with AWS's error name and message, in the
// order AWS checks them (syntax, date, skew, scope, key, session token,
// expiry, signature), so a
// request with several faults gets the error AWS would report. A failure of
// Keys other than mpmeter.ErrNotFound is returned wrapped: it is internal, and
// the client should retry rather than be told its key is unknown.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte) (mpmeter.Caller, error) {
	return v.VerifyRequest(ctx, r, func() ([]byte, error) { return body, nil })
}

// VerifyRequest is Verify in two phases, so that a server reads no body for
// a request its headers already condemn: it first makes every check that
// needs only the headers (missing or malformed Authorization, date, skew,
// scope, unknown access key), then calls readBody once, and then checks the
// payload hash and the signature over the body readBody returned. An error
// of readBody is returned as it is.
func (v *Verifier) VerifyRequest(ctx context.Context, r *http.Request, readBody func() ([]byte, error)) (mpmeter.Caller, error) {
	// Only header authentication: a presigned query (X-Amz-Signature) has no
	// Authorization header and is answered as missing, as no SDK presigns
	// Metering calls.
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return mpmeter.Caller{}, &mpmeter.Error{Code: mpmeter.CodeMissingAuthentication, Message: msgMissingToken}
	}
	if len(r.Header.Values("Authorization")) > 1 {
		// Two headers would let a front end and the verifier disagree on
		// which one counts; no client sends two.
		return mpmeter.Caller{}, &mpmeter.Error{Code: mpmeter.CodeIncompleteSignature, Message: msgTwoAuthorizations}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	a, err := parseAuthorization(authz, amzDate != "" || r.Header.Get("Date") != "")
	if err != nil {
		return mpmeter.Caller{}, err
	}
	if amzDate == "" {
		// The date is part of the string to sign, and only X-Amz-Date's
		// basic format says it unambiguously; no SDK signs with Date alone.
		return mpmeter.Caller{}, mpmeter.Errorf(mpmeter.CodeIncompleteSignature,
			"Authorization header requires existence of a 'X-Amz-Date' header; the 'Date' header is not supported. Authorization=%s", authz)
	}
	signTime, perr := time.Parse(amzDateLayout, amzDate)
	// The round trip rejects values Go's parser tolerates (one-digit hours,
	// ...): the signer writes X-Amz-Date back from the parsed time, so it
	// must come out as the exact bytes the client signed.
	if perr != nil || signTime.Format(amzDateLayout) != amzDate {
		return mpmeter.Caller{}, mpmeter.Errorf(mpmeter.CodeIncompleteSignature,
			"Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", amzDate)
	}
	if err := v.checkSkew(signTime, amzDate); err != nil {
		return mpmeter.Caller{}, err
	}
	if !hasHeaderFold(a.signedHeaders, "host") {
		return mpmeter.Caller{}, &mpmeter.Error{Code: mpmeter.CodeInvalidSignature, Message: msgHostNotSigned}
	}
	if a.algorithm != algorithm {
		return mpmeter.Caller{}, mpmeter.Errorf(mpmeter.CodeIncompleteSignature,
			"Unsupported AWS 'algorithm': '%s' (only %s for now).", a.algorithm, algorithm)
	}
	sc, err := parseScope(a.credential, amzDate)
	if err != nil {
		return mpmeter.Caller{}, err
	}

	key, kerr := v.Keys.AccessKey(ctx, sc.keyID)
	if kerr != nil {
		if errors.Is(kerr, mpmeter.ErrNotFound) {
			return mpmeter.Caller{}, &mpmeter.Error{Code: mpmeter.CodeUnrecognizedClient, Message: msgUnrecognized}
		}
		return mpmeter.Caller{}, fmt.Errorf("sigv4: looking up access key %q: %w", sc.keyID, kerr)
	}
	if key.Revoked() {
		// As AWS answers a deleted key: it names no credentials it knows.
		return mpmeter.Caller{}, &mpmeter.Error{Code: mpmeter.CodeUnrecognizedClient, Message: msgUnrecognized}
	}
	if err := v.checkSessionToken(r, key); err != nil {
		return mpmeter.Caller{}, err
	}

	// The body phase: only now is the body read.
	body, err := readBody()
	if err != nil {
		return mpmeter.Caller{}, err
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if !v.signatureMatches(r, a, key.Secret, sc, amzDate, payloadHash, len(body)) {
		return mpmeter.Caller{}, &mpmeter.Error{Code: mpmeter.CodeInvalidSignature, Message: msgMismatch}
	}
	return mpmeter.Caller{
		AccountID:   key.AccountID,
		AccessKeyID: key.ID,
		Workload:    key.Workload,
		Region:      sc.region,
	}, nil
}

// checkSessionToken enforces the two kinds of key: a long-term key takes no
// X-Amz-Security-Token, temporary credentials need theirs, and AWS answers
// both faults alike (the token names no credentials it knows). Expired
// temporary credentials get STS's ExpiredTokenException with 403, which the
// SDKs recognise as expired credentials. The token is checked whether or not
// the client signed it (SignedHeaders decides what the signature covers).
func (v *Verifier) checkSessionToken(r *http.Request, key mpmeter.AccessKey) error {
	tokens := r.Header.Values("X-Amz-Security-Token")
	sent := len(tokens) > 0 && tokens[0] != ""
	switch {
	case !key.Temporary():
		if sent {
			return &mpmeter.Error{Code: mpmeter.CodeUnrecognizedClient, Message: msgUnrecognized}
		}
		return nil
	case len(tokens) != 1 || subtle.ConstantTimeCompare([]byte(tokens[0]), []byte(key.SessionToken)) != 1:
		return &mpmeter.Error{Code: mpmeter.CodeUnrecognizedClient, Message: msgUnrecognized}
	}
	now := time.Now
	switch {
	case v.ServiceClock != nil:
		now = v.ServiceClock.Now
	case v.Now != nil:
		now = v.Now
	}
	if key.ExpiredAt(now()) {
		return &mpmeter.Error{Code: mpmeter.CodeExpiredToken, Message: msgExpiredToken, HTTPStatus: http.StatusForbidden}
	}
	return nil
}

// checkSkew refuses requests signed too long ago (replays) or too far ahead,
// with AWS's messages: SDKs parse "Signature expired" / "not yet current" to
// detect skew and correct their clock before retrying.
func (v *Verifier) checkSkew(signTime time.Time, amzDate string) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now().UTC().Truncate(time.Second)
	skew := v.MaxSkew
	if skew <= 0 {
		skew = defaultMaxSkew
	}
	if earliest := t.Add(-skew); signTime.Before(earliest) {
		return mpmeter.Errorf(mpmeter.CodeInvalidSignature, "Signature expired: %s is now earlier than %s (%s - %s)",
			amzDate, earliest.Format(amzDateLayout), t.Format(amzDateLayout), formatSkew(skew))
	}
	if latest := t.Add(skew); signTime.After(latest) {
		return mpmeter.Errorf(mpmeter.CodeInvalidSignature, "Signature not yet current: %s is still later than %s (%s + %s)",
			amzDate, latest.Format(amzDateLayout), t.Format(amzDateLayout), formatSkew(skew))
	}
	return nil
}

// formatSkew writes the window as AWS does ("15 min.") when it is whole
// minutes, which the default and any sensible setting are.
func formatSkew(d time.Duration) string {
	switch {
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min."
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + " sec."
	default:
		return d.String()
	}
}

// authorization is the parsed Authorization header.
type authorization struct {
	algorithm     string
	credential    string
	signedHeaders string
	signature     string
}

// parseAuthorization splits "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
// Signature=..." into its parts. Like AWS it tokenises on commas and
// whitespace, so a stray space inside a value (a pasted key with a trailing
// blank) is reported as a broken key=value pair rather than as an unknown key.
// hasDate says whether the request carries a date, which AWS reports together
// with missing parameters.
func parseAuthorization(h string, hasDate bool) (authorization, error) {
	var a authorization
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	a.algorithm = alg
	var haveCred, haveSigned, haveSig bool
	var seenCred, seenSigned, seenSig bool
	// Anything that is not a SigV4-style scheme (Bearer tokens, SigV2's
	// "AWS key:sig") has no parameters to speak of: AWS answers it with the
	// list of missing parameters rather than with a pair-syntax error.
	if strings.HasPrefix(alg, "AWS4-") {
		for rest != "" {
			i := strings.IndexAny(rest, ", \t")
			var tok string
			if i < 0 {
				tok, rest = rest, ""
			} else {
				tok, rest = rest[:i], rest[i+1:]
			}
			if tok == "" {
				continue
			}
			k, val, ok := strings.Cut(tok, "=")
			if !ok {
				return a, mpmeter.Errorf(mpmeter.CodeIncompleteSignature,
					"'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", tok, h)
			}
			if (k == "Credential" && seenCred) || (k == "SignedHeaders" && seenSigned) || (k == "Signature" && seenSig) {
				// A second value would let two readers of the header
				// disagree on what was signed.
				return a, mpmeter.Errorf(mpmeter.CodeIncompleteSignature,
					"'%s' appears more than once in Authorization header: '%s'.", k, h)
			}
			seenCred, seenSigned, seenSig = seenCred || k == "Credential", seenSigned || k == "SignedHeaders", seenSig || k == "Signature"
			switch k {
			case "Credential":
				a.credential, haveCred = val, val != ""
			case "SignedHeaders":
				// An empty list is syntactically present; it fails the
				// Host check instead, as at AWS.
				a.signedHeaders, haveSigned = val, true
			case "Signature":
				a.signature, haveSig = val, val != ""
			}
		}
	}
	if haveCred && haveSigned && haveSig && hasDate {
		return a, nil
	}
	var b strings.Builder
	if !haveCred {
		b.WriteString("Authorization header requires 'Credential' parameter. ")
	}
	if !haveSig {
		b.WriteString("Authorization header requires 'Signature' parameter. ")
	}
	if !haveSigned {
		b.WriteString("Authorization header requires 'SignedHeaders' parameter. ")
	}
	if !hasDate {
		b.WriteString(msgRequiresDate + " ")
	}
	b.WriteString("Authorization=")
	b.WriteString(h)
	return a, &mpmeter.Error{Code: mpmeter.CodeIncompleteSignature, Message: b.String()}
}

// hasHeaderFold reports whether the ;-separated list holds name, ignoring
// case as AWS does for this check.
func hasHeaderFold(list, name string) bool {
	for list != "" {
		var h string
		h, list, _ = strings.Cut(list, ";")
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// scope is the parsed Credential: keyid/date/region/service/aws4_request.
type scope struct {
	keyID, date, region, service string
}

// parseScope checks the credential scope before the key is looked up, so a
// client pointed at the wrong service or signing with a stale date learns
// that instead of getting a bare signature mismatch.
func parseScope(cred, amzDate string) (scope, error) {
	p := strings.Split(strings.TrimRight(cred, "/"), "/") // AWS ignores trailing slashes
	if len(p) != 5 {
		return scope{}, mpmeter.Errorf(mpmeter.CodeIncompleteSignature,
			"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", cred)
	}
	s := scope{keyID: p[0], date: p[1], region: p[2], service: p[3]}
	var msgs []string
	if s.region == "" {
		// Which regions exist is decided by the service (the endpoint
		// region check), not here; an empty one cannot be any.
		msgs = append(msgs, "Credential should be scoped to a valid region, not ''.")
	}
	if s.service != mpmeter.SigningName {
		msgs = append(msgs, "Credential should be scoped to correct service: '"+mpmeter.SigningName+"'.")
	}
	if p[4] != scopeTerminator {
		msgs = append(msgs, "Credential should be scoped with a valid terminator: '"+scopeTerminator+"', not '"+p[4]+"'.")
	}
	if s.date != amzDate[:8] {
		msgs = append(msgs, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '"+
			s.date+"' != '"+amzDate[:8]+"', from '"+amzDate+"'.")
	}
	if msgs != nil {
		return scope{}, &mpmeter.Error{Code: mpmeter.CodeInvalidSignature, Message: strings.Join(msgs, " ")}
	}
	return s, nil
}

// signatureMatches recomputes the signature over the request as received and
// compares it with the client's in constant time. bodyLen is the length of
// the body whose hash payloadHash is.
//
// The canonical request is built from exactly the headers the client listed
// in SignedHeaders, which must be the list a signer writes: names in lower
// case, sorted, each once, host and x-amz-date among them (AWS requires the
// date signed). Each listed header must be present: a header that is not
// there cannot have been signed. Its values, in the order received, are
// trimmed, runs of spaces inside are collapsed to one, and repeated headers
// are joined with commas; host is Request.Host. Three headers are checked
// beyond that: x-amz-date must be sent once (two would have been signed as
// "a,b", which no date parses from); x-amz-content-sha256 must be the hash of
// the body received (not another body's, nor UNSIGNED-PAYLOAD, which only S3
// accepts); and a signed content-length must be sent once, in canonical
// decimal, and be the body's length: 0 for an empty body, which the AWS SDK
// for JavaScript v3 signs too. Without a Content-Length header a positive
// Request.ContentLength stands for it, as an in-process request has no
// header for it.
//
// The path is escaped once more over its escaped form (every segment encoded
// twice, as SigV4 asks of every service but S3) and the query is sorted
// after encoding, as aws-sdk-go-v2's signer does; the tests hold the two to
// the same signatures.
func (v *Verifier) signatureMatches(r *http.Request, a authorization, secret string, sc scope, amzDate, payloadHash string, bodyLen int) bool {
	var got [sha256.Size]byte
	if !decodeHex(got[:], a.signature) {
		return false
	}
	// On the stack for requests of ordinary size; a longer canonical
	// request only costs a heap copy.
	var creqBuf [2048]byte
	creq, ok := appendCanonicalRequest(creqBuf[:0], r, a.signedHeaders, amzDate, payloadHash, bodyLen)
	if !ok {
		return false
	}
	creqHash := sha256.Sum256(creq)

	var stsBuf [256]byte
	sts := append(stsBuf[:0], algorithm+"\n"...)
	sts = append(sts, amzDate...)
	sts = append(sts, '\n')
	sts = appendScope(sts, sc)
	sts = append(sts, '\n')
	sts = hex.AppendEncode(sts, creqHash[:])

	k := scopeKey{secret: secret, region: sc.region, service: sc.service}
	sk, cached := v.keyFor(k, sc.date)
	var want [sha256.Size]byte
	if !hmac.Equal(hmacSHA256(want[:0], sk.key[:], sts), got[:]) {
		return false
	}
	if !cached {
		v.remember(k, sk)
	}
	return true
}

// appendCanonicalRequest appends SigV4's canonical request to b: method, URI,
// query, the canonical headers, the signed-header list and the payload hash,
// one per line. It reports false when the request cannot have been signed
// with this SignedHeaders list (see signatureMatches).
func appendCanonicalRequest(b []byte, r *http.Request, signedHeaders, amzDate, payloadHash string, bodyLen int) ([]byte, bool) {
	b = append(b, r.Method...)
	b = append(b, '\n')
	if r.URL == nil {
		b = append(b, "/\n\n"...)
	} else {
		b = appendCanonicalURI(b, r.URL.EscapedPath())
		b = append(b, '\n')
		b = appendCanonicalQuery(b, r.URL.RawQuery)
		b = append(b, '\n')
	}

	var sawHost, sawDate bool
	prev := ""
	for rest, more := signedHeaders, true; more; {
		var name string
		name, rest, more = strings.Cut(rest, ";")
		if name == "" || name <= prev || !isLowerName(name) {
			return b, false // not sorted, repeated, empty or not lower case
		}
		prev = name
		b = append(b, name...)
		b = append(b, ':')
		switch name {
		case "host":
			// As the client sent it, a default port (":80") included.
			sawHost = true
			host := r.Host
			if host == "" && r.URL != nil {
				host = r.URL.Host
			}
			b = appendCollapsed(b, host)
		case "x-amz-date":
			// amzDate is the header's value: VerifyRequest parsed it
			// and checked that it formats back to the same bytes.
			if len(r.Header["X-Amz-Date"]) != 1 {
				return b, false
			}
			sawDate = true
			b = append(b, amzDate...)
		case "content-length":
			n, ok := signedContentLength(r)
			if !ok || n != int64(bodyLen) {
				return b, false
			}
			b = strconv.AppendInt(b, n, 10)
		default:
			vals := headerValues(r.Header, name)
			if len(vals) == 0 {
				return b, false
			}
			if name == "x-amz-content-sha256" && (len(vals) != 1 || vals[0] != payloadHash) {
				return b, false
			}
			for i, val := range vals {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendCollapsed(b, strings.TrimSpace(val))
			}
		}
		b = append(b, '\n')
	}
	if !sawHost || !sawDate {
		return b, false
	}
	b = append(b, '\n')
	b = append(b, signedHeaders...)
	b = append(b, '\n')
	b = append(b, payloadHash...)
	return b, true
}

// signedContentLength is the length the client declared: the Content-Length
// header, which must be sent once and in canonical decimal (what a signer
// signs), or without the header a positive Request.ContentLength.
func signedContentLength(r *http.Request) (int64, bool) {
	vals := r.Header["Content-Length"]
	switch {
	case len(vals) == 0 && r.ContentLength > 0:
		return r.ContentLength, true
	case len(vals) != 1:
		return 0, false
	}
	n, err := strconv.ParseInt(vals[0], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != vals[0] {
		return 0, false
	}
	return n, true
}

// isLowerName reports whether a SignedHeaders name is ASCII without an
// upper-case letter: signers write the names in lower case, and one that did
// not signed another list than the one it sent; header names are ASCII.
func isLowerName(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// appendCollapsed appends s without leading or trailing spaces and with each
// run of spaces inside it as one space: SigV4's canonical header value, once
// strings.TrimSpace has removed other white space at the ends.
func appendCollapsed(b []byte, s string) []byte {
	start, space := len(b), false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			space = true
			continue
		}
		if space && len(b) > start {
			b = append(b, ' ')
		}
		space = false
		b = append(b, c)
	}
	return b
}

// appendCanonicalURI appends the escaped path escaped once more: every byte
// but the unreserved ones and '/' as %XX. An empty path is "/".
func appendCanonicalURI(b []byte, escapedPath string) []byte {
	if escapedPath == "" {
		return append(b, '/')
	}
	for i := 0; i < len(escapedPath); i++ {
		if c := escapedPath[i]; c == '/' || isUnreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', upperHex[c>>4], upperHex[c&0xf])
		}
	}
	return b
}

const upperHex = "0123456789ABCDEF"

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// appendCanonicalQuery appends the query's parameters, names and values each
// URI-encoded (a space as %20), sorted by encoded name and then value.
// Parameters url.ParseQuery cannot read are left out, as aws-sdk-go-v2's
// signer leaves them out.
func appendCanonicalQuery(b []byte, rawQuery string) []byte {
	if rawQuery == "" {
		return b
	}
	q, _ := url.ParseQuery(rawQuery)
	type param struct{ key, value string }
	params := make([]param, 0, len(q))
	for k, vs := range q {
		ek := queryEscape(k)
		for _, v := range vs {
			params = append(params, param{ek, queryEscape(v)})
		}
	}
	slices.SortFunc(params, func(x, y param) int {
		if c := strings.Compare(x.key, y.key); c != 0 {
			return c
		}
		return strings.Compare(x.value, y.value)
	})
	for i, p := range params {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.key...)
		b = append(b, '=')
		b = append(b, p.value...)
	}
	return b
}

// queryEscape is url.QueryEscape with a space as %20 (a literal '+' is
// already %2B there).
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// appendScope appends the credential scope: date/region/service/aws4_request.
func appendScope(b []byte, sc scope) []byte {
	b = append(b, sc.date...)
	b = append(b, '/')
	b = append(b, sc.region...)
	b = append(b, '/')
	b = append(b, sc.service...)
	b = append(b, '/')
	return append(b, scopeTerminator...)
}

// headerValues is h[textproto.CanonicalMIMEHeaderKey(name)] for the
// lower-case names of SignedHeaders, without allocating the canonical key
// (a lookup by string(bytes) does not copy).
func headerValues(h http.Header, name string) []string {
	var buf [64]byte
	if len(name) > len(buf) {
		return h[textproto.CanonicalMIMEHeaderKey(name)]
	}
	b := buf[:len(name)]
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z':
			if upper {
				c -= 'a' - 'A'
			}
		case '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			// Upper case or unusual bytes: leave the rules to textproto.
			return h[textproto.CanonicalMIMEHeaderKey(name)]
		}
		b[i] = c
		upper = c == '-'
	}
	return h[string(b)]
}

// decodeHex decodes the lower-case hex of a signature into dst, which it must
// fill exactly; upper case is refused, as the canonical form is lower case.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// keyFor returns the signing key of k for the day date (YYYYMMDD): the
// cached one, or one derived now (four HMACs) that the caller remembers
// only once it has verified a request, so that unauthenticated traffic can
// neither grow nor churn the cache.
func (v *Verifier) keyFor(k scopeKey, date string) (sk signingKey, cached bool) {
	v.mu.RLock()
	sk, ok := v.keys[k]
	v.mu.RUnlock()
	if ok && sk.date == date {
		return sk, true
	}
	return deriveSigningKey(k, date), false
}

// deriveSigningKey is SigV4's key derivation: HMAC-SHA256 chained from
// "AWS4"+secret over the date, region, service and "aws4_request".
func deriveSigningKey(k scopeKey, date string) signingKey {
	sk := signingKey{date: date}
	key := hmacSHA256(sk.key[:0], []byte("AWS4"+k.secret), []byte(date))
	key = hmacSHA256(sk.key[:0], key, []byte(k.region))
	key = hmacSHA256(sk.key[:0], key, []byte(k.service))
	hmacSHA256(sk.key[:0], key, []byte(scopeTerminator))
	return sk
}

// hmacSHA256 appends HMAC-SHA256(key, data) to dst, which may share key's
// memory: the key is read before anything is written.
func hmacSHA256(dst, key, data []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(data)
	return mac.Sum(dst)
}

// remember caches sk for k, replacing the key of another day.
func (v *Verifier) remember(k scopeKey, sk signingKey) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys == nil {
		v.keys = make(map[scopeKey]signingKey)
	}
	old, ok := v.keys[k]
	if ok && old.date == sk.date {
		return
	}
	if !ok && len(v.keys) >= maxSigningKeys {
		for other := range v.keys {
			delete(v.keys, other)
			break
		}
	}
	v.keys[k] = sk
}
