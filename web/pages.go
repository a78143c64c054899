package web

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/internal/adminclient"
)

// pageData is what every template gets.
type pageData struct {
	Title string
	Nav   string // the nav entry that is current
	CSRF  string
	// Flash and Error report what the last action did.
	Flash, Error string
	Data         any
}

var navItems = []struct{ Key, Label, Path string }{
	{"overview", "Overview", ""},
	{"usage", "Usage", "usage"},
	{"subscriptions", "Customers & subscriptions", "subscriptions"},
	{"calls", "API call log", "calls"},
	{"deliveries", "Notifications", "deliveries"},
	{"keys", "Signing keys", "keys"},
	{"clock", "Clock", "clock"},
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"nav":    func() any { return navItems },
		"prefix": func() string { return Prefix },
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "–"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"json": func(v any) (template.JS, error) {
			b, err := json.Marshal(v)
			return template.JS(b), err
		},
		"pretty": func(raw json.RawMessage) string {
			if len(raw) == 0 || string(raw) == "null" {
				return "null"
			}
			var buf bytes.Buffer
			if json.Indent(&buf, raw, "", "  ") != nil {
				return string(raw)
			}
			return buf.String()
		},
		"list": func(v ...string) []string { return v },
	}
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"login", "overview", "usage", "subscriptions", "calls", "call", "deliveries", "keys", "clock"} {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a page; a template that fails is a 500 with nothing of the
// page sent (rendered into a buffer first).
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	c.renderTemplate(w, r, status, name, "layout", d)
}

