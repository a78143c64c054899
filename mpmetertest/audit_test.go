package mpmetertest_test

// The audit log, end to end: real aws-sdk-go-v2 calls against the
// in-process server, the events read back from the store.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	mm "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/audit"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/server"
)

// oneEvent returns the only event of the request id.
func oneEvent(t *testing.T, srv *mpmetertest.Server, requestID string) (mpmeter.AuditEvent, string) {
	t.Helper()
	if requestID == "" {
		t.Fatal("no request id")
	}
	evs := srv.AuditEvents(t, mpmeter.AuditFilter{RequestID: requestID})
	if len(evs) != 1 {
		t.Fatalf("request %s: %d events, want 1", requestID, len(evs))
	}
	raw, err := json.Marshal(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	return evs[0], string(raw)
}

func errRequestID(t *testing.T, err error) string {
	t.Helper()
	var re *awshttp.ResponseError
	if err == nil || !errors.As(err, &re) {
		t.Fatalf("want an HTTP response error, got %v", err)
	}
	return re.ServiceRequestID()
}

// noSecrets fails when the event's JSON holds anything secret.
func noSecrets(t *testing.T, raw string, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, "AWS4-HMAC-SHA256", "Signature=", "Credential=", "X-Amz-Security-Token", mpmetertest.SellerSecret) {
		if strings.Contains(raw, s) {
			t.Errorf("the event holds %q:\n%s", s, raw)
		}
	}
}

func TestAuditBatchMeterUsage(t *testing.T) {
	srv := mpmetertest.New(t)
	ts := time.Now().Add(-time.Minute).Truncate(time.Second)
	out, err := v2Seller(srv).BatchMeterUsage(t.Context(), v2Batch(mpmetertest.SaaSProduct,
		v2Record(mpmetertest.Customer, "users", 3, ts), v2Record(mpmetertest.Customer, "gigabytes", 7, ts)))
	if err != nil {
		t.Fatal(err)
	}
	reqID, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	ev, raw := oneEvent(t, srv, reqID)

	want := map[string]string{
		"eventSource": ev.EventSource, "eventName": ev.EventName, "awsRegion": ev.AWSRegion,
		"sourceIPAddress": ev.SourceIPAddress, "type": ev.UserIdentity.Type, "accountId": ev.UserIdentity.AccountID,
		"accessKeyId": ev.UserIdentity.AccessKeyID, "recipientAccountId": ev.RecipientAccountID,
		"eventType": ev.EventType, "eventVersion": ev.EventVersion, "errorCode": ev.ErrorCode,
	}
	for k, v := range map[string]string{
		"eventSource": "metering-marketplace.amazonaws.com", "eventName": "BatchMeterUsage", "awsRegion": mpmetertest.Region,
		"sourceIPAddress": "127.0.0.1", "type": "IAMUser", "accountId": mpmetertest.SellerAccount,
		"accessKeyId": mpmetertest.SellerKey, "recipientAccountId": mpmetertest.SellerAccount,
		"eventType": "AwsApiCall", "eventVersion": mpmeter.AuditEventVersion, "errorCode": "",
	} {
		if want[k] != v {
			t.Errorf("%s = %q, want %q", k, want[k], v)
		}
	}
	if !strings.Contains(ev.UserAgent, "aws-sdk-go-v2") {
		t.Errorf("userAgent %q is not the SDK's", ev.UserAgent)
	}
	if ev.EventID == "" || ev.ReadOnly || !ev.ManagementEvent || ev.AdditionalEventData == nil || ev.AdditionalEventData.HTTPStatus != 200 {
		t.Errorf("eventID %q readOnly %v managementEvent %v additionalEventData %+v", ev.EventID, ev.ReadOnly, ev.ManagementEvent, ev.AdditionalEventData)
	}
	if d := time.Since(ev.EventTime); d < 0 || d > time.Minute {
		t.Errorf("eventTime %v is not about now", ev.EventTime)
	}
	var params struct {
		ProductCode  string `json:"productCode"`
		UsageRecords []struct {
			CustomerIdentifier string `json:"customerIdentifier"`
			Dimension          string `json:"dimension"`
			Quantity           int    `json:"quantity"`
		} `json:"usageRecords"`
	}
	if err := json.Unmarshal(ev.RequestParameters, &params); err != nil || params.ProductCode != mpmetertest.SaaSProduct ||
		len(params.UsageRecords) != 2 || params.UsageRecords[1].Dimension != "gigabytes" || params.UsageRecords[1].Quantity != 7 {
		t.Errorf("requestParameters %s (%v)", ev.RequestParameters, err)
	}
	var resp struct {
		Results []struct {
			MeteringRecordID string `json:"meteringRecordId"`
			Status           string `json:"status"`
		} `json:"results"`
	}
	if err := json.Unmarshal(ev.ResponseElements, &resp); err != nil || len(resp.Results) != 2 {
		t.Fatalf("responseElements %s (%v)", ev.ResponseElements, err)
	}
	for i, r := range resp.Results {
		if r.Status != "Success" || r.MeteringRecordID != *out.Results[i].MeteringRecordId {
			t.Errorf("result %d recorded as %+v, the client got %s %s", i, r, out.Results[i].Status, *out.Results[i].MeteringRecordId)
		}
	}
	noSecrets(t, raw)
}

