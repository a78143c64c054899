package sigv4

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// FuzzParseAuthorization: any header parses or is refused, without panic.
func FuzzParseAuthorization(f *testing.F) {
	for _, c := range loadCaptures(f) {
		f.Add(c.get("Authorization"))
	}
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00, Signature=11")
	f.Add("AWS4-HMAC-SHA256 ,,, =")
	f.Add("Bearer x")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h, true)
		if err == nil && (a.credential == "" || a.signature == "") {
			t.Fatalf("accepted %q without credential or signature", h)
		}
	})
}

// FuzzVerifyForgery changes a real SDK's signed request (its body, its
// target, its Authorization header, its date) and verifies it: a request
// whose signed content changed must never be accepted.
func FuzzVerifyForgery(f *testing.F) {
	c := loadCaptures(f)[0]
	at := c.signTime(f)
	f.Add(c.Body, c.get("X-Amz-Target"), c.get("Authorization"), c.get("X-Amz-Date"))
	f.Add(c.Body+" ", c.get("X-Amz-Target"), c.get("Authorization"), c.get("X-Amz-Date"))
	f.Add(c.Body, "AWSMPMeteringService.MeterUsage", c.get("Authorization"), c.get("X-Amz-Date"))
	f.Add(c.Body, c.get("X-Amz-Target"), c.get("Authorization")+", Signature=00", c.get("X-Amz-Date"))
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, body, target, authz, date string) {
		r := c.request(t)
		r.Header = r.Header.Clone()
		for name, v := range map[string]string{"X-Amz-Target": target, "Authorization": authz, "X-Amz-Date": date} {
			if v == "" {
				delete(r.Header, name)
			} else {
				r.Header[http.CanonicalHeaderKey(name)] = []string{v}
			}
		}
		v := verifierAt(at)
		_, err := v.Verify(context.Background(), r, []byte(body))
		if err == nil && (body != c.Body || target != c.get("X-Amz-Target") || date != c.get("X-Amz-Date")) {
			t.Fatalf("accepted a changed request: body %q target %q date %q", body, target, date)
		}
	})
}

// FuzzSDKSigned signs requests with aws-sdk-go-v2's signer, the reference
// the verifier's canonical request must agree with: paths and queries that
// need escaping, header values with runs of white space, repeated headers.
// Every one must verify once it has crossed the wire, and with its signed
// path, query or header changed it must not.
func FuzzSDKSigned(f *testing.F) {
	f.Add("/", "", "v", "", []byte(`{}`))
	f.Add("/a/b/", "b=2&a=1&a=0", "  a   b  ", "second", []byte(`{"RegistrationToken":"t"}`))
	f.Add("/a%2Fb/~x_y-z./%7E", "x=a+b&y=a%20b&z=%2B&k&e=", "\ta \t b\t", "", []byte{})
	f.Add("/%C3%BCmlaut//double", "%C3%BC=%C3%B6&a=1;b=2", "a,b", "c , d", []byte(" "))
	f.Add("/a+b/$&'()*,;=:@", "q=$&r='()*,;:@/?", "\u00a0x\u00a0", "y\u0085", []byte("x"))
	at := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, path, query, value, value2 string, body []byte) {
		sent, ok := sdkSignedWith(t, at, path, query, value, value2, body)
		if !ok {
			t.Skip("not a request the client and the server agree on")
		}
		v := verifierAt(at)
		if _, err := v.Verify(context.Background(), sent, body); err != nil {
			t.Fatalf("path %q query %q values %q %q body %q: %v\n%s", path, query, value, value2, body, err,
				sent.Header.Get("Authorization"))
		}
		changed := sent.Clone(context.Background())
		changed.URL.Path, changed.URL.RawPath = "/x"+sent.URL.Path, ""
		if _, err := v.Verify(context.Background(), changed, body); err == nil {
			t.Fatalf("path %q accepted as %q", sent.URL.Path, changed.URL.Path)
		}
		changed = sent.Clone(context.Background())
		changed.URL.RawQuery = "x=1&" + sent.URL.RawQuery
		if _, err := v.Verify(context.Background(), changed, body); err == nil {
			t.Fatalf("query %q accepted as %q", sent.URL.RawQuery, changed.URL.RawQuery)
		}
		changed = sent.Clone(context.Background())
		changed.Header["X-Custom"] = append(changed.Header["X-Custom"], "more")
		if _, err := v.Verify(context.Background(), changed, body); err == nil {
			t.Fatalf("X-Custom %q accepted as %q", sent.Header["X-Custom"], changed.Header["X-Custom"])
		}
	})
}
