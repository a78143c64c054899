package awsjson_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/awsjson"
	"github.com/mpmeter/mpmeter/middleware"
)

// The protocol layer is under test: the verifier and the service are fakes.

// fakeVerifier accepts any request with an Authorization header as the
// seller, in the region of the X-Test-Region header (default us-east-1).
type fakeVerifier struct{}

func (fakeVerifier) VerifyRequest(_ context.Context, r *http.Request, readBody func() ([]byte, error)) (mpmeter.Caller, error) {
	if r.Header.Get("Authorization") == "" {
		return mpmeter.Caller{}, &mpmeter.Error{Code: mpmeter.CodeMissingAuthentication, Message: "Missing Authentication Token"}
	}
	if _, err := readBody(); err != nil {
		return mpmeter.Caller{}, err
	}
	region := r.Header.Get("X-Test-Region")
	if region == "" {
		region = "us-east-1"
	}
	return mpmeter.Caller{AccountID: "111122223333", Region: region}, nil
}

// fakeService answers with its function fields; a nil one fails the test.
type fakeService struct {
	t       testing.TB
	batch   func(*mpmeter.BatchMeterUsageInput) (*mpmeter.BatchMeterUsageOutput, error)
	meter   func(*mpmeter.MeterUsageInput) (*mpmeter.MeterUsageOutput, error)
	resolve func(*mpmeter.ResolveCustomerInput) (*mpmeter.ResolveCustomerOutput, error)
}

func (f *fakeService) BatchMeterUsage(_ context.Context, _ mpmeter.Caller, in *mpmeter.BatchMeterUsageInput) (*mpmeter.BatchMeterUsageOutput, error) {
	if f.batch == nil {
		f.t.Fatal("BatchMeterUsage called")
	}
	return f.batch(in)
}

func (f *fakeService) MeterUsage(_ context.Context, _ mpmeter.Caller, in *mpmeter.MeterUsageInput) (*mpmeter.MeterUsageOutput, error) {
	if f.meter == nil {
		f.t.Fatal("MeterUsage called")
	}
	return f.meter(in)
}

func (f *fakeService) RegisterUsage(context.Context, mpmeter.Caller, *mpmeter.RegisterUsageInput) (*mpmeter.RegisterUsageOutput, error) {
	f.t.Fatal("RegisterUsage called")
	return nil, nil
}

func (f *fakeService) ResolveCustomer(_ context.Context, _ mpmeter.Caller, in *mpmeter.ResolveCustomerInput) (*mpmeter.ResolveCustomerOutput, error) {
	if f.resolve == nil {
		f.t.Fatal("ResolveCustomer called")
	}
	return f.resolve(in)
}

type denyAll struct{}

func (denyAll) Allow(context.Context, string, string, string) bool { return false }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// request builds a signed (fake) awsJson request for op.
func request(op, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", awsjson.ContentType)
	r.Header.Set("X-Amz-Target", mpmeter.TargetPrefix+"."+op)
	r.Header.Set("Authorization", "fake")
	return r
}

// serve runs r through the handler (with the middleware when wrap) and
// returns the response and what the handler reported.
func serve(t *testing.T, svc *fakeService, opts awsjson.Options, r *http.Request) (*httptest.ResponseRecorder, *middleware.Request) {
	t.Helper()
	svc.t = t
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	h := awsjson.NewHandler(svc, fakeVerifier{}, opts)
	req := &middleware.Request{ID: "test-request-id"}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(middleware.NewContext(r.Context(), req)))
	return w, req
}

// envelope decodes an error answer, requiring exactly __type and message.
func envelope(t *testing.T, w *httptest.ResponseRecorder) (mpmeter.ErrorCode, string) {
	t.Helper()
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if len(body) != 2 || body["__type"] == "" {
		t.Fatalf("error body %q: want exactly __type and message", w.Body)
	}
	if _, ok := body["message"]; !ok {
		t.Fatalf("error body %q has no message", w.Body)
	}
	return mpmeter.ErrorCode(body["__type"]), body["message"]
}

