package mpmetertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mpmeter/mpmeter"
)

// Raw is one request sent without an SDK, to test what SDKs would refuse to
// send (they validate input first) and the protocol itself.
type Raw struct {
	// Target is the operation ("BatchMeterUsage"); the X-Amz-Target header
	// is TargetPrefix + "." + Target unless Header sets it.
	Target string
	// TargetPrefix is the service's target prefix; empty means the Metering
	// Service's (mpmeter.TargetPrefix). mpmeter.EntitlementTargetPrefix
	// calls the Entitlement Service in awsJson.
	TargetPrefix string
	// Path, when set, is the request path, and the request gets neither
	// X-Amz-Target nor the awsJson Content-Type (an RPC v2 CBOR request:
	// "/service/AWSMPEntitlementService/operation/GetEntitlements", with
	// Header giving Smithy-Protocol and Content-Type).
	Path string
	Body string // may be binary (CBOR)
	// Key and Secret sign the request; an empty Key sends it unsigned.
	Key, Secret string
	// Region of the credential scope; empty means Region.
	Region string
	// Service of the credential scope; empty means aws-marketplace.
	Service string
	// SignTime is the signing time; zero means now.
	SignTime time.Time
	// Header adds or replaces headers before signing.
	Header http.Header
}

// Do sends r to this server and returns the status and body of the answer.
func (s *Server) Do(t testing.TB, r Raw) (int, []byte) {
	t.Helper()
	return Do(t, s.URL, r)
}

// Do sends r to the mpmeter at endpoint (any running server, in-process or
// not) and returns the status and body of the answer.
func Do(t testing.TB, endpoint string, r Raw) (int, []byte) {
	t.Helper()
	resp, body := DoHTTP(t, endpoint, r)
	return resp.StatusCode, body
}

// DoHTTP is Do answering the whole response (its body already read and
// closed) and the body.
func DoHTTP(t testing.TB, endpoint string, r Raw) (*http.Response, []byte) {
	t.Helper()
	path := r.Path
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequest(http.MethodPost, endpoint+path, bytes.NewReader([]byte(r.Body)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Path == "" {
		prefix := r.TargetPrefix
		if prefix == "" {
			prefix = mpmeter.TargetPrefix
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", prefix+"."+r.Target)
	}
	for k, vs := range r.Header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	if r.Key != "" {
		region, service, when := r.Region, r.Service, r.SignTime
		if region == "" {
			region = Region
		}
		if service == "" {
			service = mpmeter.SigningName
		}
		if when.IsZero() {
			when = time.Now()
		}
		sum := sha256.Sum256([]byte(r.Body))
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: r.Key, SecretAccessKey: r.Secret}, req, hex.EncodeToString(sum[:]), service, region, when)
		if err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
