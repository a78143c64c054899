package sigv4

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// verifyReading runs VerifyRequest on c and reports whether the body was read.
func verifyReading(t *testing.T, v *Verifier, r *http.Request, body string) (bool, error) {
	t.Helper()
	read := false
	_, err := v.VerifyRequest(context.Background(), r, func() ([]byte, error) {
		read = true
		return []byte(body), nil
	})
	return read, err
}

// Every check that needs only headers answers before the body is read; a
// request whose headers pass has its body read once and its signature
// checked over it.
func TestHeaderPhaseBeforeBody(t *testing.T) {
	boto := loadCaptures(t)[0]
	at := boto.signTime(t)
	for _, c := range []struct {
		name string
		v    *Verifier
		c    capture
		code mpmeter.ErrorCode
	}{
		{"no Authorization", verifierAt(at), boto.without("Authorization"), mpmeter.CodeMissingAuthentication},
		{"malformed Authorization", verifierAt(at), boto.with("Authorization", func(string) string { return "AWS4-HMAC-SHA256 junk" }), mpmeter.CodeIncompleteSignature},
		{"skew", verifierAt(at.Add(time.Hour)), boto, mpmeter.CodeInvalidSignature},
		{"scope", verifierAt(at), boto.with("Authorization", func(s string) string { return strings.Replace(s, "/aws-marketplace/", "/s3/", 1) }), mpmeter.CodeInvalidSignature},
		{"unknown key", &Verifier{Keys: &keys{m: map[string]mpmeter.AccessKey{}}, Now: fixedNow(at)}, boto, mpmeter.CodeUnrecognizedClient},
	} {
		t.Run(c.name, func(t *testing.T) {
			read, err := verifyReading(t, c.v, c.c.request(t), c.c.Body)
			if mpmeter.CodeOf(err) != c.code {
				t.Fatalf("got %v, want %s", err, c.code)
			}
			if read {
				t.Error("the body was read")
			}
		})
	}
	read, err := verifyReading(t, verifierAt(at), boto.request(t), boto.Body)
	if err != nil || !read {
		t.Fatalf("good request: read %v, %v", read, err)
	}
	if _, err := verifyReading(t, verifierAt(at), boto.request(t), boto.Body+" "); mpmeter.CodeOf(err) != mpmeter.CodeInvalidSignature {
		t.Fatalf("changed body: %v", err)
	}
	errRead := errors.New("read failed")
	_, err = verifierAt(at).VerifyRequest(context.Background(), boto.request(t), func() ([]byte, error) { return nil, errRead })
	if err != errRead {
		t.Fatalf("readBody's error came back as %v", err)
	}
}

// Two Authorization headers, or a parameter given twice, are refused: two
// readers of the request could otherwise disagree on what was signed.
func TestDuplicateAuthorization(t *testing.T) {
	boto := loadCaptures(t)[0]
	v := verifierAt(boto.signTime(t))
	r := boto.request(t)
	r.Header.Add("Authorization", r.Header.Get("Authorization"))
	if _, err := v.Verify(context.Background(), r, []byte(boto.Body)); mpmeter.CodeOf(err) != mpmeter.CodeIncompleteSignature {
		t.Errorf("two Authorization headers: %v", err)
	}
	for _, param := range []string{"Signature", "Credential", "SignedHeaders"} {
		c := boto.with("Authorization", func(s string) string {
			i := strings.Index(s, param+"=")
			j := strings.IndexByte(s[i:], ',')
			v := s[i:]
			if j >= 0 {
				v = s[i : i+j]
			}
			return s + ", " + v
		})
		_, err := verifyCapture(t, v, c)
		wantErr(t, err, mpmeter.CodeIncompleteSignature, "'"+param+"' appears more than once in Authorization header: '"+c.get("Authorization")+"'.")
	}
}
