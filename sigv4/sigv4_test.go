package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mpmeter/mpmeter"
)

const (
	capturesPath = "../spec/captures/sigv4-requests.jsonl"
	sellerKeyID  = "AKIAEXAMPLESELLER001"
	sellerSecret = "seller-secret"
	sellerAcct   = "111122223333"
)

// capture is one line of sigv4-requests.jsonl: a request as a real SDK sent it.
type capture struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	Headers [][2]string `json:"headers"`
	Body    string      `json:"body"`
}

func loadCaptures(t testing.TB) []capture {
	t.Helper()
	cs := readCaptures(t, capturesPath)
	if len(cs) != 9 {
		t.Fatalf("got %d captures, want 9", len(cs))
	}
	return cs
}

// readCaptures reads a file of captures, one JSON object a line.
func readCaptures(t testing.TB, path string) []capture {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading captures: %v", err)
	}
	var cs []capture
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var c capture
		if err := json.Unmarshal(line, &c); err != nil {
			t.Fatalf("parsing capture: %v", err)
		}
		cs = append(cs, c)
	}
	return cs
}

func (c capture) name() string {
	return c.get("User-Agent")[:12] + "/" + strings.TrimPrefix(c.get("X-Amz-Target"), mpmeter.TargetPrefix+".")
}

func (c capture) get(name string) string {
	for _, h := range c.Headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

func (c capture) clone() capture {
	c.Headers = append([][2]string(nil), c.Headers...)
	return c
}

// with returns a copy of c whose header name (any case) is set by f.
func (c capture) with(name string, f func(string) string) capture {
	c = c.clone()
	for i, h := range c.Headers {
		if strings.EqualFold(h[0], name) {
			c.Headers[i][1] = f(h[1])
			return c
		}
	}
	c.Headers = append(c.Headers, [2]string{name, f("")})
	return c
}

func (c capture) without(name string) capture {
	c = c.clone()
	out := c.Headers[:0]
	for _, h := range c.Headers {
		if !strings.EqualFold(h[0], name) {
			out = append(out, h)
		}
	}
	c.Headers = out
	return c
}

func (c capture) signedHeaders() []string {
	a := c.get("Authorization")
	i := strings.Index(a, "SignedHeaders=")
	s := a[i+len("SignedHeaders="):]
	s = s[:strings.IndexByte(s, ',')]
	return strings.Split(s, ";")
}

func (c capture) signTime(t testing.TB) time.Time {
	ts, err := time.Parse(amzDateLayout, c.get("X-Amz-Date"))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// request turns c into what a Go HTTP server hands its handler, by parsing
// the request off the wire: Host moves to r.Host, keys are canonicalised,
// repeated headers are merged.
func (c capture) request(t testing.TB) *http.Request {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", c.Method, c.Path)
	for _, h := range c.Headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	b.WriteString("\r\n")
	b.WriteString(c.Body)
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(b.String())))
	if err != nil {
		t.Fatalf("reading request: %v", err)
	}
	return r
}

type keys struct {
	mu   sync.Mutex
	m    map[string]mpmeter.AccessKey
	err  error
	hits int
}

func (k *keys) AccessKey(_ context.Context, id string) (mpmeter.AccessKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.hits++
	if k.err != nil {
		return mpmeter.AccessKey{}, k.err
	}
	key, ok := k.m[id]
	if !ok {
		return mpmeter.AccessKey{}, fmt.Errorf("access key %s: %w", id, mpmeter.ErrNotFound)
	}
	return key, nil
}

func (k *keys) setSecret(id, secret string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key := k.m[id]
	key.Secret = secret
	k.m[id] = key
}

func sellerKeys() *keys {
	return &keys{m: map[string]mpmeter.AccessKey{
		sellerKeyID: {ID: sellerKeyID, Secret: sellerSecret, AccountID: sellerAcct},
	}}
}

// keysWithSessionToken is the seller's key as temporary credentials with
// this session token (long-term when it is empty).
func keysWithSessionToken(token string) *keys {
	k := sellerKeys()
	key := k.m[sellerKeyID]
	key.SessionToken = token
	k.m[sellerKeyID] = key
	return k
}

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

func verifierAt(t time.Time) *Verifier {
	return &Verifier{Keys: sellerKeys(), Now: fixedNow(t)}
}

func verifyCapture(t testing.TB, v *Verifier, c capture) (mpmeter.Caller, error) {
	t.Helper()
	return v.Verify(context.Background(), c.request(t), []byte(c.Body))
}

func wantErr(t testing.TB, err error, code mpmeter.ErrorCode, msg string) {
	t.Helper()
	var e *mpmeter.Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %v, want %s %q", err, code, msg)
	}
	if e.Code != code || e.Message != msg {
		t.Fatalf("got %s %q\nwant %s %q", e.Code, e.Message, code, msg)
	}
}

func TestCapturesVerify(t *testing.T) {
	for _, c := range loadCaptures(t) {
		t.Run(c.name(), func(t *testing.T) {
			v := verifierAt(c.signTime(t))
			caller, err := verifyCapture(t, v, c)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := mpmeter.Caller{AccountID: sellerAcct, AccessKeyID: sellerKeyID, Region: "us-east-1"}
			if caller != want {
				t.Fatalf("caller %+v, want %+v", caller, want)
			}
			// Again, now from the signing-key cache.
			if _, err := verifyCapture(t, v, c); err != nil {
				t.Fatalf("second Verify: %v", err)
			}
		})
	}
}

// The captures also pin down the test's own reference signer, which the
// later tests use to sign header sets the SDK signer never produces.
func TestReferenceSignerReproducesCaptures(t *testing.T) {
	for _, c := range loadCaptures(t) {
		got := refAuthorization(c.Method, c.Path, c.Headers, c.signedHeaders(), []byte(c.Body),
			sellerKeyID, sellerSecret, "us-east-1", mpmeter.SigningName, c.signTime(t))
		if got != c.get("Authorization") {
			t.Errorf("%s: reference signer gives\n%s\nclient sent\n%s", c.name(), got, c.get("Authorization"))
		}
	}
}

