package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// auditEvent is a fixture event at t0+sec seconds.
func auditEvent(id string, sec int, name, account, errCode string) mpmeter.AuditEvent {
	ev := mpmeter.AuditEvent{
		EventVersion: mpmeter.AuditEventVersion,
		UserIdentity: mpmeter.AuditIdentity{Type: mpmeter.AuditIdentityIAMUser, AccountID: account, AccessKeyID: "AKIA" + account},
		EventTime:    t0.Add(time.Duration(sec) * time.Second),
		EventSource:  mpmeter.AuditSourceMetering, EventName: name, AWSRegion: "us-east-1",
		SourceIPAddress: "127.0.0.1", UserAgent: "storetest",
		RequestParameters: json.RawMessage(`{"productCode":"` + product + `"}`),
		RequestID:         "req-" + id, EventID: id, EventType: mpmeter.AuditEventTypeAPICall,
		ManagementEvent: true, EventCategory: "Management", RecipientAccountID: account,
		AdditionalEventData: &mpmeter.AuditAdditionalData{HTTPStatus: 200, DurationMS: 1.5},
	}
	if errCode != "" {
		ev.ErrorCode, ev.ErrorMessage = errCode, "it failed"
		ev.AdditionalEventData.HTTPStatus = 400
	} else {
		ev.ResponseElements = json.RawMessage(`{"results":[]}`)
	}
	if account == buyer {
		ev.UserIdentity.Workload = &mpmeter.AuditWorkload{ID: "i-1", Platform: mpmeter.PlatformEC2, Region: "us-east-1"}
	}
	return ev
}

func eventIDs(evs []mpmeter.AuditEvent) []string {
	ids := []string{}
	for _, ev := range evs {
		ids = append(ids, ev.EventID)
	}
	return ids
}

// auditFixture stores six events: e1..e6, e3 and e4 at the same second
// (ordered by EventID), buyer's MeterUsage e5 failed.
func auditFixture(t *testing.T, s mpmeter.Store) []mpmeter.AuditEvent {
	t.Helper()
	evs := []mpmeter.AuditEvent{
		auditEvent("e1", 0, mpmeter.OpBatchMeterUsage, seller, ""),
		auditEvent("e2", 60, mpmeter.OpResolveCustomer, seller, "InvalidTokenException"),
		auditEvent("e4", 120, mpmeter.OpBatchMeterUsage, seller, ""),
		auditEvent("e3", 120, mpmeter.OpBatchMeterUsage, seller2, ""),
		auditEvent("e5", 180, mpmeter.OpMeterUsage, buyer, "DuplicateRequestException"),
		auditEvent("e6", 240, mpmeter.OpBatchMeterUsage, seller, ""),
	}
	must(t, s.PutAuditEvents(t.Context(), evs))
	return evs
}