func (c *Console) renderTemplate(w http.ResponseWriter, r *http.Request, status int, page, tmpl string, d pageData) {
	d.CSRF = csrfFrom(r.Context())
	if d.Nav == "" {
		d.Nav = page
	}
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, tmpl, d); err != nil {
		c.cfg.Logger.Error("console: rendering", "page", page, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	c.cfg.Logger.Error("console: "+what, "err", err)
	http.Error(w, what+": internal error; retry", http.StatusInternalServerError)
}

// actionError is what an admin call's failure says on the page.
func actionError(err error) string {
	var e *adminclient.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error; retry (" + err.Error() + ")"
}

// --- overview ---

type overviewData struct {
	Now                time.Time
	CallsLastMinute    int
	Calls15, Errors15  int
	Truncated          bool
	PerMinute          []minuteCount
	ByOperation        []opCount
	RecordsPerProduct  []mpmeter.UsageSummaryLine
	RecordsToday       int64
	RecentErrors       []mpmeter.AuditEvent
	ActiveSubscription int
}

type minuteCount struct {
	Minute       time.Time
	Calls, Errs  int
	Width, Error int // bar widths, percent
}

type opCount struct {
	Operation   string
	Calls, Errs int
}

// maxOverviewEvents bounds the events the overview counts (15 minutes of a
// busy server would be millions); past it the counts say "at least".
const maxOverviewEvents = 20_000

func (c *Console) overviewData(ctx context.Context) (overviewData, error) {
	now := c.cfg.Clock.Now().UTC()
	d := overviewData{Now: now}
	from := now.Add(-15 * time.Minute).Truncate(time.Minute)
	minutes := map[time.Time]*minuteCount{}
	for m := from; !m.After(now); m = m.Add(time.Minute) {
		mc := &minuteCount{Minute: m}
		minutes[m] = mc
		d.PerMinute = append(d.PerMinute, *mc)
	}
	ops := map[string]*opCount{}
	f := mpmeter.AuditFilter{From: from, EventSource: mpmeter.AuditSourceMetering, Limit: mpmeter.MaxAuditLimit}
	seen := 0
	for {
		page, err := c.cfg.Store.AuditEvents(ctx, f)
		if err != nil {
			return d, err
		}
		for _, ev := range page.Events {
			seen++
			m := ev.EventTime.UTC().Truncate(time.Minute)
			mc := minutes[m]
			if mc == nil {
				continue // after now by the clock (moved back)
			}
			o := ops[ev.EventName]
			if o == nil {
				o = &opCount{Operation: ev.EventName}
				ops[ev.EventName] = o
			}
			mc.Calls++
			o.Calls++
			d.Calls15++
			if ev.ErrorCode != "" {
				mc.Errs++
				o.Errs++
				d.Errors15++
				d.RecentErrors = append(d.RecentErrors, ev)
				if len(d.RecentErrors) > 5 {
					d.RecentErrors = d.RecentErrors[1:] // the latest five
				}
			}
			if now.Sub(ev.EventTime) < time.Minute {
				d.CallsLastMinute++
			}
		}
		if page.Next == "" {
			break
		}
		if seen >= maxOverviewEvents {
			d.Truncated = true
			break
		}
		f.Cursor = page.Next
	}
	peak := 1
	for _, mc := range minutes {
		peak = max(peak, mc.Calls)
	}
	for i := range d.PerMinute {
		mc := minutes[d.PerMinute[i].Minute]
		mc.Width, mc.Error = mc.Calls*100/peak, mc.Errs*100/peak
		d.PerMinute[i] = *mc
	}
	slices.Reverse(d.PerMinute) // newest first
	for _, o := range ops {
		d.ByOperation = append(d.ByOperation, *o)
	}
	slices.SortFunc(d.ByOperation, func(a, b opCount) int { return cmp.Compare(a.Operation, b.Operation) })
	slices.Reverse(d.RecentErrors)

	day := now.Truncate(24 * time.Hour)
	for line, err := range c.cfg.Store.UsageSummary(ctx, mpmeter.UsageSummaryQuery{
		Filter: mpmeter.UsageFilter{From: day, To: day.Add(24 * time.Hour)}, Period: 24 * time.Hour, ByProduct: true,
	}) {
		if err != nil {
			return d, err
		}
		d.RecordsPerProduct = append(d.RecordsPerProduct, line)
		d.RecordsToday += line.Records
	}
	subs, err := c.cfg.Store.Subscriptions(ctx, mpmeter.SubscriptionFilter{Status: mpmeter.SubscriptionActive}, mpmeter.Page{Limit: 10_001})
	if err != nil {
		return d, err
	}
	d.ActiveSubscription = len(subs)
	return d, nil
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	d, err := c.overviewData(r.Context())
	if err != nil {
		c.fail(w, r, "reading the overview", err)
		return
	}
	c.render(w, r, http.StatusOK, "overview", pageData{Title: "Overview", Data: d})
}

// overviewFragment is the part of the overview htmx polls.
func (c *Console) overviewFragment(w http.ResponseWriter, r *http.Request) {
	d, err := c.overviewData(r.Context())
	if err != nil {
		c.fail(w, r, "reading the overview", err)
		return
	}
	c.renderTemplate(w, r, http.StatusOK, "overview", "live", pageData{Data: d})
}

// --- customers and subscriptions ---

type subscriptionsData struct {
	Accounts      []mpmeter.Account
	Products      []mpmeter.Product
	Subscriptions []mpmeter.Subscription
	More          bool
	Filter        mpmeter.SubscriptionFilter
	// Landing holds the codes of the products with a fulfillment URL: only
	// their active subscriptions have a landing page to open (the admin
	// API refuses a fulfillment link for the others).
	Landing map[string]bool
	// Issued is a registration token just issued (shown this once).
	Issued *issuedToken
	// Created is the subscription just created, with what the admin API
	// said about its fulfillment POST.
	Created *createdSubscription
}

type issuedToken struct {
	AgreementID, Token string
	ExpiresAt          time.Time
}

type createdSubscription struct {
	AgreementID string
	Status      string
	Fulfillment map[string]any
}

const listLimit = 500

func (c *Console) subscriptionsPage(ctx context.Context, q url.Values) (subscriptionsData, error) {
	var d subscriptionsData
	var err error
	if d.Accounts, err = c.cfg.Store.Accounts(ctx, mpmeter.Page{Limit: listLimit}); err != nil {
		return d, err
	}
	if d.Products, err = c.cfg.Store.Products(ctx, mpmeter.Page{Limit: listLimit}); err != nil {
		return d, err
	}
	d.Filter = mpmeter.SubscriptionFilter{AccountID: q.Get("account"), ProductCode: q.Get("product"), Status: q.Get("status")}
	switch d.Filter.Status {
	case "", mpmeter.SubscriptionActive, mpmeter.SubscriptionCancelled, mpmeter.SubscriptionExpired:
	default:
		d.Filter.Status = ""
	}
	if d.Subscriptions, err = c.cfg.Store.Subscriptions(ctx, d.Filter, mpmeter.Page{Limit: listLimit + 1}); err != nil {
		return d, err
	}
	if len(d.Subscriptions) > listLimit {
		d.Subscriptions, d.More = d.Subscriptions[:listLimit], true
	}
	d.Landing = map[string]bool{}
	known := map[string]bool{}
	for _, p := range d.Products {
		known[p.Code] = true
		d.Landing[p.Code] = p.FulfillmentURL != ""
	}
	for _, s := range d.Subscriptions {
		if known[s.ProductCode] {
			continue
		}
		// A product beyond the listed ones (a marketplace of more than
		// listLimit products).
		known[s.ProductCode] = true
		p, err := c.cfg.Store.Product(ctx, s.ProductCode)
		if err != nil {
			return d, err
		}
		d.Landing[p.Code] = p.FulfillmentURL != ""
	}
	return d, nil
}

func (c *Console) subscriptions(w http.ResponseWriter, r *http.Request) {
	c.showSubscriptions(w, r, r.URL.Query(), pageData{}, nil, nil)
}

func (c *Console) showSubscriptions(w http.ResponseWriter, r *http.Request, q url.Values, pd pageData, issued *issuedToken, created *createdSubscription) {
	d, err := c.subscriptionsPage(r.Context(), q)
	if err != nil {
		c.fail(w, r, "reading subscriptions", err)
		return
	}
	d.Issued, d.Created = issued, created
	pd.Title, pd.Data = "Customers & subscriptions", d
	status := http.StatusOK
	if pd.Error != "" {
		status = http.StatusUnprocessableEntity
	}
	c.render(w, r, status, "subscriptions", pd)
}

// subscriptionAction runs one form of the subscriptions page through the
// admin API.
func (c *Console) subscriptionAction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := r.PostForm
	var pd pageData
	var issued *issuedToken
	var created *createdSubscription
	switch action := f.Get("action"); action {
	case "create-account":
		a, err := c.admin.CreateAccount(ctx, strings.TrimSpace(f.Get("account_id")), strings.TrimSpace(f.Get("name")))
		if err != nil {
			pd.Error = "Creating the account failed: " + actionError(err)
		} else {
			pd.Flash = "Account " + a.ID + " created."
		}
	case "subscribe":
		// The admin API's body, with the buyer simulator's options. The
		// notification options (fulfillment, simulate) exist once the
		// server sends notifications; without them the API refuses
		// simulate, and the page says so.
		body := map[string]any{"account_id": f.Get("account_id"), "product_code": f.Get("product_code")}
		if v := strings.TrimSpace(f.Get("offer_id")); v != "" {
			body["offer_id"] = v
		}
		if f.Get("free_trial") != "" {
			body["free_trial"] = true
		}
		if f.Get("payment_failure") != "" {
			body["simulate"] = "payment-failure"
		}
		if f.Get("no_fulfillment") != "" {
			body["fulfillment"] = false
		}
		var out map[string]any
		if err := c.admin.Do(ctx, http.MethodPost, "/subscriptions", nil, body, &out); err != nil {
			pd.Error = "Subscribing failed: " + actionError(err)
			break
		}
		created = &createdSubscription{AgreementID: fmt.Sprint(out["agreement_id"]), Status: fmt.Sprint(out["status"])}
		if ful, ok := out["fulfillment"].(map[string]any); ok {
			delete(ful, "registration_token") // shown by the landing page, not here
			created.Fulfillment = ful
		}
		pd.Flash = fmt.Sprintf("Buyer %v subscribed to %v: agreement %s, %s.", out["account_id"], out["product_code"], created.AgreementID, created.Status)
	case "cancel", "expire", "reactivate":
		id := f.Get("agreement_id")
		s, err := c.admin.ChangeSubscription(ctx, id, action, 0)
		if err != nil {
			pd.Error = fmt.Sprintf("Could not %s %s: %s", action, id, actionError(err))
		} else {
			pd.Flash = fmt.Sprintf("Agreement %s is %s.", s.AgreementID, s.Status)
		}
	case "open-landing-page":
		// The real browser path: a new registration token in a page that
		// POSTs the form to the product's fulfillment URL, as AWS's page
		// does after a purchase; the browser is sent there.
		id := f.Get("agreement_id")
		var out struct {
			URL string `json:"url"`
		}
		if err := c.admin.Do(ctx, http.MethodPost, "/subscriptions/"+url.PathEscape(id)+"/fulfillment-link", nil, map[string]any{}, &out); err != nil {
			pd.Error = "Opening the landing page of " + id + " failed: " + actionError(err)
			break
		}
		http.Redirect(w, r, out.URL, http.StatusSeeOther)
		return
	case "issue-token":
		id := f.Get("agreement_id")
		t, err := c.admin.IssueToken(ctx, adminclient.NewToken{AgreementID: id})
		if err != nil {
			pd.Error = "Issuing a registration token failed: " + actionError(err)
		} else {
			issued = &issuedToken{AgreementID: id, Token: t.Token, ExpiresAt: t.ExpiresAt}
			pd.Flash = "Registration token issued for " + id + " (shown once, below)."
		}
	default:
		pd.Error = "Unknown action."
	}
	c.showSubscriptions(w, r, url.Values{}, pd, issued, created)
}