func TestCapturesRejectBodyChange(t *testing.T) {
	for _, c := range loadCaptures(t) {
		v := verifierAt(c.signTime(t))
		for _, i := range []int{0, len(c.Body) / 2, len(c.Body) - 1} {
			b := []byte(c.Body)
			b[i] ^= 0x01
			_, err := v.Verify(context.Background(), c.request(t), b)
			wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)
		}
		_, err := v.Verify(context.Background(), c.request(t), append([]byte(c.Body), ' '))
		wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)
	}
}

func TestCapturesRejectSignedHeaderChange(t *testing.T) {
	for _, c := range loadCaptures(t) {
		v := verifierAt(c.signTime(t))
		for _, name := range c.signedHeaders() {
			t.Run(c.name()+"/"+name, func(t *testing.T) {
				var changed capture
				switch name {
				case "x-amz-date":
					// One second later: still the same day and within the
					// skew window, so only the signature can catch it.
					changed = c.with(name, func(s string) string {
						return c.signTime(t).Add(time.Second).Format(amzDateLayout)
					})
				case "content-length":
					changed = c.with(name, func(s string) string { return s + "0" })
				case "host":
					changed = c.with(name, func(s string) string { return strings.Replace(s, "5077", "5078", 1) })
				default:
					changed = c.with(name, func(s string) string { return s + "x" })
				}
				_, err := verifyCapture(t, v, changed)
				wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)

				if name != "host" {
					_, err = verifyCapture(t, v, c.without(name))
					if name == "x-amz-date" {
						wantErr(t, err, mpmeter.CodeIncompleteSignature,
							"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization="+c.get("Authorization"))
					} else {
						wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)
					}
				}
				// A second value for the header is part of what was signed.
				if name != "host" && name != "content-length" {
					twice := c.clone()
					twice.Headers = append(twice.Headers, [2]string{name, c.get(name)})
					_, err = verifyCapture(t, v, twice)
					wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)
				}
			})
		}
	}
}

func TestCapturesIgnoreUnsignedHeaders(t *testing.T) {
	for _, c := range loadCaptures(t) {
		v := verifierAt(c.signTime(t))
		signed := map[string]bool{"authorization": true}
		for _, h := range c.signedHeaders() {
			signed[h] = true
		}
		var unsigned []string
		for _, h := range c.Headers {
			if !signed[strings.ToLower(h[0])] {
				unsigned = append(unsigned, h[0])
			}
		}
		if len(unsigned) == 0 {
			t.Fatalf("%s: every header is signed", c.name())
		}
		for _, name := range unsigned {
			change := func(s string) string { return s + " changed" }
			if strings.EqualFold(name, "Content-Length") {
				change = func(s string) string { return s + "0" }
			}
			if _, err := verifyCapture(t, v, c.with(name, change)); err != nil {
				t.Errorf("%s: changing unsigned %s: %v", c.name(), name, err)
			}
			if _, err := verifyCapture(t, v, c.without(name)); err != nil {
				t.Errorf("%s: removing unsigned %s: %v", c.name(), name, err)
			}
		}
		added := c.clone()
		added.Headers = append(added.Headers, [2]string{"X-Forwarded-For", "10.0.0.1"}, [2]string{"X-Amz-Meta-Extra", "1"})
		if _, err := verifyCapture(t, v, added); err != nil {
			t.Errorf("%s: adding unsigned headers: %v", c.name(), err)
		}
	}
}

