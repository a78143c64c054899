package sigv4

import (
	"context"
	"net/http"
	"testing"
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