func TestErrorEnvelope(t *testing.T) {
	svc := &fakeService{resolve: func(*mpmeter.ResolveCustomerInput) (*mpmeter.ResolveCustomerOutput, error) {
		return nil, mpmeter.Errorf(mpmeter.CodeInvalidToken, "Registration token is invalid.")
	}}
	w, req := serve(t, svc, awsjson.Options{}, request(mpmeter.OpResolveCustomer, `{"RegistrationToken":"t"}`))
	if w.Code != http.StatusBadRequest {
		t.Errorf("status %d", w.Code)
	}
	if got := w.Body.String(); got != `{"__type":"InvalidTokenException","message":"Registration token is invalid."}` {
		t.Errorf("body %s", got)
	}
	for name, want := range map[string]string{
		"Content-Type":     awsjson.ContentType,
		"Content-Length":   strconv.Itoa(w.Body.Len()),
		"x-amzn-ErrorType": "InvalidTokenException",
	} {
		if got := w.Header().Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if req.Operation != mpmeter.OpResolveCustomer || req.ErrorCode != mpmeter.CodeInvalidToken || req.Caller.AccountID != "111122223333" {
		t.Errorf("reported %+v", req)
	}
}

// Through the middleware, as the server serves it: every answer carries
// x-amzn-RequestId.
func TestRequestIDOnEveryAnswer(t *testing.T) {
	svc := &fakeService{t: t, resolve: func(*mpmeter.ResolveCustomerInput) (*mpmeter.ResolveCustomerOutput, error) {
		return &mpmeter.ResolveCustomerOutput{CustomerIdentifier: new(string)}, nil
	}}
	h := middleware.Wrap(awsjson.NewHandler(svc, fakeVerifier{}, awsjson.Options{Logger: quiet}), middleware.Options{Logger: quiet})
	unsigned := request(mpmeter.OpResolveCustomer, `{}`)
	unsigned.Header.Del("Authorization")
	seen := map[string]bool{}
	for _, r := range []*http.Request{request(mpmeter.OpResolveCustomer, `{"RegistrationToken":"t"}`), unsigned, request("Nope", `{}`)} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		id := w.Header().Get("x-amzn-RequestId")
		if len(id) != 36 || seen[id] {
			t.Errorf("%d answer: request id %q", w.Code, id)
		}
		seen[id] = true
		if ct := w.Header().Get("Content-Type"); ct != awsjson.ContentType {
			t.Errorf("%d answer: Content-Type %q", w.Code, ct)
		}
	}
}

func TestSuccessBody(t *testing.T) {
	id := "cust-1"
	svc := &fakeService{resolve: func(in *mpmeter.ResolveCustomerInput) (*mpmeter.ResolveCustomerOutput, error) {
		if *in.RegistrationToken != "tok" {
			t.Errorf("token %q", *in.RegistrationToken)
		}
		return &mpmeter.ResolveCustomerOutput{CustomerIdentifier: &id}, nil
	}}
	w, req := serve(t, svc, awsjson.Options{}, request(mpmeter.OpResolveCustomer, `{"RegistrationToken":"tok"}`))
	if w.Code != 200 || w.Body.String() != `{"CustomerIdentifier":"cust-1"}` || w.Header().Get("Content-Type") != awsjson.ContentType {
		t.Fatalf("%d %s %v", w.Code, w.Body, w.Header())
	}
	if req.ErrorCode != "" || req.Operation != mpmeter.OpResolveCustomer {
		t.Errorf("reported %+v", req)
	}
}

