package sigv4

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// jsv3EmptyBody is the AWS SDK for JavaScript v3's ResolveCustomer with an
// empty body and "content-length: 0" signed (testdata/README.md).
func jsv3EmptyBody(t testing.TB) capture {
	t.Helper()
	cs := readCaptures(t, "testdata/jsv3-empty-body.jsonl")
	if len(cs) != 1 {
		t.Fatalf("got %d captures, want 1", len(cs))
	}
	c := cs[0]
	if c.Body != "" || c.get("Content-Length") != "0" || !slices.Contains(c.signedHeaders(), "content-length") {
		t.Fatalf("the capture is not an empty body with content-length: 0 signed: %+v", c)
	}
	return c
}

// An empty body means {}, and JS v3 signs its "content-length: 0": such a
// request verifies, and any change to what it signed does not.
func TestJSv3EmptyBody(t *testing.T) {
	c := jsv3EmptyBody(t)
	at := c.signTime(t)

	// The test's own reference signer reproduces the SDK's signature, so
	// the capture is what the spec says, not an accident of one verifier.
	ref := refAuthorization(c.Method, c.Path, c.Headers, c.signedHeaders(), nil,
		sellerKeyID, sellerSecret, "us-east-1", mpmeter.SigningName, at)
	if ref != c.get("Authorization") {
		t.Fatalf("reference signer gives\n%s\nJS v3 sent\n%s", ref, c.get("Authorization"))
	}

	v := verifierAt(at)
	for range 2 { // the second time with the signing key from the cache
		caller, err := verifyCapture(t, v, c)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if want := (mpmeter.Caller{AccountID: sellerAcct, AccessKeyID: sellerKeyID, Region: "us-east-1"}); caller != want {
			t.Fatalf("caller %+v, want %+v", caller, want)
		}
	}

	for _, tt := range []struct {
		name string
		c    capture
		body string
	}{
		{name: "content-length 1", c: c.with("Content-Length", func(string) string { return "1" })},
		{name: "content-length 00", c: c.with("Content-Length", func(string) string { return "00" })},
		{name: "content-length removed", c: c.without("Content-Length")},
		{name: "body not empty", c: c, body: "{}"},
		{name: "body not empty, content-length to match", c: c.with("Content-Length", func(string) string { return "2" }), body: "{}"},
		{name: "signature changed", c: c.with("Authorization", func(s string) string {
			if s[len(s)-1] == '0' {
				return s[:len(s)-1] + "1"
			}
			return s[:len(s)-1] + "0"
		})},
		{name: "content-length not in SignedHeaders", c: c.with("Authorization", func(s string) string {
			return strings.Replace(s, "content-length;", "", 1)
		})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.c.get("Authorization") == "" {
				t.Fatal("no Authorization")
			}
			_, err := v.Verify(context.Background(), tt.c.request(t), []byte(tt.body))
			wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)
		})
	}
}

// Other header sets with an empty body and "content-length: 0" signed, by
// the reference signer: with and without X-Amz-Content-Sha256, with the
// session token.
func TestEmptyBodyContentLengthZero(t *testing.T) {
	at := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	headers := [][2]string{
		{"Host", "127.0.0.1:5077"},
		{"Content-Type", "application/x-amz-json-1.1"},
		{"X-Amz-Target", "AWSMPMeteringService.ResolveCustomer"},
		{"X-Amz-Date", at.Format(amzDateLayout)},
		{"X-Amz-Content-Sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"X-Amz-Security-Token", "token"},
		{"Content-Length", "0"},
	}
	for _, signed := range [][]string{
		{"content-length", "host", "x-amz-date"},
		{"content-length", "content-type", "host", "x-amz-date", "x-amz-target"},
		{"content-length", "content-type", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token", "x-amz-target"},
	} {
		t.Run(strings.Join(signed, ";"), func(t *testing.T) {
			c := refSigned(headers, signed, nil, at)
			v := verifierAt(at)
			v.Keys = keysWithSessionToken("token")
			if _, err := verifyCapture(t, v, c); err != nil {
				t.Fatal(err)
			}
			for _, body := range []string{"{}", " "} {
				_, err := v.Verify(context.Background(), c.request(t), []byte(body))
				wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)
			}
			for _, n := range []string{"1", "00", "01"} {
				_, err := verifyCapture(t, v, c.with("Content-Length", func(string) string { return n }))
				wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)
			}
		})
	}
}

// A request the server hands over without a Content-Length header stands
// for its length with Request.ContentLength, which must then be positive:
// a signed content-length that was not sent cannot have been signed, and 0
// is what a request without a body has anyway.
func TestContentLengthWithoutHeader(t *testing.T) {
	at := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	body := []byte(`{"RegistrationToken":"demo-token-1"}`)
	for _, tt := range []struct {
		body []byte
		ok   bool
	}{{body, true}, {nil, false}} {
		t.Run(fmt.Sprint(len(tt.body)), func(t *testing.T) {
			headers := [][2]string{{"Host", "h"}, {"X-Amz-Date", at.Format(amzDateLayout)}, {"Content-Length", fmt.Sprint(len(tt.body))}}
			signed := []string{"content-length", "host", "x-amz-date"}
			r := refSigned(headers, signed, tt.body, at).request(t)
			r.Header.Del("Content-Length")
			r.ContentLength = int64(len(tt.body))
			_, err := verifierAt(at).Verify(context.Background(), r, tt.body)
			if tt.ok && err != nil {
				t.Fatal(err)
			}
			if !tt.ok {
				wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)
			}
		})
	}
}

// The key derivation against AWS's published example ("Examples of how to
// derive a signing key for Signature Version 4", IAM user guide).
func TestDeriveSigningKey(t *testing.T) {
	k := scopeKey{secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "iam"}
	sk := deriveSigningKey(k, "20120215")
	if got := fmt.Sprintf("%x", sk.key); got != "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d" {
		t.Fatalf("signing key %s", got)
	}
	if sk.date != "20120215" {
		t.Fatalf("date %q", sk.date)
	}
}
