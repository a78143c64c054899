package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/internal/adminclient"
)

// --- the API call log (the audit log) ---

const callsPerPage = 50

func (c *Console) calls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := mpmeter.AuditFilter{
		EventName: strings.TrimSpace(q.Get("operation")), AccountID: strings.TrimSpace(q.Get("account")),
		RequestID: strings.TrimSpace(q.Get("request_id")), Newest: true, Limit: callsPerPage, Cursor: q.Get("cursor"),
	}
	switch q.Get("source") {
	case "admin":
		f.EventSource = mpmeter.AuditSourceAdmin
	case "all":
	default:
		f.EventSource = mpmeter.AuditSourceMetering
	}
	switch e := strings.TrimSpace(q.Get("error")); e {
	case "", "all":
	case "any":
		f.ErrorCode = mpmeter.AuditAnyError
	case "none":
		f.ErrorCode = mpmeter.AuditNoError
	default:
		f.ErrorCode = e
	}
	var pd pageData
	page, err := c.cfg.Store.AuditEvents(r.Context(), f)
	if errors.Is(err, mpmeter.ErrInvalidCursor) {
		pd.Error = "That page link is stale; showing the newest calls."
		f.Cursor = ""
		page, err = c.cfg.Store.AuditEvents(r.Context(), f)
	}
	if err != nil {
		c.fail(w, r, "reading the call log", err)
		return
	}
	var next template.URL // built from url.Values: safe as it is
	if page.Next != "" {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("cursor", page.Next)
		next = template.URL(Prefix + "calls?" + nq.Encode())
	}
	pd.Title = "API call log"
	pd.Data = map[string]any{"Events": page.Events, "Next": next, "Q": q, "First": q.Get("cursor") == ""}
	c.render(w, r, http.StatusOK, "calls", pd)
}

// call shows one event whole: what was sent and what was answered.
// /console/calls/{eventID}?t=<event time, ms> finds it with one page of
// the log from that millisecond (events are ordered by time, then id).
func (c *Console) call(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("event")
	ev, err := c.findEvent(r.Context(), id, r.URL.Query().Get("t"))
	if errors.Is(err, mpmeter.ErrNotFound) {
		c.render(w, r, http.StatusNotFound, "call", pageData{Title: "Call not found", Nav: "calls", Error: "No call with event id " + id + " (it may have been purged by retention)."})
		return
	}
	if err != nil {
		c.fail(w, r, "reading the call log", err)
		return
	}
	c.render(w, r, http.StatusOK, "call", pageData{Title: ev.EventName + " " + ev.RequestID, Nav: "calls", Data: ev})
}

func (c *Console) findEvent(ctx context.Context, id, msText string) (mpmeter.AuditEvent, error) {
	var ms int64
	if _, err := fmt.Sscan(msText, &ms); err != nil {
		return mpmeter.AuditEvent{}, mpmeter.ErrNotFound
	}
	at := time.UnixMilli(ms).UTC()
	f := mpmeter.AuditFilter{From: at, To: at.Add(time.Millisecond), Limit: mpmeter.MaxAuditLimit}
	for range 10 { // ten pages of one millisecond is more than any server logs
		page, err := c.cfg.Store.AuditEvents(ctx, f)
		if err != nil {
			return mpmeter.AuditEvent{}, err
		}
		for _, ev := range page.Events {
			if ev.EventID == id {
				return ev, nil
			}
		}
		if page.Next == "" {
			break
		}
		f.Cursor = page.Next
	}
	return mpmeter.AuditEvent{}, mpmeter.ErrNotFound
}

// --- notification deliveries ---

// Delivery is one notification POST as the deliveries page shows it.
type Delivery struct {
	ID             string    `json:"id"`
	EventType      string    `json:"event_type"`
	AgreementID    string    `json:"agreement_id"`
	Channel        string    `json:"channel"`
	Endpoint       string    `json:"endpoint"`
	Status         string    `json:"status"`
	Attempts       int       `json:"attempts"`
	CreatedAt      time.Time `json:"created_at"`
	LastStatusCode int       `json:"last_status_code"`
	LastError      string    `json:"last_error"`
	LastLatencyMS  float64   `json:"last_latency_ms"`
	ReplayOf       string    `json:"replay_of"`
}

// ErrNotificationsOff is what a DeliveryLog answers when the server sends
// no notifications.
var ErrNotificationsOff = errors.New("notifications are not configured on this server")

// DeliveryLog is the notification delivery log: the newest deliveries and
// a replay (the same request sent again as a new delivery).
type DeliveryLog interface {
	Deliveries(ctx context.Context, limit int) ([]Delivery, error)
	Replay(ctx context.Context, id string) (Delivery, error)
}

// AdminDeliveries reads the delivery log through the admin API's
// notification routes (GET /notifications/deliveries, POST
// /notifications/deliveries/{id}/replay). A server without them answers
// 404, which is ErrNotificationsOff.
type AdminDeliveries struct{ Client *adminclient.Client }

func (a AdminDeliveries) Deliveries(ctx context.Context, limit int) ([]Delivery, error) {
	var page struct {
		Items []Delivery `json:"items"`
	}
	err := a.Client.Do(ctx, http.MethodGet, "/notifications/deliveries", url.Values{"limit": {fmt.Sprint(limit)}}, nil, &page)
	if adminclient.StatusOf(err) == http.StatusNotFound {
		return nil, ErrNotificationsOff
	}
	return page.Items, err
}

func (a AdminDeliveries) Replay(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	err := a.Client.Do(ctx, http.MethodPost, "/notifications/deliveries/"+url.PathEscape(id)+"/replay", nil, nil, &d)
	return d, err
}

func (c *Console) deliveries(w http.ResponseWriter, r *http.Request) {
	c.showDeliveries(w, r, pageData{})
}

func (c *Console) showDeliveries(w http.ResponseWriter, r *http.Request, pd pageData) {
	ds, err := c.cfg.Deliveries.Deliveries(r.Context(), 200)
	off := errors.Is(err, ErrNotificationsOff)
	if err != nil && !off {
		pd.Error = "Reading the delivery log failed: " + actionError(err)
	}
	pd.Title = "Notifications"
	pd.Data = map[string]any{"Deliveries": ds, "Off": off}
	c.render(w, r, http.StatusOK, "deliveries", pd)
}

func (c *Console) deliveryAction(w http.ResponseWriter, r *http.Request) {
	var pd pageData
	id := r.PostForm.Get("id")
	d, err := c.cfg.Deliveries.Replay(r.Context(), id)
	if err != nil {
		pd.Error = "Replaying " + id + " failed: " + actionError(err)
	} else {
		pd.Flash = "Delivery " + id + " replayed as " + d.ID + "."
	}
	c.showDeliveries(w, r, pd)
}