func TestErrors(t *testing.T) {
	cs := loadCaptures(t)
	boto, jsv2 := cs[0], cs[6] // boto3 BatchMeterUsage; JS v2 signs X-Amz-Content-Sha256
	at := boto.signTime(t)
	auth := boto.get("Authorization")
	withAuth := func(f func(string) string) capture { return boto.with("Authorization", f) }
	replace := func(old, new string) capture {
		return withAuth(func(s string) string {
			if !strings.Contains(s, old) {
				t.Fatalf("%q not in %q", old, s)
			}
			return strings.Replace(s, old, new, 1)
		})
	}
	incomplete := func(missing ...string) string {
		var b strings.Builder
		for _, m := range missing {
			if m == "date" {
				b.WriteString(msgRequiresDate + " ")
			} else {
				fmt.Fprintf(&b, "Authorization header requires '%s' parameter. ", m)
			}
		}
		return b.String() + "Authorization="
	}

	tests := []struct {
		name     string
		c        capture
		body     string // default: c.Body
		v        *Verifier
		code     mpmeter.ErrorCode
		msg      string
		internal error
	}{
		{
			name: "no Authorization", c: boto.without("Authorization"),
			code: mpmeter.CodeMissingAuthentication, msg: "Missing Authentication Token",
		},
		{
			name: "presigned query only",
			c: func() capture {
				c := boto.without("Authorization")
				c.Path = "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLESELLER001%2F20261124%2Fus-east-1%2Faws-marketplace%2Faws4_request&X-Amz-Date=20261124T191404Z&X-Amz-SignedHeaders=host&X-Amz-Signature=8d9098a8432889c4902bb4cf371f7f2e69a88c68c1b7e9bef0d8d9ef8e19c4be"
				return c
			}(),
			code: mpmeter.CodeMissingAuthentication, msg: "Missing Authentication Token",
		},
		{
			name: "bearer token", c: withAuth(func(string) string { return "Bearer eyJhbGciOi.eyJzdWIi.sig" }),
			code: mpmeter.CodeIncompleteSignature,
			msg:  incomplete("Credential", "Signature", "SignedHeaders") + "Bearer eyJhbGciOi.eyJzdWIi.sig",
		},
		{
			name: "SigV2 header", c: withAuth(func(string) string { return "AWS AKIAEXAMPLESELLER001:qaNdqGsI6bq4Hi+9Gzovwyjbh0E=" }),
			code: mpmeter.CodeIncompleteSignature,
			msg:  incomplete("Credential", "Signature", "SignedHeaders") + "AWS AKIAEXAMPLESELLER001:qaNdqGsI6bq4Hi+9Gzovwyjbh0E=",
		},
		{
			name: "algorithm only", c: withAuth(func(string) string { return "AWS4-HMAC-SHA256" }),
			code: mpmeter.CodeIncompleteSignature,
			msg:  incomplete("Credential", "Signature", "SignedHeaders") + "AWS4-HMAC-SHA256",
		},
		{
			name: "no Signature, no date",
			c: func() capture {
				c := replace(", Signature=8d9098a8432889c4902bb4cf371f7f2e69a88c68c1b7e9bef0d8d9ef8e19c4be", "")
				return c.without("X-Amz-Date")
			}(),
			code: mpmeter.CodeIncompleteSignature,
			msg:  incomplete("Signature", "date") + strings.Replace(auth, ", Signature=8d9098a8432889c4902bb4cf371f7f2e69a88c68c1b7e9bef0d8d9ef8e19c4be", "", 1),
		},
		{
			name: "empty Credential", c: replace("Credential=AKIAEXAMPLESELLER001/20261124/us-east-1/aws-marketplace/aws4_request", "Credential="),
			code: mpmeter.CodeIncompleteSignature,
			msg:  incomplete("Credential") + strings.Replace(auth, "Credential=AKIAEXAMPLESELLER001/20261124/us-east-1/aws-marketplace/aws4_request", "Credential=", 1),
		},
		{
			name: "Date instead of X-Amz-Date",
			c:    boto.without("X-Amz-Date").with("Date", func(string) string { return "Tue, 24 Nov 2026 19:14:04 GMT" }),
			code: mpmeter.CodeIncompleteSignature,
			msg:  "Authorization header requires existence of a 'X-Amz-Date' header; the 'Date' header is not supported. Authorization=" + auth,
		},
		{
			name: "space inside Credential", c: replace("Credential=AKIAEXAMPLESELLER001/", "Credential=AKIAEXAMPLESELLER001 /"),
			code: mpmeter.CodeIncompleteSignature,
			msg: "'/20261124/us-east-1/aws-marketplace/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: '" +
				strings.Replace(auth, "Credential=AKIAEXAMPLESELLER001/", "Credential=AKIAEXAMPLESELLER001 /", 1) + "'.",
		},
		{
			name: "bad X-Amz-Date", c: boto.with("X-Amz-Date", func(string) string { return "2026-11-24T19:14:04Z" }),
			code: mpmeter.CodeIncompleteSignature,
			msg:  "Date must be in ISO-8601 'basic format'. Got '2026-11-24T19:14:04Z'. See http://en.wikipedia.org/wiki/ISO_8601",
		},
		{
			name: "X-Amz-Date without Z", c: boto.with("X-Amz-Date", func(string) string { return "20261124T191404" }),
			code: mpmeter.CodeIncompleteSignature,
			msg:  "Date must be in ISO-8601 'basic format'. Got '20261124T191404'. See http://en.wikipedia.org/wiki/ISO_8601",
		},
		{
			name: "host not signed", c: replace("SignedHeaders=content-type;host;x-amz-date;x-amz-target", "SignedHeaders=content-type;x-amz-date;x-amz-target"),
			code: mpmeter.CodeInvalidSignature, msg: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
		},
		{
			name: "empty SignedHeaders", c: replace("SignedHeaders=content-type;host;x-amz-date;x-amz-target", "SignedHeaders="),
			code: mpmeter.CodeInvalidSignature, msg: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
		},
		{
			name: "unsupported algorithm", c: replace("AWS4-HMAC-SHA256 ", "AWS4-ECDSA-P256-SHA256 "),
			code: mpmeter.CodeIncompleteSignature,
			msg:  "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256' (only AWS4-HMAC-SHA256 for now).",
		},
		{
			name: "credential of 4 parts", c: replace("/us-east-1/aws-marketplace/", "/aws-marketplace/"),
			code: mpmeter.CodeIncompleteSignature,
			msg:  "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIAEXAMPLESELLER001/20261124/aws-marketplace/aws4_request'",
		},
		{
			name: "credential of 6 parts", c: replace("/aws4_request", "/aws4_request/x"),
			code: mpmeter.CodeIncompleteSignature,
			msg:  "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIAEXAMPLESELLER001/20261124/us-east-1/aws-marketplace/aws4_request/x'",
		},
		{
			// AWS ignores trailing slashes; the signature then still has to match.
			name: "trailing slash in credential", c: replace("/aws4_request", "/aws4_request/"),
		},
		{
			name: "wrong service", c: replace("/aws-marketplace/", "/execute-api/"),
			code: mpmeter.CodeInvalidSignature, msg: "Credential should be scoped to correct service: 'aws-marketplace'.",
		},
		{
			name: "wrong terminator", c: replace("/aws4_request", "/aws4_reques"),
			code: mpmeter.CodeInvalidSignature, msg: "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_reques'.",
		},
		{
			name: "scope date not the X-Amz-Date date", c: replace("/20261124/", "/20261123/"),
			code: mpmeter.CodeInvalidSignature,
			msg:  "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261123' != '20261124', from '20261124T191404Z'.",
		},
		{
			name: "several scope faults", c: replace("/20261124/us-east-1/aws-marketplace/aws4_request", "/20261123//s3/x"),
			code: mpmeter.CodeInvalidSignature,
			msg: "Credential should be scoped to a valid region, not ''. " +
				"Credential should be scoped to correct service: 'aws-marketplace'. " +
				"Credential should be scoped with a valid terminator: 'aws4_request', not 'x'. " +
				"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261123' != '20261124', from '20261124T191404Z'.",
		},
		{
			name: "unknown access key", c: replace("Credential=AKIAEXAMPLESELLER001/", "Credential=AKIAEXAMPLEUNKNOWN1/"),
			code: mpmeter.CodeUnrecognizedClient, msg: "The security token included in the request is invalid.",
		},
		{
			name: "revoked access key", c: boto,
			v: &Verifier{Now: fixedNow(at), Keys: &keys{m: map[string]mpmeter.AccessKey{
				sellerKeyID: {ID: sellerKeyID, Secret: sellerSecret, AccountID: sellerAcct, RevokedAt: at.Add(-time.Hour)},
			}}},
			code: mpmeter.CodeUnrecognizedClient, msg: "The security token included in the request is invalid.",
		},
		{
			name: "wrong secret", c: boto,
			v: &Verifier{Now: fixedNow(at), Keys: &keys{m: map[string]mpmeter.AccessKey{
				sellerKeyID: {ID: sellerKeyID, Secret: "other-secret", AccountID: sellerAcct},
			}}},
			code: mpmeter.CodeInvalidSignature, msg: msgMismatch,
		},
		{
			name: "signature altered", c: replace("Signature=8d90", "Signature=8d91"),
			code: mpmeter.CodeInvalidSignature, msg: msgMismatch,
		},
		{
			name: "signature in upper case", c: replace("Signature=8d9098a8432889c4902bb4cf371f7f2e69a88c68c1b7e9bef0d8d9ef8e19c4be", "Signature=8D9098A8432889C4902BB4CF371F7F2E69A88C68C1B7E9BEF0D8D9EF8E19C4BE"),
			code: mpmeter.CodeInvalidSignature, msg: msgMismatch,
		},
		{
			name: "signature truncated", c: replace("8e19c4be", "8e19c4b"),
			code: mpmeter.CodeInvalidSignature, msg: msgMismatch,
		},
		{
			name: "unsigned header listed as signed", c: replace("SignedHeaders=content-type;host;x-amz-date;x-amz-target", "SignedHeaders=content-type;host;user-agent;x-amz-date;x-amz-target"),
			code: mpmeter.CodeInvalidSignature, msg: msgMismatch,
		},
		{
			name: "header dropped from SignedHeaders", c: replace("SignedHeaders=content-type;host;", "SignedHeaders=host;"),
			code: mpmeter.CodeInvalidSignature, msg: msgMismatch,
		},
		{
			name: "SignedHeaders out of order", c: replace("SignedHeaders=content-type;host;", "SignedHeaders=host;content-type;"),
			code: mpmeter.CodeInvalidSignature, msg: msgMismatch,
		},
		{
			name: "X-Amz-Content-Sha256 of another body", c: jsv2,
			body: strings.Replace(jsv2.Body, `"Quantity":3`, `"Quantity":4`, 1),
			code: mpmeter.CodeInvalidSignature, msg: msgMismatch,
		},
		{
			name: "UNSIGNED-PAYLOAD", c: jsv2.with("X-Amz-Content-Sha256", func(string) string { return "UNSIGNED-PAYLOAD" }),
			code: mpmeter.CodeInvalidSignature, msg: msgMismatch,
		},
		{
			name: "expired", c: boto, v: verifierAt(time.Date(2026, 11, 25, 15, 15, 0, 0, time.UTC)),
			code: mpmeter.CodeInvalidSignature,
			msg:  "Signature expired: 20261124T191404Z is now earlier than 20261125T150000Z (20261125T151500Z - 15 min.)",
		},
		{
			name: "expired by a second", c: boto, v: verifierAt(at.Add(15*time.Minute + time.Second)),
			code: mpmeter.CodeInvalidSignature,
			msg:  "Signature expired: 20261124T191404Z is now earlier than 20261124T191405Z (20261124T192905Z - 15 min.)",
		},
		{name: "at the edge of the past window", c: boto, v: verifierAt(at.Add(15*time.Minute + 999*time.Millisecond))},
		{name: "at the edge of the future window", c: boto, v: verifierAt(at.Add(-15 * time.Minute))},
		{
			name: "not yet current", c: boto, v: verifierAt(at.Add(-20 * time.Minute)),
			code: mpmeter.CodeInvalidSignature,
			msg:  "Signature not yet current: 20261124T191404Z is still later than 20261124T190904Z (20261124T185404Z + 15 min.)",
		},
		{
			name: "expired with MaxSkew 5m", c: boto,
			v:    &Verifier{Keys: sellerKeys(), Now: fixedNow(at.Add(6 * time.Minute)), MaxSkew: 5 * time.Minute},
			code: mpmeter.CodeInvalidSignature,
			msg:  "Signature expired: 20261124T191404Z is now earlier than 20261124T191504Z (20261124T192004Z - 5 min.)",
		},
		{
			name: "not yet current with MaxSkew 5m", c: boto,
			v:    &Verifier{Keys: sellerKeys(), Now: fixedNow(at.Add(-6 * time.Minute)), MaxSkew: 5 * time.Minute},
			code: mpmeter.CodeInvalidSignature,
			msg:  "Signature not yet current: 20261124T191404Z is still later than 20261124T191304Z (20261124T190804Z + 5 min.)",
		},
		{
			name: "within MaxSkew 5m", c: boto,
			v: &Verifier{Keys: sellerKeys(), Now: fixedNow(at.Add(4 * time.Minute)), MaxSkew: 5 * time.Minute},
		},
		{
			name: "MaxSkew 90s", c: boto,
			v:    &Verifier{Keys: sellerKeys(), Now: fixedNow(at.Add(2 * time.Minute)), MaxSkew: 90 * time.Second},
			code: mpmeter.CodeInvalidSignature,
			msg:  "Signature expired: 20261124T191404Z is now earlier than 20261124T191434Z (20261124T191604Z - 90 sec.)",
		},
		{
			name: "MaxSkew 24h accepts a day-old request", c: boto,
			v: &Verifier{Keys: sellerKeys(), Now: fixedNow(at.Add(23 * time.Hour)), MaxSkew: 24 * time.Hour},
		},
		{
			name: "key store down", c: boto,
			v:        &Verifier{Now: fixedNow(at), Keys: &keys{err: errStoreDown}},
			internal: errStoreDown,
		},
		{
			name: "context cancelled in key store", c: boto,
			v:        &Verifier{Now: fixedNow(at), Keys: &keys{err: context.Canceled}},
			internal: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.v
			if v == nil {
				v = verifierAt(at)
			}
			body := tt.body
			if body == "" {
				body = tt.c.Body
			}
			caller, err := v.Verify(context.Background(), tt.c.request(t), []byte(body))
			switch {
			case tt.internal != nil:
				if !errors.Is(err, tt.internal) || mpmeter.CodeOf(err) != "" {
					t.Fatalf("got %v, want an internal error wrapping %v", err, tt.internal)
				}
			case tt.code == "":
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if caller.AccountID != sellerAcct {
					t.Fatalf("caller %+v", caller)
				}
			default:
				wantErr(t, err, tt.code, tt.msg)
			}
		})
	}
}