// --- signing keys ---

func (c *Console) keys(w http.ResponseWriter, r *http.Request) { c.showKeys(w, r, pageData{}) }

func (c *Console) showKeys(w http.ResponseWriter, r *http.Request, pd pageData) {
	ks, err := c.cfg.Store.SigningKeys(r.Context())
	if err != nil {
		c.fail(w, r, "reading signing keys", err)
		return
	}
	slices.Reverse(ks) // newest, the current one, first
	type keyView struct {
		Version   int
		CreatedAt time.Time
		Current   bool
		PublicPEM string
	}
	var views []keyView
	for i, k := range ks {
		views = append(views, keyView{k.Version, k.CreatedAt, i == 0, string(k.PublicKeyPEM)})
	}
	pd.Title, pd.Data = "Signing keys", views
	c.render(w, r, http.StatusOK, "keys", pd)
}

func (c *Console) keyAction(w http.ResponseWriter, r *http.Request) {
	var pd pageData
	k, err := c.admin.RotateSigningKey(r.Context())
	if err != nil {
		pd.Error = "Rotating failed: " + actionError(err)
	} else {
		pd.Flash = fmt.Sprintf("Signing key version %d created; new tokens are signed with it, older versions keep verifying.", k.Version)
	}
	c.showKeys(w, r, pd)
}