func TestAuditErrorCall(t *testing.T) {
	srv := mpmetertest.New(t)
	ts := time.Now().Add(-time.Minute)
	// The other seller's product: the seller may not meter it.
	_, err := v2Seller(srv).BatchMeterUsage(t.Context(), v2Batch(mpmetertest.OtherProduct, v2Record(mpmetertest.Customer, "users", 1, ts)))
	msg := v2WantCode(t, err, "InvalidProductCodeException", 400)
	ev, raw := oneEvent(t, srv, errRequestID(t, err))
	if ev.ErrorCode != "InvalidProductCodeException" || ev.ErrorMessage != msg || ev.ResponseElements != nil {
		t.Errorf("errorCode %q errorMessage %q (client got %q) responseElements %s", ev.ErrorCode, ev.ErrorMessage, msg, ev.ResponseElements)
	}
	if ev.AdditionalEventData.HTTPStatus != 400 || !strings.Contains(string(ev.RequestParameters), `"productCode":"otherprod1"`) {
		t.Errorf("status %d, requestParameters %s", ev.AdditionalEventData.HTTPStatus, ev.RequestParameters)
	}
	noSecrets(t, raw)

	// Filtering by error finds it, and only it.
	if evs := srv.AuditEvents(t, mpmeter.AuditFilter{ErrorCode: mpmeter.AuditAnyError}); len(evs) != 1 || evs[0].EventID != ev.EventID {
		t.Errorf("errors: %d events", len(evs))
	}
}

