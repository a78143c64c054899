// Package sigv4 authenticates requests the way AWS does: it checks the
// Signature Version 4 in the Authorization header against the caller's access
// key and answers with AWS's own error names and messages, so that real SDKs
// react to our failures (retries, clock-skew correction, error classes) as they
// would to AWS's.
//
// The signature is recomputed with aws-sdk-go-v2's signer rather than with a
// canonicaliser of our own: it is the reference implementation clients agree
// with, and PROTOCOL.md requires it. The signer decides for itself which
// headers to sign, so Verify rebuilds a request holding exactly the headers
// the client listed in SignedHeaders and then insists that the signer signed
// that same list; a request the signer cannot reproduce is rejected, never
// accepted on a partial signature.
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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

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
	// signers caches one signer per (secret, region): the signer derives the
	// signing key (four HMACs) once per day and keeps it. The signer's own
	// cache is keyed by region and access key id only, not by secret, so a
	// shared signer would keep accepting a rotated-out secret until midnight;
	// keying our map by the secret makes rotation take effect at once.
	signers map[signerKey]*v4.Signer
}

type signerKey struct{ secret, region string }

const (
	algorithm       = "AWS4-HMAC-SHA256"
	amzDateLayout   = "20060102T150405Z"
	scopeTerminator = "aws4_request"
	defaultMaxSkew  = 15 * time.Minute
	// maxSigners bounds the signing-key cache. It only grows on successful
	// verifications, so an attacker without a secret cannot flush it; beyond
	// it an arbitrary entry is dropped and re-derived on its next use.
	maxSigners = 4096
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
	if !v.signatureMatches(ctx, r, a, key, sc, signTime, payloadHash) {
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

// signatureMatches recomputes the signature with aws-sdk-go-v2's signer over
// a request rebuilt from exactly the headers the client signed, and compares
// in constant time.
//
// The signer chooses what it signs: always host (from Request.Host) and
// X-Amz-Date (written from the signing time), content-length only from
// Request.ContentLength and only when positive, and every other header except
// a fixed ignore list (User-Agent, Expect, ...). The rebuild works with that:
// header names go into the map lower-cased, which the ignore list (keyed by
// canonical names) does not match, so a client that signs User-Agent still
// verifies; content-length is passed as ContentLength; the session token is
// an ordinary header, signed only when the client signed it. What the signer
// cannot reproduce is refused: "content-length: 0" signed (no SDK does that
// for this JSON API, whose body is never empty) and X-Amz-Date left unsigned
// (AWS requires it signed). Such requests come out with another SignedHeaders
// list than the client's, which is checked explicitly, although the list is
// part of the canonical request and would break the signature anyway.
func (v *Verifier) signatureMatches(ctx context.Context, r *http.Request, a authorization, key mpmeter.AccessKey,
	sc scope, signTime time.Time, payloadHash string) bool {
	hdr := make(http.Header, strings.Count(a.signedHeaders, ";")+2)
	var contentLength int64
	for list := a.signedHeaders; list != ""; {
		var name string
		name, list, _ = strings.Cut(list, ";")
		switch name {
		case "host":
			continue // the signer takes it from req.Host
		case "x-amz-date":
			// The signer writes it from signTime, which round-trips to the
			// header's bytes; a repeated header would have been signed as
			// "a,b", which no date parses from.
			if len(r.Header["X-Amz-Date"]) != 1 {
				return false
			}
			continue
		case "content-length":
			cl := r.Header.Get("Content-Length")
			if cl == "" && r.ContentLength > 0 {
				cl = strconv.FormatInt(r.ContentLength, 10)
			}
			n, err := strconv.ParseInt(cl, 10, 64)
			if err != nil || n <= 0 || strconv.FormatInt(n, 10) != cl {
				return false
			}
			contentLength = n
			continue
		}
		vals := headerValues(r.Header, name)
		if len(vals) == 0 {
			// A signed header that is not there cannot have been signed.
			return false
		}
		if name == "x-amz-content-sha256" && (len(vals) != 1 || vals[0] != payloadHash) {
			// The header claims a body other than the one received (or
			// UNSIGNED-PAYLOAD, which only S3 accepts).
			return false
		}
		hdr[name] = vals
	}

	u := &url.URL{Path: "/"}
	if r.URL != nil {
		u = &url.URL{Host: r.URL.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	}
	// No scheme on u: the signer strips a default port (":80" for http) from
	// the host when it knows the scheme, but the client signed the Host
	// header as it sent it.
	req := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: hdr, ContentLength: contentLength}

	sk := signerKey{secret: key.Secret, region: sc.region}
	signer, cached := v.signer(sk)
	creds := aws.Credentials{AccessKeyID: sc.keyID, SecretAccessKey: key.Secret}
	if err := signer.SignHTTP(ctx, creds, req, payloadHash, sc.service, sc.region, signTime); err != nil {
		return false
	}
	signed, sig, ok := signerOutput(req.Header.Get("Authorization"))
	if !ok || signed != a.signedHeaders {
		return false
	}
	var want, got [sha256.Size]byte
	if !decodeHex(want[:], sig) || !decodeHex(got[:], a.signature) || !hmac.Equal(want[:], got[:]) {
		return false
	}
	if !cached {
		v.remember(sk, signer)
	}
	return true
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

// signerOutput takes SignedHeaders and Signature from the Authorization header
// the signer wrote, whose layout is fixed: "AWS4-HMAC-SHA256
// Credential=..., SignedHeaders=..., Signature=...".
func signerOutput(h string) (signedHeaders, signature string, ok bool) {
	const sh, sg = ", SignedHeaders=", ", Signature="
	i := strings.Index(h, sh)
	j := strings.LastIndex(h, sg)
	if i < 0 || j < i+len(sh) {
		return "", "", false
	}
	return h[i+len(sh) : j], h[j+len(sg):], true
}

// signer returns the cached signer for k, or a fresh one that the caller
// remembers only once it has verified a request: unauthenticated traffic
// must not be able to grow or churn the cache.
func (v *Verifier) signer(k signerKey) (s *v4.Signer, cached bool) {
	v.mu.RLock()
	s = v.signers[k]
	v.mu.RUnlock()
	if s != nil {
		return s, true
	}
	return v4.NewSigner(), false
}

func (v *Verifier) remember(k signerKey, s *v4.Signer) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.signers == nil {
		v.signers = make(map[signerKey]*v4.Signer)
	}
	if _, ok := v.signers[k]; ok {
		return
	}
	if len(v.signers) >= maxSigners {
		for old := range v.signers {
			delete(v.signers, old)
			break
		}
	}
	v.signers[k] = s
}