var errStoreDown = errors.New("database is down")

// The key is looked up only once the request is well formed, in date and
// scoped to this service: AWS reports those faults first, and it spares the
// store from junk traffic.
func TestNoKeyLookupBeforeScopeChecks(t *testing.T) {
	boto := loadCaptures(t)[0]
	k := sellerKeys()
	v := &Verifier{Keys: k, Now: fixedNow(boto.signTime(t).Add(time.Hour))}
	if _, err := verifyCapture(t, v, boto); mpmeter.CodeOf(err) != mpmeter.CodeInvalidSignature {
		t.Fatalf("got %v", err)
	}
	if k.hits != 0 {
		t.Fatalf("key store consulted %d times", k.hits)
	}
}

// A rotated secret must take effect at once, though the old secret's signing
// key is cached (for the same access key id, region and day).
func TestSecretRotation(t *testing.T) {
	boto := loadCaptures(t)[0]
	k := sellerKeys()
	v := &Verifier{Keys: k, Now: fixedNow(boto.signTime(t))}
	if _, err := verifyCapture(t, v, boto); err != nil {
		t.Fatal(err)
	}
	k.setSecret(sellerKeyID, "rotated-secret")
	_, err := verifyCapture(t, v, boto)
	wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)

	signed := sdkSigned(t, "rotated-secret", "", boto.signTime(t))
	if _, err := v.Verify(context.Background(), signed.req, signed.body); err != nil {
		t.Fatalf("new secret: %v", err)
	}
}