func TestAuditRegistrationTokenHashed(t *testing.T) {
	srv := mpmetertest.New(t)
	c := v2Seller(srv)
	out, err := c.ResolveCustomer(t.Context(), &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
	if err != nil {
		t.Fatal(err)
	}
	reqID, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	ev, raw := oneEvent(t, srv, reqID)
	if want := `{"registrationToken":"` + audit.Hash(mpmetertest.Token) + `"}`; string(ev.RequestParameters) != want {
		t.Errorf("requestParameters %s, want %s", ev.RequestParameters, want)
	}
	if !strings.HasPrefix(audit.Hash(mpmetertest.Token), "sha256:") || len(audit.Hash(mpmetertest.Token)) != len("sha256:")+12 {
		t.Errorf("hash %q", audit.Hash(mpmetertest.Token))
	}
	if !ev.ReadOnly || !strings.Contains(string(ev.ResponseElements), `"customerIdentifier":"`+mpmetertest.Customer+`"`) {
		t.Errorf("readOnly %v, responseElements %s", ev.ReadOnly, ev.ResponseElements)
	}
	noSecrets(t, raw, mpmetertest.Token)

	// A token that is none: hashed too, and the error recorded.
	_, err = c.ResolveCustomer(t.Context(), &mm.ResolveCustomerInput{RegistrationToken: aws.String("a-guessed-token")})
	v2WantCode(t, err, "InvalidTokenException", 400)
	ev, raw = oneEvent(t, srv, errRequestID(t, err))
	if !strings.Contains(string(ev.RequestParameters), audit.Hash("a-guessed-token")) {
		t.Errorf("requestParameters %s", ev.RequestParameters)
	}
	noSecrets(t, raw, "a-guessed-token")
}

func TestAuditRegisterUsageSignatureHashed(t *testing.T) {
	srv := mpmetertest.New(t)
	out, err := v2Client(srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, mpmetertest.Region).RegisterUsage(t.Context(),
		&mm.RegisterUsageInput{ProductCode: aws.String(mpmetertest.ContainerProduct), PublicKeyVersion: aws.Int32(1), Nonce: aws.String("n-1")})
	if err != nil {
		t.Fatal(err)
	}
	reqID, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	ev, raw := oneEvent(t, srv, reqID)
	if want := `{"signature":"` + audit.Hash(*out.Signature) + `"}`; string(ev.ResponseElements) != want {
		t.Errorf("responseElements %s, want %s", ev.ResponseElements, want)
	}
	if w := ev.UserIdentity.Workload; w == nil || w.Platform != mpmeter.PlatformECS || ev.UserIdentity.AccountID != mpmetertest.BuyerAccount {
		t.Errorf("userIdentity %+v", ev.UserIdentity)
	}
	noSecrets(t, raw, *out.Signature, mpmetertest.ECSSecret)
}

func TestAuditTemporaryCredentials(t *testing.T) {
	srv := mpmetertest.New(t)
	cfg := srv.AWSConfig("", "")
	cfg.Credentials = credentials.NewStaticCredentialsProvider(mpmetertest.ECSTemporaryKey, mpmetertest.ECSTemporarySecret, mpmetertest.ECSSessionToken)
	c := mm.NewFromConfig(cfg, func(o *mm.Options) { o.RetryMaxAttempts = 1 })
	out, err := c.MeterUsage(t.Context(), &mm.MeterUsageInput{ProductCode: aws.String(mpmetertest.ContainerProduct), UsageDimension: aws.String("pods"),
		UsageQuantity: aws.Int32(2), Timestamp: aws.Time(time.Now().Add(-time.Minute)), DryRun: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	reqID, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	ev, raw := oneEvent(t, srv, reqID)
	if ev.UserIdentity.Type != mpmeter.AuditIdentityAssumedRole || ev.UserIdentity.AccessKeyID != mpmetertest.ECSTemporaryKey || ev.UserIdentity.Workload == nil {
		t.Errorf("userIdentity %+v", ev.UserIdentity)
	}
	if !ev.ReadOnly {
		t.Error("a DryRun is not recorded as readOnly")
	}
	noSecrets(t, raw, mpmetertest.ECSTemporarySecret, mpmetertest.ECSSessionToken)
}

func TestAuditUnauthenticated(t *testing.T) {
	srv := mpmetertest.New(t)
	status, body := srv.Do(t, mpmetertest.Raw{Target: "ResolveCustomer", Body: `{"RegistrationToken":"demo-token-1"}`,
		Key: mpmetertest.SellerKey, Secret: "not-the-secret"})
	code, _ := rawError(t, body)
	evs := srv.AuditEvents(t, mpmeter.AuditFilter{})
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	ev := evs[0]
	if ev.ErrorCode != code || ev.AdditionalEventData.HTTPStatus != status || ev.UserIdentity.Type != mpmeter.AuditIdentityUnknown ||
		ev.UserIdentity.AccessKeyID != mpmetertest.SellerKey || ev.UserIdentity.AccountID != "" || ev.RequestParameters != nil {
		t.Errorf("got %+v (client got %d %s)", ev, status, code)
	}
	raw, _ := json.Marshal(ev)
	noSecrets(t, string(raw), "not-the-secret", "demo-token-1")
}

func TestAuditOversizedRequests(t *testing.T) {
	srv := mpmetertest.New(t)
	ts := time.Now().Add(-time.Minute).Unix()
	var recs []string
	for i := range 200 {
		recs = append(recs, fmt.Sprintf(`{"CustomerIdentifier":"c-%d","Dimension":"users","Quantity":1,"Timestamp":%d}`, i, ts))
	}
	body := `{"ProductCode":"exampleprod1","UsageRecords":[` + strings.Join(recs, ",") + `]}`
	status, _ := srv.Do(t, mpmetertest.Raw{Target: "BatchMeterUsage", Body: body, Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret})
	if status != 400 {
		t.Fatalf("200 records answered %d", status)
	}
	huge := `{"ProductCode":"exampleprod1","UsageRecords":[{"CustomerIdentifier":"c","Dimension":"` + strings.Repeat("d", 600_000) + `","Quantity":1,"Timestamp":` + fmt.Sprint(ts) + `}]}`
	status, _ = srv.Do(t, mpmetertest.Raw{Target: "BatchMeterUsage", Body: huge, Key: mpmetertest.SellerKey, Secret: mpmetertest.SellerSecret})
	if status != 400 {
		t.Fatalf("a 600 kB dimension answered %d", status)
	}
	evs := srv.AuditEvents(t, mpmeter.AuditFilter{})
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	var many struct {
		UsageRecords []json.RawMessage `json:"usageRecords"`
		Truncated    map[string]int    `json:"mpmeterTruncated"`
	}
	if err := json.Unmarshal(evs[0].RequestParameters, &many); err != nil || len(many.UsageRecords) != audit.MaxRecordsKept || many.Truncated["usageRecords"] != 200 {
		t.Errorf("200 records recorded as %d records, truncation %v (%v)", len(many.UsageRecords), many.Truncated, err)
	}
	var big struct {
		Truncated struct {
			Bytes  int    `json:"bytes"`
			Prefix string `json:"prefix"`
		} `json:"mpmeterTruncated"`
	}
	if err := json.Unmarshal(evs[1].RequestParameters, &big); err != nil || big.Truncated.Bytes < 600_000 || len(evs[1].RequestParameters) > 4096 ||
		!strings.HasPrefix(big.Truncated.Prefix, `{"usageRecords":`) {
		t.Errorf("a 600 kB request recorded in %d bytes: %.200s (%v)", len(evs[1].RequestParameters), evs[1].RequestParameters, err)
	}
}

// gatedStore holds the audit writer inside PutAuditEvents until the gate
// opens, as a database that has stalled would.
type gatedStore struct {
	mpmeter.Store
	entered chan struct{}
	gate    chan struct{}
}

func (g gatedStore) PutAuditEvents(ctx context.Context, evs []mpmeter.AuditEvent) error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	return g.Store.PutAuditEvents(ctx, evs)
}

// metricsText is what the server's /metrics (on the admin listener) shows.
func metricsText(t *testing.T, srv *mpmetertest.Server) string {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

func TestAuditQueueFullDropsAndTheCallSucceeds(t *testing.T) {
	entered, gate := make(chan struct{}, 1), make(chan struct{})
	srv := mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) {
		c.Store = gatedStore{Store: c.Store, entered: entered, gate: gate}
		c.AuditQueueSize = 1
	}))
	t.Cleanup(func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	})
	c := v2Seller(srv)
	resolve := func() {
		t.Helper()
		if _, err := c.ResolveCustomer(t.Context(), &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)}); err != nil {
			t.Fatalf("the API call failed while the audit log is stuck: %v", err)
		}
	}
	resolve()
	<-entered // the writer is stuck writing the first event
	resolve() // queued: the queue holds one
	resolve() // dropped
	resolve() // dropped
	if m := metricsText(t, srv); !strings.Contains(m, `mpmeter_audit_dropped_total{reason="queue_full"} 2`) {
		t.Errorf("dropped metric:\n%s", grepLines(m, "mpmeter_audit"))
	}
	close(gate)
	if evs := srv.AuditEvents(t, mpmeter.AuditFilter{}); len(evs) != 2 {
		t.Errorf("%d events stored, want 2 (the written one and the queued one)", len(evs))
	}
	if m := metricsText(t, srv); !strings.Contains(m, `mpmeter_audit_events_written_total 2`) {
		t.Errorf("written metric:\n%s", grepLines(m, "mpmeter_audit"))
	}
}

