package awsjson_test

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/awsjson"
	"github.com/mpmeter/mpmeter/middleware"
)

// Member names are case-sensitive as in AWS's parser: productcode and
// usagerecords are unknown members (ignored), so the required ones are
// missing; a later PRODUCTCODE does not override ProductCode.
func TestMemberNamesAreCaseSensitive(t *testing.T) {
	var got *mpmeter.BatchMeterUsageInput
	svc := &fakeService{batch: func(in *mpmeter.BatchMeterUsageInput) (*mpmeter.BatchMeterUsageOutput, error) {
		got = in
		return &mpmeter.BatchMeterUsageOutput{}, nil
	}}
	w, _ := serve(t, svc, awsjson.Options{}, request(mpmeter.OpBatchMeterUsage, `{"productcode":"p","usagerecords":[]}`))
	code, msg := envelope(t, w)
	if code != mpmeter.CodeValidation || !strings.Contains(msg, "'usageRecords' failed to satisfy constraint: Member must not be null") {
		t.Errorf("lower-case members: %s %q", code, msg)
	}
	w, _ = serve(t, svc, awsjson.Options{}, request(mpmeter.OpBatchMeterUsage, `{"ProductCode":"good","UsageRecords":[],"PRODUCTCODE":"evil"}`))
	if w.Code != 200 || got == nil || *got.ProductCode != "good" {
		t.Fatalf("answered %d %s; ProductCode %v", w.Code, w.Body, got)
	}
}

// A member given twice is refused rather than the last one winning.
func TestDuplicateMemberIsSerializationException(t *testing.T) {
	for _, body := range []string{
		`{"RegistrationToken":"a","RegistrationToken":"b"}`,
		`{"ProductCode":"p","UsageRecords":[{"Dimension":"a","Dimension":"b"}]}`,
	} {
		op := mpmeter.OpResolveCustomer
		if strings.Contains(body, "UsageRecords") {
			op = mpmeter.OpBatchMeterUsage
		}
		w, _ := serve(t, &fakeService{}, awsjson.Options{}, request(op, body))
		code, msg := envelope(t, w)
		if w.Code != 400 || code != mpmeter.CodeSerialization || !strings.Contains(msg, "Duplicate member") {
			t.Errorf("%s: %d %s %q", body, w.Code, code, msg)
		}
	}
}

// countingBody records whether anything read it.
type countingBody struct {
	io.Reader
	mu   sync.Mutex
	read int
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	b.mu.Lock()
	b.read += n
	b.mu.Unlock()
	return n, err
}

func (b *countingBody) Close() error { return nil }

// A request whose headers fail authentication is answered without its body
// being read.
func TestBodyNotReadBeforeHeadersAuthenticate(t *testing.T) {
	body := &countingBody{Reader: strings.NewReader(`{"RegistrationToken":"t"}`)}
	r := request(mpmeter.OpResolveCustomer, "")
	r.Body, r.ContentLength = body, 25
	r.Header.Del("Authorization")
	w, _ := serve(t, &fakeService{}, awsjson.Options{}, r)
	if code, _ := envelope(t, w); code != mpmeter.CodeMissingAuthentication {
		t.Fatalf("answered %s", code)
	}
	if body.read != 0 {
		t.Errorf("%d body bytes read before authentication", body.read)
	}
}

// A declared Content-Length over the limit is refused before anything else.
func TestDeclaredLengthOverLimit(t *testing.T) {
	body := &countingBody{Reader: strings.NewReader("{}")}
	r := request(mpmeter.OpResolveCustomer, "")
	r.Body, r.ContentLength = body, awsjson.MaxBodyBytes+1
	w, _ := serve(t, &fakeService{}, awsjson.Options{}, r)
	if code, _ := envelope(t, w); w.Code != 413 || code != mpmeter.CodeRequestEntityTooLarge {
		t.Fatalf("answered %d %s", w.Code, code)
	}
	if body.read != 0 {
		t.Errorf("%d body bytes read", body.read)
	}
}