// A failed verification must not fill the signing-key cache, or anyone who
// knows an access key id could grow it with made-up regions.
func TestFailuresAreNotCached(t *testing.T) {
	boto := loadCaptures(t)[0]
	v := verifierAt(boto.signTime(t))
	for i := range 50 {
		c := boto.with("Authorization", func(s string) string {
			return strings.Replace(s, "/us-east-1/", fmt.Sprintf("/xx-junk-%d/", i), 1)
		})
		_, err := verifyCapture(t, v, c)
		wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)
	}
	if n := len(v.keys); n != 0 {
		t.Fatalf("%d cached signing keys after failures only", n)
	}
	if _, err := verifyCapture(t, v, boto); err != nil {
		t.Fatal(err)
	}
	if n := len(v.keys); n != 1 {
		t.Fatalf("%d cached signing keys, want 1", n)
	}
}

// The cache keeps one day's key per secret and region: a request of the
// next day derives the new key and, once it verified, replaces the old one;
// a failed request of another day leaves the cache alone.
func TestSigningKeyOfTheDay(t *testing.T) {
	day1 := time.Date(2026, 11, 25, 23, 59, 0, 0, time.UTC)
	day2 := day1.Add(2 * time.Minute)
	now := day1
	v := &Verifier{Keys: sellerKeys(), Now: func() time.Time { return now }}
	cachedDate := func() string {
		t.Helper()
		if len(v.keys) != 1 {
			t.Fatalf("%d cached signing keys, want 1", len(v.keys))
		}
		for _, sk := range v.keys {
			return sk.date
		}
		return ""
	}
	s1 := sdkSigned(t, sellerSecret, "", day1)
	if _, err := v.Verify(context.Background(), s1.req, s1.body); err != nil {
		t.Fatal(err)
	}
	if d := cachedDate(); d != "20261125" {
		t.Fatalf("cached key of %s", d)
	}

	now = day2
	bad := sdkSigned(t, "another-secret", "", day2)
	_, err := v.Verify(context.Background(), bad.req, bad.body)
	wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)
	if d := cachedDate(); d != "20261125" {
		t.Fatalf("a failure replaced the cached key by that of %s", d)
	}
	s2 := sdkSigned(t, sellerSecret, "", day2)
	for range 2 {
		if _, err := v.Verify(context.Background(), s2.req, s2.body); err != nil {
			t.Fatal(err)
		}
		if d := cachedDate(); d != "20261126" {
			t.Fatalf("cached key of %s", d)
		}
	}
	// Yesterday's request, still inside the skew window, derives its key
	// again.
	if _, err := v.Verify(context.Background(), s1.req, s1.body); err != nil {
		t.Fatal(err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	v := &Verifier{}
	for i := range maxSigningKeys + 10 {
		k := scopeKey{secret: fmt.Sprint(i), region: "us-east-1", service: mpmeter.SigningName}
		v.remember(k, deriveSigningKey(k, "20261125"))
	}
	if n := len(v.keys); n != maxSigningKeys {
		t.Fatalf("%d cached signing keys, want %d", n, maxSigningKeys)
	}
}

type signedRequest struct {
	req  *http.Request
	body []byte
}

// sdkSigned signs a MeterUsage request with aws-sdk-go-v2's signer as the SDK
// would (session token included when given), sends it through the wire
// format and reads it back as a server would.
func sdkSigned(t testing.TB, secret, sessionToken string, at time.Time) signedRequest {
	t.Helper()
	body := []byte(`{"ProductCode":"exampleprod1","Timestamp":1795514700,"UsageDimension":"users","UsageQuantity":1}`)
	req, err := http.NewRequest(http.MethodPost, "http://metering.local:8080/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", mpmeter.TargetPrefix+"."+"MeterUsage")
	req.Header.Set("Amz-Sdk-Request", "attempt=1;  max=3") // two spaces: canonicalised to one
	req.Header.Set("User-Agent", "aws-sdk-go-v2/1.48.0")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: sellerKeyID, SecretAccessKey: secret, SessionToken: sessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]),
		mpmeter.SigningName, "eu-west-2", at); err != nil {
		t.Fatal(err)
	}
	got, err := throughWire(req)
	if err != nil {
		t.Fatal(err)
	}
	return signedRequest{got, body}
}