// --- the clock ---

func (c *Console) clock(w http.ResponseWriter, r *http.Request) { c.showClock(w, r, pageData{}) }

func (c *Console) showClock(w http.ResponseWriter, r *http.Request, pd pageData) {
	now := c.cfg.Clock.Now().UTC()
	var off time.Duration
	o, settable := c.cfg.Clock.(interface{ Offset() time.Duration })
	if settable {
		off = o.Offset()
	}
	pd.Title = "Clock"
	pd.Data = map[string]any{"Now": now, "Offset": off.String(), "Virtual": off != 0, "Settable": settable,
		"Wall": c.cfg.WallClock().UTC(), "Input": now.Format("2006-01-02T15:04:05")}
	c.render(w, r, http.StatusOK, "clock", pd)
}

func (c *Console) clockAction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var pd pageData
	var err error
	switch r.PostForm.Get("action") {
	case "set":
		var t time.Time
		v := r.PostForm.Get("now")
		if t, err = time.Parse("2006-01-02T15:04:05", v); err != nil {
			t, err = time.Parse("2006-01-02T15:04", v)
		}
		if err != nil {
			pd.Error = fmt.Sprintf("%q is not a date and time (YYYY-MM-DDTHH:MM:SS, UTC).", v)
			break
		}
		_, err = c.admin.SetClock(ctx, t.UTC())
	case "advance":
		_, err = c.admin.AdvanceClock(ctx, strings.TrimSpace(r.PostForm.Get("by")))
	case "reset":
		_, err = c.admin.ResetClock(ctx)
	default:
		pd.Error = "Unknown action."
	}
	if err != nil {
		pd.Error = "The clock did not move: " + actionError(err)
	} else if pd.Error == "" {
		pd.Flash = "The service clock now reads " + c.cfg.Clock.Now().UTC().Format(time.RFC3339) + "; every node follows within a second."
	}
	c.showClock(w, r, pd)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
