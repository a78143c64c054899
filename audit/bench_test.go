package audit_test

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/audit"
	"github.com/mpmeter/mpmeter/middleware"
)

// batchCall is what the awsjson handler reports for a 25-record
// BatchMeterUsage that succeeded.
func batchCall() *middleware.Request {
	in := &mpmeter.BatchMeterUsageInput{ProductCode: ptr("exampleprod1")}
	out := &mpmeter.BatchMeterUsageOutput{UnprocessedRecords: []mpmeter.UsageRecord{}}
	ts := mpmeter.NewTimestamp(time.Unix(1_700_000_000, 0))
	for i := range 25 {
		r := mpmeter.UsageRecord{CustomerIdentifier: ptr(fmt.Sprintf("cust-%06d", i)), Dimension: ptr("dimension-3"), Quantity: ptr(int64(i)), Timestamp: ts}
		in.UsageRecords = append(in.UsageRecords, r)
		out.Results = append(out.Results, mpmeter.UsageRecordResult{UsageRecord: &r, MeteringRecordId: ptr("0193f1c2-7d4e-7a55-9c1b-3f0e8d2a6b71"), Status: ptr("Success")})
	}
	return &middleware.Request{ID: "b7a4c1e0-1111-4222-8333-944455556666", Operation: mpmeter.OpBatchMeterUsage,
		Caller: mpmeter.Caller{AccountID: "111122223333", AccessKeyID: "AKIAEXAMPLESELLER001", Region: "us-east-1"}, Input: in, Output: out}
}

func ptr[T any](v T) *T { return &v }

// What a BatchMeterUsage call pays on its own goroutine: building, redacting
// and marshalling the event, and queueing it (the writer drains the queue
// into SQLite meanwhile, on its own goroutine).
func BenchmarkRecordBatchMeterUsage(b *testing.B) {
	st := openStore(b)
	r, err := audit.New(audit.Config{Store: st, Clock: mpmeter.WallClock{}, QueueSize: 1 << 20, QueueBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(b.Context())
	req := batchCall()
	hr := httptest.NewRequest("POST", "/", nil)
	hr.Header.Set("User-Agent", "aws-sdk-go-v2/1.48.0 os/linux lang/go#1.26 md/GOOS#linux api/marketplacemetering#1.45.0")
	b.ReportAllocs()
	for b.Loop() {
		r.BeginRequest()
		r.RecordRequest(hr, req, 200, time.Millisecond)
	}
}

// What the writer pays per event: batches of 250 25-record BatchMeterUsage
// events (a second of load at ~6k records/s is ~250 calls) into SQLite,
// one transaction and fsync each.
func BenchmarkPutAuditEvents(b *testing.B) {
	st := openStore(b)
	req := batchCall()
	params := audit.Redact(req.Input, audit.MaxParametersBytes)
	resp := audit.Redact(req.Output, audit.MaxResponseBytes)
	batch := make([]mpmeter.AuditEvent, 250)
	n := 0
	b.SetBytes(int64(len(batch) * (len(params) + len(resp))))
	for b.Loop() {
		for i := range batch {
			n++
			batch[i] = mpmeter.AuditEvent{EventID: fmt.Sprintf("ev-%09d", n), EventTime: time.Now(), EventSource: mpmeter.AuditSourceMetering,
				EventName: mpmeter.OpBatchMeterUsage, RequestID: fmt.Sprintf("req-%09d", n), RequestParameters: params, ResponseElements: resp,
				UserIdentity: mpmeter.AuditIdentity{Type: "IAMUser", AccountID: "111122223333", AccessKeyID: "AKIAEXAMPLESELLER001"}}
		}
		if err := st.PutAuditEvents(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/event")
}
