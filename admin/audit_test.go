package admin_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	mmtypes "github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
)

type auditList struct {
	Items      []mpmeter.AuditEvent `json:"items"`
	NextCursor string               `json:"next_cursor"`
}

// flush writes what the audit log has queued, so the routes see it.
func flush(t *testing.T, srv *mpmetertest.Server) {
	t.Helper()
	if err := srv.Audit.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func listAudit(t *testing.T, srv *mpmetertest.Server, q url.Values) auditList {
	t.Helper()
	var out auditList
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/audit/events?"+q.Encode(), nil, &out)
	return out
}

func requestIDs(evs []mpmeter.AuditEvent) []string {
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.RequestID)
	}
	return ids
}

// meter sends one BatchMeterUsage through aws-sdk-go-v2 and returns the
// request id the SDK got.
func meter(t *testing.T, srv *mpmetertest.Server, c *marketplacemetering.Client, quantity int32) string {
	t.Helper()
	out, err := c.BatchMeterUsage(t.Context(), &marketplacemetering.BatchMeterUsageInput{
		ProductCode: aws.String(mpmetertest.SaaSProduct),
		UsageRecords: []mmtypes.UsageRecord{{CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"),
			Quantity: aws.Int32(quantity), Timestamp: aws.Time(srv.Clock.Now().Add(-time.Duration(quantity) * time.Minute))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if id == "" {
		t.Fatal("no request id")
	}
	return id
}

// Real SDK calls, then the audit routes: every filter, pages, one event,
// the export.
func TestAuditRoutes(t *testing.T) {
	srv := newServer(t)
	c := marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret),
		func(o *marketplacemetering.Options) { o.RetryMaxAttempts = 1 })
	start := srv.Clock.Now()
	var ok []string
	for q := int32(1); q <= 3; q++ {
		ok = append(ok, meter(t, srv, c, q))
	}
	_, err := c.ResolveCustomer(t.Context(), &marketplacemetering.ResolveCustomerInput{RegistrationToken: aws.String("no-such-token")})
	if err == nil {
		t.Fatal("an unknown token resolved")
	}
	flush(t, srv)

	all := listAudit(t, srv, url.Values{"source": {"metering"}})
	if len(all.Items) != 4 {
		t.Fatalf("%d metering events, want 4: %v", len(all.Items), requestIDs(all.Items))
	}
	batch := listAudit(t, srv, url.Values{"operation": {"BatchMeterUsage"}, "account": {mpmetertest.SellerAccount}})
	if got := requestIDs(batch.Items); strings.Join(got, ",") != strings.Join(ok, ",") {
		t.Errorf("BatchMeterUsage of the seller, oldest first: %v, want %v", got, ok)
	}
	first := batch.Items[0]
	if first.EventSource != mpmeter.AuditSourceMetering || first.UserIdentity.AccessKeyID != mpmetertest.SellerKey ||
		!bytes.Contains(first.RequestParameters, []byte(`"productCode":"exampleprod1"`)) || first.ResponseElements == nil {
		t.Errorf("event %+v", first)
	}
	newest := listAudit(t, srv, url.Values{"operation": {"BatchMeterUsage"}, "order": {"newest"}})
	if got := requestIDs(newest.Items); len(got) != 3 || got[0] != ok[2] || got[2] != ok[0] {
		t.Errorf("newest first: %v", got)
	}
	failed := listAudit(t, srv, url.Values{"error": {"any"}, "source": {"metering"}})
	if len(failed.Items) != 1 || failed.Items[0].ErrorCode != "InvalidTokenException" || failed.Items[0].EventName != "ResolveCustomer" {
		t.Errorf("error=any: %+v", failed.Items)
	}
	if byCode := listAudit(t, srv, url.Values{"error": {"InvalidTokenException"}}); len(byCode.Items) != 1 {
		t.Errorf("error=InvalidTokenException: %d events", len(byCode.Items))
	}
	if succeeded := listAudit(t, srv, url.Values{"error": {"none"}, "source": {"metering"}}); len(succeeded.Items) != 3 {
		t.Errorf("error=none: %d events, want 3", len(succeeded.Items))
	}
	if one := listAudit(t, srv, url.Values{"request_id": {ok[1]}}); len(one.Items) != 1 || one.Items[0].RequestID != ok[1] {
		t.Errorf("request_id: %v", requestIDs(one.Items))
	}
	// Time range: the service clock moved between calls would be needed to
	// split them; a range ending before the first call has none of them,
	// one from it has all.
	if none := listAudit(t, srv, url.Values{"until": {start.Add(-time.Second).Format(time.RFC3339Nano)}, "source": {"metering"}}); len(none.Items) != 0 {
		t.Errorf("until before the calls: %d events", len(none.Items))
	}
	if from := listAudit(t, srv, url.Values{"from": {start.Add(-time.Second).Format(time.RFC3339)}, "source": {"metering"}}); len(from.Items) != 4 {
		t.Errorf("from before the calls: %d events", len(from.Items))
	}

	// Pages of one, newest first: the list convention (empty cursor on the
	// last page), each event once.
	var paged []string
	q := url.Values{"source": {"metering"}, "order": {"newest"}, "limit": {"1"}}
	for i := 0; ; i++ {
		page := listAudit(t, srv, q)
		paged = append(paged, requestIDs(page.Items)...)
		if page.NextCursor == "" {
			break
		}
		if i > 10 {
			t.Fatal("paging does not end")
		}
		q.Set("cursor", page.NextCursor)
	}
	if len(paged) != 4 || paged[0] != failed.Items[0].RequestID {
		t.Errorf("paged newest first: %v", paged)
	}

	// One event by id, and one that does not exist.
	var got mpmeter.AuditEvent
	must(t, srv, http.StatusOK, http.MethodGet, "/admin/v1/audit/events/"+first.EventID, nil, &got)
	if got.EventID != first.EventID || got.RequestID != first.RequestID || !bytes.Equal(got.RequestParameters, first.RequestParameters) {
		t.Errorf("by id: %+v, want %+v", got, first)
	}
	st, b := call(t, srv.URL, token, http.MethodGet, "/admin/v1/audit/events/0193f1c2-7d4e-7a55-9c1b-3f0e8d2a6b71", nil, nil)
	wantError(t, st, b, http.StatusNotFound, "not_found")
	// Bad filters and cursors: 400.
	for _, bad := range []string{"cursor=not-a-cursor", "from=yesterday", "source=s3", "order=random", "limit=0", "limit=1001"} {
		st, b := call(t, srv.URL, token, http.MethodGet, "/admin/v1/audit/events?"+bad, nil, nil)
		wantError(t, st, b, http.StatusBadRequest, "validation_failed")
	}

	// The export: the same events as JSON lines, streamed.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/admin/v1/audit/export?source=metering&operation=BatchMeterUsage", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev mpmeter.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		lines = append(lines, ev.RequestID)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(lines, ",") != strings.Join(ok, ",") {
		t.Errorf("export: %v, want %v", lines, ok)
	}
}

// The export of more events than one store page (1000) streams them all,
// in order.
func TestAuditExportManyPages(t *testing.T) {
	srv := newServer(t)
	var evs []mpmeter.AuditEvent
	t0 := srv.Clock.Now().Add(-time.Hour)
	for i := range 2500 {
		evs = append(evs, mpmeter.AuditEvent{EventID: fmt.Sprintf("ev-%05d", i), EventTime: t0.Add(time.Duration(i) * time.Millisecond),
			EventSource: mpmeter.AuditSourceMetering, EventName: mpmeter.OpMeterUsage, RequestID: "r" + strconv.Itoa(i)})
	}
	if err := srv.Store.PutAuditEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	_, body := call(t, srv.URL, token, http.MethodGet, "/admin/v1/audit/export?operation=MeterUsage", nil, nil)
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) != 2500 {
		t.Fatalf("%d lines, want 2500", len(lines))
	}
	for i, l := range lines {
		var ev mpmeter.AuditEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.RequestID != "r"+strconv.Itoa(i) {
			t.Fatalf("line %d: %s (%v)", i, l, err)
		}
	}
}