// throughWire writes a client's request in HTTP/1.1 and reads it back as a
// server does.
func throughWire(req *http.Request) (*http.Request, error) {
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		return nil, err
	}
	return http.ReadRequest(bufio.NewReader(&wire))
}

// sdkSignedWith is a ResolveCustomer request to path and query, with header
// X-Custom: value (and a second X-Custom: value2 unless it is empty),
// signed by aws-sdk-go-v2 at and read back off the wire. ok is false when
// the server does not read the URL or the headers the client signed, which
// is no request a verifier could accept.
func sdkSignedWith(t testing.TB, at time.Time, path, query, value, value2 string, body []byte) (sent *http.Request, ok bool) {
	t.Helper()
	u, err := url.Parse("http://metering.local:8080" + path)
	if err != nil || u.Host != "metering.local:8080" || !strings.HasPrefix(u.Path, "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, false
	}
	u.RawQuery = query
	req, err := http.NewRequest(http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, false
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", mpmeter.TargetPrefix+".ResolveCustomer")
	for _, v := range []string{value, value2} {
		if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return nil, false // no valid field value
		}
	}
	req.Header["X-Custom"] = []string{value}
	if value2 != "" {
		req.Header["X-Custom"] = append(req.Header["X-Custom"], value2)
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: sellerKeyID, SecretAccessKey: sellerSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]),
		mpmeter.SigningName, "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	got, err := throughWire(req)
	if err != nil || got.URL.EscapedPath() != req.URL.EscapedPath() || got.URL.RawQuery != req.URL.RawQuery ||
		len(got.Header["X-Custom"]) != len(req.Header["X-Custom"]) {
		return nil, false
	}
	return got, true
}

func TestSDKSignedRequests(t *testing.T) {
	at := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	for _, token := range []string{"", "FQoGZXIvYXdzEXAMPLE//session+token=="} {
		s := sdkSigned(t, sellerSecret, token, at)
		auth := s.req.Header.Get("Authorization")
		if wantToken := token != ""; strings.Contains(auth, "x-amz-security-token") != wantToken {
			t.Fatalf("session token signed = %v, want %v: %s", !wantToken, wantToken, auth)
		}
		if !strings.Contains(auth, "content-length") {
			t.Fatalf("content-length not signed: %s", auth)
		}
		v := verifierAt(at.Add(3 * time.Minute))
		v.Keys = keysWithSessionToken(token)
		caller, err := v.Verify(context.Background(), s.req, s.body)
		if err != nil {
			t.Fatalf("token %q: %v", token, err)
		}
		if caller.Region != "eu-west-2" || caller.AccountID != sellerAcct || caller.AccessKeyID != sellerKeyID {
			t.Fatalf("caller %+v", caller)
		}
		if token != "" {
			s.req.Header.Set("X-Amz-Security-Token", token+"x")
			_, err := v.Verify(context.Background(), s.req, s.body)
			wantErr(t, err, mpmeter.CodeUnrecognizedClient, msgUnrecognized)
		}
	}

	// The brief's example of a request from the future.
	s := sdkSigned(t, sellerSecret, "", at)
	_, err := verifierAt(time.Date(2026, 11, 25, 15, 15, 0, 0, time.UTC)).Verify(context.Background(), s.req, s.body)
	wantErr(t, err, mpmeter.CodeInvalidSignature,
		"Signature not yet current: 20261125T160000Z is still later than 20261125T153000Z (20261125T151500Z + 15 min.)")
}

func TestWorkloadCaller(t *testing.T) {
	at := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	w := &mpmeter.Workload{ID: "i-0123456789abcdef0", Platform: mpmeter.PlatformEC2, Region: "eu-west-2"}
	v := &Verifier{Now: fixedNow(at), Keys: &keys{m: map[string]mpmeter.AccessKey{
		sellerKeyID: {ID: sellerKeyID, Secret: sellerSecret, AccountID: "444455556666", Workload: w},
	}}}
	s := sdkSigned(t, sellerSecret, "", at)
	caller, err := v.Verify(context.Background(), s.req, s.body)
	if err != nil {
		t.Fatal(err)
	}
	if caller.Workload != w || caller.AccountID != "444455556666" {
		t.Fatalf("caller %+v", caller)
	}
}