func testAuditEvents(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	evs := auditFixture(t, s)
	page, err := s.AuditEvents(ctx, mpmeter.AuditFilter{})
	must(t, err)
	if got, want := eventIDs(page.Events), []string{"e1", "e2", "e3", "e4", "e5", "e6"}; !reflect.DeepEqual(got, want) || page.Next != "" {
		t.Fatalf("all, oldest first: %v next %q, want %v", got, page.Next, want)
	}
	// Every field reads back as put.
	byID := map[string]mpmeter.AuditEvent{}
	for _, ev := range page.Events {
		byID[ev.EventID] = ev
	}
	for _, want := range evs {
		got := byID[want.EventID]
		if !got.EventTime.Equal(want.EventTime) || got.EventTime.Location() != time.UTC {
			t.Errorf("%s: EventTime %v, want %v in UTC", want.EventID, got.EventTime, want.EventTime)
		}
		got.EventTime = want.EventTime
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s read back as\n%+v\nwant\n%+v", want.EventID, got, want)
		}
	}

	newest, err := s.AuditEvents(ctx, mpmeter.AuditFilter{Newest: true})
	must(t, err)
	if got, want := eventIDs(newest.Events), []string{"e6", "e5", "e4", "e3", "e2", "e1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("newest first: %v, want %v", got, want)
	}

	for _, tc := range []struct {
		name string
		f    mpmeter.AuditFilter
		want []string
	}{
		{"time range [From, To)", mpmeter.AuditFilter{From: t0.Add(60 * time.Second), To: t0.Add(180 * time.Second)}, []string{"e2", "e3", "e4"}},
		{"operation", mpmeter.AuditFilter{EventName: mpmeter.OpBatchMeterUsage}, []string{"e1", "e3", "e4", "e6"}},
		{"account", mpmeter.AuditFilter{AccountID: seller}, []string{"e1", "e2", "e4", "e6"}},
		{"account and time", mpmeter.AuditFilter{AccountID: seller, From: t0.Add(time.Second)}, []string{"e2", "e4", "e6"}},
		{"request id", mpmeter.AuditFilter{RequestID: "req-e5"}, []string{"e5"}},
		{"event id", mpmeter.AuditFilter{EventID: "e3"}, []string{"e3"}},
		{"error code", mpmeter.AuditFilter{ErrorCode: "InvalidTokenException"}, []string{"e2"}},
		{"any error", mpmeter.AuditFilter{ErrorCode: mpmeter.AuditAnyError}, []string{"e2", "e5"}},
		{"no error", mpmeter.AuditFilter{ErrorCode: mpmeter.AuditNoError, AccountID: seller}, []string{"e1", "e4", "e6"}},
		{"source", mpmeter.AuditFilter{EventSource: mpmeter.AuditSourceAdmin}, []string{}},
		{"nothing matches", mpmeter.AuditFilter{RequestID: "req-none"}, []string{}},
		{"newest of an account", mpmeter.AuditFilter{AccountID: seller, Newest: true, Limit: 2}, []string{"e6", "e4"}},
	} {
		page, err := s.AuditEvents(ctx, tc.f)
		must(t, err)
		if got := eventIDs(page.Events); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func testAuditPages(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	// More than one INSERT's worth in one call, and several at one
	// millisecond.
	var evs []mpmeter.AuditEvent
	for i := range 150 {
		evs = append(evs, auditEvent(fmt.Sprintf("p%03d", i), i/3, mpmeter.OpBatchMeterUsage, seller, ""))
	}
	must(t, s.PutAuditEvents(ctx, evs))
	// A retried batch stores nothing twice.
	must(t, s.PutAuditEvents(ctx, evs[:70]))
	for _, newest := range []bool{false, true} {
		var got []string
		f := mpmeter.AuditFilter{Newest: newest, Limit: 7}
		for pages := 0; ; pages++ {
			if pages > 30 {
				t.Fatal("too many pages")
			}
			page, err := s.AuditEvents(ctx, f)
			must(t, err)
			if len(page.Events) > 7 {
				t.Fatalf("page of %d, limit 7", len(page.Events))
			}
			got = append(got, eventIDs(page.Events)...)
			if page.Next == "" {
				break
			}
			f.Cursor = page.Next
		}
		if len(got) != 150 {
			t.Fatalf("newest=%v: %d events over the pages, want 150", newest, len(got))
		}
		for i := range got {
			want := fmt.Sprintf("p%03d", i)
			if newest {
				want = fmt.Sprintf("p%03d", 149-i)
			}
			if got[i] != want {
				t.Fatalf("newest=%v: event %d is %s, want %s", newest, i, got[i], want)
			}
		}
	}
	if _, err := s.AuditEvents(ctx, mpmeter.AuditFilter{Cursor: "not a cursor"}); !errors.Is(err, mpmeter.ErrInvalidCursor) {
		t.Fatalf("malformed cursor: %v, want ErrInvalidCursor", err)
	}
	page, err := s.AuditEvents(ctx, mpmeter.AuditFilter{Limit: 5000})
	must(t, err)
	if len(page.Events) != 150 {
		t.Fatalf("limit above the maximum: %d events", len(page.Events))
	}
	if err := s.PutAuditEvents(ctx, []mpmeter.AuditEvent{{EventTime: t0}}); err == nil {
		t.Fatal("an event without EventID was stored")
	}
	must(t, s.PutAuditEvents(ctx, nil))
}

func testAuditPurge(t *testing.T, s mpmeter.Store) {
	ctx := t.Context()
	var evs []mpmeter.AuditEvent
	for i := range 25 {
		evs = append(evs, auditEvent(fmt.Sprintf("u%02d", i), i*60, mpmeter.OpMeterUsage, buyer, ""))
	}
	must(t, s.PutAuditEvents(ctx, evs))
	before := t0.Add(20 * time.Minute) // u00..u19 are older
	n, err := s.PurgeAuditEvents(ctx, before, 8)
	must(t, err)
	if n != 8 {
		t.Fatalf("first purge deleted %d, want 8 (the limit)", n)
	}
	page, err := s.AuditEvents(ctx, mpmeter.AuditFilter{Limit: 1})
	must(t, err)
	if len(page.Events) != 1 || page.Events[0].EventID != "u08" {
		t.Fatalf("after the first purge the oldest is %v, want u08 (oldest purged first)", eventIDs(page.Events))
	}
	total := n
	for {
		n, err := s.PurgeAuditEvents(ctx, before, 8)
		must(t, err)
		total += n
		if n < 8 {
			break
		}
	}
	if total != 20 {
		t.Fatalf("purged %d in all, want 20", total)
	}
	page, err = s.AuditEvents(ctx, mpmeter.AuditFilter{})
	must(t, err)
	if got, want := eventIDs(page.Events), []string{"u20", "u21", "u22", "u23", "u24"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("left after purging: %v, want %v", got, want)
	}
	if _, err := s.PurgeAuditEvents(ctx, before, 0); err == nil {
		t.Fatal("a purge with limit 0 was accepted")
	}
}