func TestAuditFlushOnClose(t *testing.T) {
	srv := mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) {
		c.AuditFlushInterval = time.Hour // nothing is written by time
	}))
	c := v2Seller(srv)
	for range 3 {
		c.ResolveCustomer(t.Context(), &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
	}
	page, err := srv.Store.AuditEvents(t.Context(), mpmeter.AuditFilter{})
	if err != nil || len(page.Events) != 0 {
		t.Fatalf("before Close: %d events (%v), want none written yet", len(page.Events), err)
	}
	if err := srv.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	page, err = srv.Store.AuditEvents(t.Context(), mpmeter.AuditFilter{})
	if err != nil || len(page.Events) != 3 {
		t.Fatalf("after Close: %d events (%v), want 3", len(page.Events), err)
	}
	// After Close nothing is queued any more, and the API still answers.
	c.ResolveCustomer(t.Context(), &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
	if m := metricsText(t, srv); !strings.Contains(m, `mpmeter_audit_dropped_total{reason="closed"} 1`) {
		t.Errorf("closed metric:\n%s", grepLines(m, "mpmeter_audit"))
	}
}

func TestAuditRetentionPurge(t *testing.T) {
	srv := mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) { c.AuditRetention = 24 * time.Hour }))
	c := v2Seller(srv)
	c.ResolveCustomer(t.Context(), &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
	srv.AuditEvents(t, mpmeter.AuditFilter{}) // written
	srv.Clock.Advance(25 * time.Hour)
	_, err := c.ResolveCustomer(t.Context(), &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)})
	later := srv.AuditEvents(t, mpmeter.AuditFilter{})
	if len(later) != 2 || later[1].EventTime.Before(time.Now().Add(24*time.Hour)) {
		t.Fatalf("events %d; the second should be stamped by the service clock, a day ahead (err %v)", len(later), err)
	}
	if _, err := srv.Audit.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	left := srv.AuditEvents(t, mpmeter.AuditFilter{})
	if len(left) != 1 || left[0].EventID != later[1].EventID {
		t.Fatalf("after the purge: %d events, want only the recent one", len(left))
	}
	if m := metricsText(t, srv); !strings.Contains(m, "mpmeter_audit_events_purged_total 1") {
		t.Errorf("purged metric:\n%s", grepLines(m, "mpmeter_audit"))
	}
}

func TestAuditOff(t *testing.T) {
	srv := mpmetertest.New(t, mpmetertest.WithConfig(func(c *server.Config) { c.AuditOff = true }))
	if srv.Audit != nil {
		t.Fatal("Server.Audit is set with the audit log off")
	}
	if _, err := v2Seller(srv).ResolveCustomer(t.Context(), &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if page, err := srv.Store.AuditEvents(t.Context(), mpmeter.AuditFilter{}); err != nil || len(page.Events) != 0 {
		t.Fatalf("%d events with the audit log off (%v)", len(page.Events), err)
	}
}
