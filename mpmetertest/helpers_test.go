package mpmetertest_test

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	mm "github.com/aws/aws-sdk-go/service/marketplacemetering"

	"github.com/mpmeter/mpmeter/mpmetertest"
)

// client returns an aws-sdk-go v1 client signing with key/secret in region,
// with retries off so each test sees the first answer.
func client(t *testing.T, srv *mpmetertest.Server, key, secret, region string) *mm.MarketplaceMetering {
	t.Helper()
	sess, err := session.NewSession(&aws.Config{
		Endpoint:    aws.String(srv.URL),
		Region:      aws.String(region),
		Credentials: credentials.NewStaticCredentials(key, secret, ""),
		MaxRetries:  aws.Int(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return mm.New(sess)
}

func seller(t *testing.T, srv *mpmetertest.Server) *mm.MarketplaceMetering {
	return client(t, srv, mpmetertest.SellerKey, mpmetertest.SellerSecret, mpmetertest.Region)
}

// wantCode asserts err is an AWS error with this code (and HTTP status when
// status is non-zero), and returns its message.
func wantCode(t *testing.T, err error, code string, status int) string {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %s", code)
	}
	var aerr awserr.RequestFailure
	if !errors.As(err, &aerr) {
		t.Fatalf("got %T %v, want an AWS request failure %s", err, err, code)
	}
	if aerr.Code() != code {
		t.Fatalf("got %s (%s), want %s", aerr.Code(), aerr.Message(), code)
	}
	if status != 0 && aerr.StatusCode() != status {
		t.Fatalf("%s: got HTTP %d, want %d", code, aerr.StatusCode(), status)
	}
	if aerr.RequestID() == "" {
		t.Errorf("%s: no request id", code)
	}
	return aerr.Message()
}

// rawError decodes an AWS JSON error envelope.
func rawError(t *testing.T, body []byte) (string, string) {
	t.Helper()
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return e.Type, e.Message
}

func record(customer, dimension string, quantity int64, ts time.Time) *mm.UsageRecord {
	return &mm.UsageRecord{
		CustomerIdentifier: aws.String(customer),
		Dimension:          aws.String(dimension),
		Quantity:           aws.Int64(quantity),
		Timestamp:          aws.Time(ts),
	}
}