// Clients other than the Go SDK sign headers the Go signer never would
// (Ruby's signs User-Agent), and headers may repeat or carry runs of spaces.
// The reference signer below follows the SigV4 spec, not the Go signer.
func TestHeaderSetsOfOtherSigners(t *testing.T) {
	at := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	body := []byte(`{"RegistrationToken":"demo-token-1"}`)
	base := [][2]string{
		{"Host", "localhost:80"}, // a default port the client kept in Host
		{"Content-Type", "application/x-amz-json-1.1"},
		{"X-Amz-Target", "AWSMPMeteringService.ResolveCustomer"},
		{"User-Agent", "aws-sdk-ruby3/3.201.0  ua/2.1"},
		{"X-Amz-Date", at.Format(amzDateLayout)},
		{"X-Custom", "  a   b  "},
		{"x-custom", "c"},
		{"Expect", "100-continue"},
		{"Content-Length", fmt.Sprint(len(body))},
		{"X-Amz-Security-Token", "token"},
	}
	cases := [][]string{
		{"content-type", "host", "user-agent", "x-amz-date", "x-amz-target"},
		{"host", "x-amz-date", "x-custom"},
		{"content-length", "expect", "host", "x-amz-date", "x-amz-security-token"},
		{"content-length", "content-type", "expect", "host", "user-agent", "x-amz-date", "x-amz-security-token", "x-amz-target", "x-custom"},
	}
	for _, signed := range cases {
		t.Run(strings.Join(signed, ";"), func(t *testing.T) {
			c := refSigned(base, signed, body, at)
			v := verifierAt(at)
			v.Keys = keysWithSessionToken("token")
			if _, err := verifyCapture(t, v, c); err != nil {
				t.Fatal(err)
			}
			for _, name := range signed {
				if name == "host" || name == "x-amz-date" {
					continue
				}
				changed := c.with(name, func(s string) string { return s + "1" })
				_, err := verifyCapture(t, v, changed)
				if name == "x-amz-security-token" {
					// Another token names no credentials, before any
					// signature is computed.
					wantErr(t, err, mpmeter.CodeUnrecognizedClient, msgUnrecognized)
					continue
				}
				wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)
			}
		})
	}
}

// The reference signer and the Go SDK's signer agree; so the reference is
// a fair judge in the test above.
func TestReferenceSignerAgreesWithSDK(t *testing.T) {
	at := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	for _, token := range []string{"", "tok"} {
		s := sdkSigned(t, sellerSecret, token, at)
		var hdrs [][2]string
		hdrs = append(hdrs, [2]string{"Host", s.req.Host})
		for k, vs := range s.req.Header {
			for _, v := range vs {
				hdrs = append(hdrs, [2]string{k, v})
			}
		}
		auth := s.req.Header.Get("Authorization")
		signed := strings.Split(auth[strings.Index(auth, "SignedHeaders=")+len("SignedHeaders="):strings.Index(auth, ", Signature=")], ";")
		got := refAuthorization("POST", "/", hdrs, signed, s.body, sellerKeyID, sellerSecret, "eu-west-2", mpmeter.SigningName, at)
		if got != auth {
			t.Fatalf("reference\n%s\nSDK\n%s", got, auth)
		}
	}
}

// refSigned is a POST / with headers and body, signed with the seller's key
// for us-east-1 over the headers named in signed by refAuthorization.
func refSigned(headers [][2]string, signed []string, body []byte, at time.Time) capture {
	c := capture{Method: "POST", Path: "/", Headers: append([][2]string(nil), headers...), Body: string(body)}
	c.Headers = append(c.Headers, [2]string{"Authorization",
		refAuthorization("POST", "/", headers, signed, body, sellerKeyID, sellerSecret, "us-east-1", mpmeter.SigningName, at)})
	return c
}

// refAuthorization is SigV4 as the spec writes it, for a request whose path
// needs no escaping and which has no query.
func refAuthorization(method, path string, headers [][2]string, signed []string, body []byte,
	keyID, secret, region, service string, at time.Time) string {
	sort.Strings(signed)
	return refAuthorizationAsListed(method, path, headers, signed, body, keyID, secret, region, service, at)
}

// refAuthorizationAsListed is refAuthorization over the header names as
// given: in their order and case, repeated or empty, which no signer writes.
func refAuthorizationAsListed(method, path string, headers [][2]string, signed []string, body []byte,
	keyID, secret, region, service string, at time.Time) string {
	var canon strings.Builder
	canon.WriteString(method + "\n" + path + "\n\n")
	for _, name := range signed {
		var vals []string
		for _, h := range headers {
			if strings.EqualFold(h[0], name) {
				vals = append(vals, strings.Join(strings.Fields(h[1]), " "))
			}
		}
		canon.WriteString(name + ":" + strings.Join(vals, ",") + "\n")
	}
	sum := sha256.Sum256(body)
	canon.WriteString("\n" + strings.Join(signed, ";") + "\n" + hex.EncodeToString(sum[:]))

	date := at.UTC().Format("20060102")
	sc := date + "/" + region + "/" + service + "/aws4_request"
	creq := sha256.Sum256([]byte(canon.String()))
	sts := "AWS4-HMAC-SHA256\n" + at.UTC().Format(amzDateLayout) + "\n" + sc + "\n" + hex.EncodeToString(creq[:])
	mac := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	k := mac(mac(mac(mac([]byte("AWS4"+secret), date), region), service), "aws4_request")
	return "AWS4-HMAC-SHA256 Credential=" + keyID + "/" + sc + ", SignedHeaders=" + strings.Join(signed, ";") +
		", Signature=" + hex.EncodeToString(mac(k, sts))
}