// Every error name's status: the modeled errors (from the model) are 400
// but faults (500); the common ones as PROTOCOL.md and the API reference say.
func TestStatusTable(t *testing.T) {
	var model struct {
		Shapes map[string]struct {
			Exception bool `json:"exception"`
			Fault     bool `json:"fault"`
		} `json:"shapes"`
	}
	// Both models' errors: the Metering Service's and the Entitlement
	// Service's (decoded into the same map).
	for _, path := range []string{"../spec/service-2.current.json", "../spec/marketplace-entitlement-2017-01-11.json"} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &model); err != nil {
			t.Fatal(err)
		}
	}
	want := map[mpmeter.ErrorCode]int{
		mpmeter.CodeAccessDenied:             400,
		mpmeter.CodeIncompleteSignature:      400,
		mpmeter.CodeInternalFailureUnmodeled: 500,
		mpmeter.CodeInvalidClientTokenID:     403,
		mpmeter.CodeMissingAuthentication:    403,
		mpmeter.CodeOptInRequired:            403,
		mpmeter.CodeServiceUnavailable:       503,
		mpmeter.CodeValidation:               400,
		mpmeter.CodeUnrecognizedClient:       403,
		mpmeter.CodeInvalidSignature:         403,
		mpmeter.CodeSerialization:            400,
		mpmeter.CodeUnknownOperation:         400,
		mpmeter.CodeRequestEntityTooLarge:    413,
	}
	modeled := 0
	for name, s := range model.Shapes {
		if !s.Exception {
			continue
		}
		modeled++
		want[mpmeter.ErrorCode(name)] = 400
		if s.Fault {
			want[mpmeter.ErrorCode(name)] = 500
		}
	}
	if modeled == 0 {
		t.Fatal("no exception shapes in the model")
	}
	// The Agreement Service's: the errors of the three operations served
	// (its model has 25), 400 but the fault InternalServerException.
	var agreement struct {
		Operations map[string]struct {
			Errors []struct{ Shape string } `json:"errors"`
		} `json:"operations"`
		Shapes map[string]struct {
			Fault bool `json:"fault"`
		} `json:"shapes"`
	}
	raw, err := os.ReadFile("../spec/marketplace-agreement-2020-03-01.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &agreement); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{mpmeter.OpDescribeAgreement, mpmeter.OpGetAgreementTerms, mpmeter.OpSearchAgreements} {
		for _, e := range agreement.Operations[op].Errors {
			want[mpmeter.ErrorCode(e.Shape)] = 400
			if agreement.Shapes[e.Shape].Fault {
				want[mpmeter.ErrorCode(e.Shape)] = 500
			}
		}
	}
	inTable := map[mpmeter.ErrorCode]bool{}
	for _, info := range mpmeter.ErrorCodes() {
		inTable[info.Code] = true
		if info.Description == "" {
			t.Errorf("%s has no description", info.Code)
		}
		if _, ok := want[info.Code]; !ok {
			t.Errorf("%s is in the table but neither modeled nor a known common error", info.Code)
		}
	}
	for code, status := range want {
		if !inTable[code] {
			t.Errorf("%s is not in the error table", code)
		}
		if got := awsjson.Status(code); got != status {
			t.Errorf("Status(%s) = %d, want %d", code, got, status)
		}
	}
	if got := awsjson.Status("SomethingElse"); got != 400 {
		t.Errorf("an unknown name: %d, want 400", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		name, op, body string
		want           string // message; "" for any
	}{
		{"array", mpmeter.OpResolveCustomer, `["t"]`, "Start of structure or map found where not expected."},
		{"string", mpmeter.OpResolveCustomer, `"t"`, "Start of structure or map found where not expected."},
		{"number", mpmeter.OpResolveCustomer, `42`, "Start of structure or map found where not expected."},
		{"wrong member type", mpmeter.OpResolveCustomer, `{"RegistrationToken":42}`, "Cannot deserialize value of type number at 'RegistrationToken': a string was expected."},
		{"list for a string", mpmeter.OpResolveCustomer, `{"RegistrationToken":["t"]}`, "Cannot deserialize value of type array at 'RegistrationToken': a string was expected."},
		{"string for an integer", mpmeter.OpMeterUsage, `{"ProductCode":"p","UsageQuantity":"1"}`, "Cannot deserialize value of type string at 'UsageQuantity': a integer was expected."},
		{"fraction for an integer", mpmeter.OpMeterUsage, `{"UsageQuantity":1.5}`, ""},
		{"object for a list", mpmeter.OpBatchMeterUsage, `{"UsageRecords":{}}`, "Cannot deserialize value of type object at 'UsageRecords': a list was expected."},
		{"string timestamp", mpmeter.OpMeterUsage, `{"ProductCode":"p","Timestamp":"2026-11-25T00:00:00Z"}`, "Cannot deserialize value at 'Timestamp': timestamp must be a JSON number of epoch seconds."},
		{"string timestamp in a list", mpmeter.OpBatchMeterUsage, `{"UsageRecords":[{"Timestamp":"1795514700"}]}`, ""},
		{"trailing object", mpmeter.OpResolveCustomer, `{"RegistrationToken":"t"} {}`, "Unexpected content after the request's JSON object."},
		{"trailing garbage", mpmeter.OpResolveCustomer, `{"RegistrationToken":"t"}x`, "Unexpected content after the request's JSON object."},
		{"truncated", mpmeter.OpResolveCustomer, `{"RegistrationToken":`, "Malformed JSON: unexpected end of input."},
		{"syntax", mpmeter.OpResolveCustomer, `{"RegistrationToken" "t"}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, req := serve(t, &fakeService{}, awsjson.Options{}, request(c.op, c.body))
			code, msg := envelope(t, w)
			if w.Code != 400 || code != mpmeter.CodeSerialization || req.ErrorCode != mpmeter.CodeSerialization {
				t.Fatalf("got %d %s %q", w.Code, code, msg)
			}
			if c.want != "" && msg != c.want {
				t.Errorf("message %q, want %q", msg, c.want)
			}
		})
	}
}

// An empty body and null are {}: the request decodes and is validated.
func TestEmptyBodyIsEmptyObject(t *testing.T) {
	for _, body := range []string{``, `  `, `null`, `{}`} {
		w, _ := serve(t, &fakeService{}, awsjson.Options{}, request(mpmeter.OpResolveCustomer, body))
		code, msg := envelope(t, w)
		if code != mpmeter.CodeValidation || msg != "1 validation error detected: Value null at 'registrationToken' failed to satisfy constraint: Member must not be null" {
			t.Errorf("%q: %s %q", body, code, msg)
		}
	}
}

// The admission order of the package documentation: the first failing step
// is the answer, and the service is never called when one fails.
func TestAdmissionOrder(t *testing.T) {
	// A body that is both malformed for the model and would fail every
	// later step.
	invalid := `{"UsageRecords":[{}]}`
	unsigned := func(r *http.Request) *http.Request { r.Header.Del("Authorization"); return r }
	region := func(reg string, r *http.Request) *http.Request { r.Header.Set("X-Test-Region", reg); return r }
	get := httptest.NewRequest(http.MethodGet, "/", nil)
	get.Header.Set("X-Amz-Target", mpmeter.TargetPrefix+"."+mpmeter.OpResolveCustomer)
	for _, c := range []struct {
		name    string
		r       *http.Request
		limiter awsjson.Limiter
		want    mpmeter.ErrorCode
		op      string // reported operation
	}{
		{"not POST", get, nil, mpmeter.CodeUnknownOperation, mpmeter.OpResolveCustomer},
		{"too large before SigV4", unsigned(request("Junk", `{"x":"`+strings.Repeat("x", awsjson.MaxBodyBytes)+`"}`)), nil, mpmeter.CodeRequestEntityTooLarge, ""},
		{"SigV4 before operation", unsigned(request("Junk", invalid)), nil, mpmeter.CodeMissingAuthentication, ""},
		{"operation", request("Junk", invalid), nil, mpmeter.CodeUnknownOperation, ""},
		{"a known name under another prefix", func() *http.Request {
			r := request("", invalid)
			r.Header.Set("X-Amz-Target", "Other."+mpmeter.OpBatchMeterUsage)
			return r
		}(), nil, mpmeter.CodeUnknownOperation, ""},
		{"Content-Type", func() *http.Request {
			r := request(mpmeter.OpBatchMeterUsage, invalid)
			r.Header.Set("Content-Type", "text/plain")
			return r
		}(), nil, mpmeter.CodeSerialization, mpmeter.OpBatchMeterUsage},
		{"region before quota", region("us-gov-west-1", request(mpmeter.OpBatchMeterUsage, invalid)), denyAll{}, mpmeter.CodeDisabledAPI, mpmeter.OpBatchMeterUsage},
		{"quota before validation", request(mpmeter.OpBatchMeterUsage, invalid), denyAll{}, mpmeter.CodeThrottling, mpmeter.OpBatchMeterUsage},
		{"decode before validation", request(mpmeter.OpBatchMeterUsage, `{"UsageRecords":[{"Quantity":"x"}]}`), nil, mpmeter.CodeSerialization, mpmeter.OpBatchMeterUsage},
		{"validation before rules", request(mpmeter.OpBatchMeterUsage, invalid), nil, mpmeter.CodeValidation, mpmeter.OpBatchMeterUsage},
		{"cross-field rules before rules", request(mpmeter.OpBatchMeterUsage, `{"ProductCode":"p","UsageRecords":[{"Dimension":"d","Timestamp":1}]}`), nil, mpmeter.CodeValidation, mpmeter.OpBatchMeterUsage},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, req := serve(t, &fakeService{}, awsjson.Options{Limiter: c.limiter}, c.r)
			code, msg := envelope(t, w)
			if code != c.want || req.ErrorCode != c.want {
				t.Fatalf("got %s %q, want %s", code, msg, c.want)
			}
			if w.Code != awsjson.Status(c.want) {
				t.Errorf("status %d", w.Code)
			}
			if req.Operation != c.op {
				t.Errorf("reported operation %q, want %q", req.Operation, c.op)
			}
		})
	}
}

// Errors that are not *mpmeter.Error are internal: the client learns
// nothing of them; a passed deadline is a retryable 503.
func TestInternalErrors(t *testing.T) {
	for _, c := range []struct {
		err    error
		code   mpmeter.ErrorCode
		status int
	}{
		{errors.New("database password is hunter2"), mpmeter.CodeInternalServiceError, 500},
		{fmt.Errorf("querying: %w", context.DeadlineExceeded), mpmeter.CodeServiceUnavailable, 503},
		{fmt.Errorf("wrapped: %w", mpmeter.Errorf(mpmeter.CodeInvalidLicense, "no")), mpmeter.CodeInvalidLicense, 400},
	} {
		svc := &fakeService{resolve: func(*mpmeter.ResolveCustomerInput) (*mpmeter.ResolveCustomerOutput, error) { return nil, c.err }}
		w, req := serve(t, svc, awsjson.Options{}, request(mpmeter.OpResolveCustomer, `{"RegistrationToken":"t"}`))
		code, msg := envelope(t, w)
		if w.Code != c.status || code != c.code || req.ErrorCode != c.code || strings.Contains(msg, "hunter2") {
			t.Errorf("%v: got %d %s %q", c.err, w.Code, code, msg)
		}
	}
}

func TestWriteInternalError(t *testing.T) {
	req := &middleware.Request{}
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	w := httptest.NewRecorder()
	awsjson.WriteInternalError(w, r.WithContext(middleware.NewContext(r.Context(), req)))
	code, _ := envelope(t, w)
	if w.Code != 500 || code != mpmeter.CodeInternalServiceError || req.ErrorCode != code {
		t.Fatalf("%d %s %+v", w.Code, code, req)
	}
}