// A chunked body (no declared length) over the limit is cut at the limit.
func TestChunkedBodyOverLimit(t *testing.T) {
	r := request(mpmeter.OpResolveCustomer, "")
	r.Body, r.ContentLength = io.NopCloser(strings.NewReader(`{"RegistrationToken":"`+strings.Repeat("x", awsjson.MaxBodyBytes)+`"}`)), -1
	w, _ := serve(t, &fakeService{}, awsjson.Options{}, r)
	if code, _ := envelope(t, w); w.Code != 413 || code != mpmeter.CodeRequestEntityTooLarge {
		t.Fatalf("answered %d %s", w.Code, code)
	}
}

// blockingBody is a body whose reader stalls until released: an upload in
// progress.
type blockingBody struct{ reading, release chan struct{} }

func (b blockingBody) Read(p []byte) (int, error) {
	close(b.reading)
	<-b.release
	return 0, io.ErrUnexpectedEOF
}
func (blockingBody) Close() error { return nil }

// Bodies in flight are bounded in bytes: with the budget taken by a
// stalled upload, the next large request is ServiceUnavailable (503) at
// once, a small one still goes through, and once the upload ends the budget
// is free again.
func TestBodyBudget(t *testing.T) {
	svc := &fakeService{t: t, resolve: func(*mpmeter.ResolveCustomerInput) (*mpmeter.ResolveCustomerOutput, error) {
		return &mpmeter.ResolveCustomerOutput{}, nil
	}}
	h := awsjson.NewHandler(svc, fakeVerifier{}, awsjson.Options{Logger: quiet, MaxBodyBytesInFlight: awsjson.MaxBodyBytes})
	do := func(r *http.Request) int {
		req := &middleware.Request{ID: "x"}
		w := &recorder{header: http.Header{}}
		h.ServeHTTP(w, r.WithContext(middleware.NewContext(context.Background(), req)))
		return w.code
	}
	stalled := blockingBody{reading: make(chan struct{}), release: make(chan struct{})}
	r := request(mpmeter.OpResolveCustomer, "")
	r.Body, r.ContentLength = stalled, awsjson.MaxBodyBytes
	done := make(chan int)
	go func() { done <- do(r) }()
	<-stalled.reading // it holds the whole budget now
	large := `{"RegistrationToken":"t","x":"` + strings.Repeat("x", awsjson.SmallBodyBytes) + `"}`
	if code := do(request(mpmeter.OpResolveCustomer, large)); code != http.StatusServiceUnavailable {
		t.Errorf("large request with the budget taken: %d", code)
	}
	if code := do(request(mpmeter.OpResolveCustomer, `{"RegistrationToken":"t"}`)); code != 200 {
		t.Errorf("small request with the budget taken: %d", code)
	}
	close(stalled.release)
	if code := <-done; code != 400 {
		t.Errorf("stalled request answered %d", code)
	}
	if code := do(request(mpmeter.OpResolveCustomer, large)); code != 200 {
		t.Errorf("after the upload ended: %d", code)
	}
}

type recorder struct {
	header http.Header
	code   int
}

func (w *recorder) Header() http.Header         { return w.header }
func (w *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (w *recorder) WriteHeader(code int)        { w.code = code }

// A 1 MB BatchMeterUsage of empty records once answered a 74 MB
// ValidationException: the list is decoded only as far as validation needs,
// and the answer is one bounded violation.
func TestEmptyRecordsDoNotAmplify(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"ProductCode":"p","UsageRecords":[{}`)
	for b.Len() < awsjson.MaxBodyBytes-10 {
		b.WriteString(",{}")
	}
	b.WriteString("]}")
	body := b.String()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w, _ := serve(t, &fakeService{}, awsjson.Options{}, request(mpmeter.OpBatchMeterUsage, body))
	runtime.ReadMemStats(&after)
	code, msg := envelope(t, w)
	if code != mpmeter.CodeValidation || !strings.HasPrefix(msg, "1 validation error detected: ") || len(w.Body.Bytes()) > 2048 {
		t.Fatalf("%s, %d bytes: %.300q", code, w.Body.Len(), msg)
	}
	// The body itself is 1 MB (read twice: the request and the handler's
	// copy); 340,000 decoded records would be some 30 MB.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KB", alloc>>10)
	if alloc > 8<<20 {
		t.Errorf("one request allocated %d MB", alloc>>20)
	}
}