// Following the log, as `mpmeter audit tail --follow` does: oldest first,
// the cursor of the last page is set at the end of the log, answers
// nothing while nothing is new, and then exactly the new events — never
// one already seen.
func TestAuditFollowCursor(t *testing.T) {
	srv := newServer(t)
	c := marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret),
		func(o *marketplacemetering.Options) { o.RetryMaxAttempts = 1 })
	first := []string{meter(t, srv, c, 1), meter(t, srv, c, 2)}
	flush(t, srv)
	q := url.Values{"source": {"metering"}, "limit": {"1"}}
	var seen []string
	for i := 0; ; i++ {
		page := listAudit(t, srv, q)
		if page.NextCursor == "" {
			t.Fatal("oldest first, a page without next_cursor")
		}
		if len(page.Items) == 0 {
			if page.NextCursor != q.Get("cursor") {
				t.Errorf("an empty page moved the cursor")
			}
			break
		}
		q.Set("cursor", page.NextCursor)
		seen = append(seen, requestIDs(page.Items)...)
		if i > 10 {
			t.Fatal("never caught up")
		}
	}
	if strings.Join(seen, ",") != strings.Join(first, ",") {
		t.Fatalf("read %v, want %v", seen, first)
	}
	end := q.Get("cursor")
	// Nothing new: nothing, and the same cursor.
	if again := listAudit(t, srv, q); len(again.Items) != 0 || again.NextCursor != end {
		t.Errorf("at the end: %d items, cursor %q (was %q)", len(again.Items), again.NextCursor, end)
	}
	// New calls: exactly them.
	second := []string{meter(t, srv, c, 3), meter(t, srv, c, 4)}
	flush(t, srv)
	q.Set("limit", "100")
	page := listAudit(t, srv, q)
	if got := requestIDs(page.Items); strings.Join(got, ",") != strings.Join(second, ",") {
		t.Errorf("after the end cursor: %v, want only the new %v", got, second)
	}
	q.Set("cursor", page.NextCursor)
	if again := listAudit(t, srv, q); len(again.Items) != 0 {
		t.Errorf("read again: %v", requestIDs(again.Items))
	}

	// follow=true holds back events younger than FollowSettle (by the
	// service clock) until they are settled.
	third := meter(t, srv, c, 5)
	flush(t, srv)
	q.Set("follow", "true")
	if held := listAudit(t, srv, q); len(held.Items) != 0 || held.NextCursor != q.Get("cursor") {
		t.Errorf("follow: a fresh event answered at once: %v", requestIDs(held.Items))
	}
	srv.Clock.Advance(3 * time.Second)
	if settled := listAudit(t, srv, q); len(settled.Items) != 1 || settled.Items[0].RequestID != third {
		t.Errorf("follow, once settled: %v, want [%s]", requestIDs(settled.Items), third)
	}
}