func TestConcurrentVerify(t *testing.T) {
	cs := loadCaptures(t)
	v := &Verifier{Keys: sellerKeys(), Now: fixedNow(cs[0].signTime(t)), MaxSkew: time.Hour}
	type in struct {
		r    *http.Request
		body []byte
	}
	var reqs []in
	for _, c := range cs {
		reqs = append(reqs, in{c.request(t), []byte(c.Body)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(reqs))
	for range 8 {
		wg.Go(func() {
			for _, r := range reqs {
				if _, err := v.Verify(context.Background(), r.r, r.body); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestZeroValueClock(t *testing.T) {
	// Without Now the wall clock is used: a capture from 2026-11-24 is
	// either expired or not yet current, never accepted.
	boto := loadCaptures(t)[0]
	_, err := verifyCapture(t, &Verifier{Keys: sellerKeys()}, boto)
	if mpmeter.CodeOf(err) != mpmeter.CodeInvalidSignature {
		t.Fatalf("got %v", err)
	}
	s := sdkSigned(t, sellerSecret, "", time.Now())
	if _, err := (&Verifier{Keys: sellerKeys()}).Verify(context.Background(), s.req, s.body); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkVerify(b *testing.B) {
	c := loadCaptures(b)[4] // JS v3: the most signed headers
	v := verifierAt(c.signTime(b))
	r := c.request(b)
	body := []byte(c.Body)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, r, body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHeaderValuesMatchesTextproto(t *testing.T) {
	long := strings.Repeat("x-long", 20)
	h := http.Header{}
	names := []string{"x-amz-date", "content-md5", "amz-sdk-invocation-id", "x_under", "a.b", "x-9", "Mixed-Case", "we ird", long}
	for i, n := range names {
		h[textproto.CanonicalMIMEHeaderKey(n)] = []string{fmt.Sprint(i)}
	}
	for i, n := range names {
		if got := headerValues(h, n); len(got) != 1 || got[0] != fmt.Sprint(i) {
			t.Errorf("headerValues(%q) = %q", n, got)
		}
	}
	if got := headerValues(h, "absent"); got != nil {
		t.Errorf("absent header: %q", got)
	}
}

// Requests whose signature is right by the SigV4 spec, computed over what
// the client sent, but which Verify refuses on purpose: what they sign is
// not what was received, or is not what a signer writes.
func TestRejectedThoughSigned(t *testing.T) {
	at := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	body := []byte(`{"RegistrationToken":"demo-token-1"}`)
	for _, tt := range []struct {
		name     string
		headers  [][2]string
		signed   []string
		body     []byte
		asListed bool // sign SignedHeaders as listed, not sorted
	}{
		{
			// Signed, but claiming another payload than the one received.
			name: "lying X-Amz-Content-Sha256",
			headers: [][2]string{{"Host", "h"}, {"X-Amz-Date", at.Format(amzDateLayout)},
				{"X-Amz-Content-Sha256", strings.Repeat("0", 64)}},
			signed: []string{"host", "x-amz-content-sha256", "x-amz-date"},
		},
		{
			// The date is in the string to sign, but AWS requires signing
			// X-Amz-Date too, and every SDK signer signs it.
			name:    "X-Amz-Date not signed",
			headers: [][2]string{{"Host", "h"}, {"X-Amz-Date", at.Format(amzDateLayout)}},
			signed:  []string{"host"},
		},
		{
			// A signed length must be the body's: an empty body is
			// "content-length: 0", a non-empty one never.
			name:    "content-length 0 signed, body not empty",
			headers: [][2]string{{"Host", "h"}, {"X-Amz-Date", at.Format(amzDateLayout)}, {"Content-Length", "0"}},
			signed:  []string{"content-length", "host", "x-amz-date"},
		},
		{
			name:    "content-length signed one short of the body",
			headers: [][2]string{{"Host", "h"}, {"X-Amz-Date", at.Format(amzDateLayout)}, {"Content-Length", fmt.Sprint(len(body) - 1)}},
			signed:  []string{"content-length", "host", "x-amz-date"},
		},
		{
			name:    "content-length signed, body empty",
			headers: [][2]string{{"Host", "h"}, {"X-Amz-Date", at.Format(amzDateLayout)}, {"Content-Length", "1"}},
			signed:  []string{"content-length", "host", "x-amz-date"},
			body:    []byte{},
		},
		{
			// Not the decimal a signer writes for the length.
			name:    "content-length 00 signed",
			headers: [][2]string{{"Host", "h"}, {"X-Amz-Date", at.Format(amzDateLayout)}, {"Content-Length", "00"}},
			signed:  []string{"content-length", "host", "x-amz-date"},
			body:    []byte{},
		},
		// SignedHeaders lists no signer writes: the names must be lower
		// case, sorted and each there once.
		{
			name:     "SignedHeaders not sorted",
			headers:  [][2]string{{"Host", "h"}, {"X-Amz-Date", at.Format(amzDateLayout)}, {"Content-Type", "application/x-amz-json-1.1"}},
			signed:   []string{"host", "content-type", "x-amz-date"},
			asListed: true,
		},
		{
			name:     "SignedHeaders with a name twice",
			headers:  [][2]string{{"Host", "h"}, {"X-Amz-Date", at.Format(amzDateLayout)}, {"Content-Type", "application/x-amz-json-1.1"}},
			signed:   []string{"content-type", "content-type", "host", "x-amz-date"},
			asListed: true,
		},
		{
			name:     "SignedHeaders with an upper-case name",
			headers:  [][2]string{{"Host", "h"}, {"X-Amz-Date", at.Format(amzDateLayout)}, {"Content-Type", "application/x-amz-json-1.1"}},
			signed:   []string{"Content-Type", "host", "x-amz-date"},
			asListed: true,
		},
		{
			name:     "SignedHeaders ending in ;",
			headers:  [][2]string{{"Host", "h"}, {"X-Amz-Date", at.Format(amzDateLayout)}},
			signed:   []string{"host", "x-amz-date", ""},
			asListed: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := body
			if tt.body != nil {
				b = tt.body
			}
			sign := refAuthorization
			if tt.asListed {
				sign = refAuthorizationAsListed
			}
			c := capture{Method: "POST", Path: "/", Headers: tt.headers, Body: string(b)}
			c.Headers = append(c.Headers, [2]string{"Authorization",
				sign("POST", "/", tt.headers, tt.signed, b, sellerKeyID, sellerSecret, "us-east-1", mpmeter.SigningName, at)})
			r := c.request(t)
			_, err := verifierAt(at).Verify(context.Background(), r, b)
			wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)
		})
	}
}
