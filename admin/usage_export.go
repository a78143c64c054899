package admin

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/mpmeter/mpmeter"
)

// Exports stream: each row is written as the store's iterator yields it,
// through a buffered writer the HTTP server sends on as it fills, so a
// whole result is never in memory (the feed holds one UTC day's lines).
// The first item is read before the status is sent, so a query that
// fails at once answers a JSON error; one that fails later aborts the
// response (the client sees a broken transfer, never a short file that
// looks whole).

// maxExports bounds exports running at once: each holds a read connection
// for as long as it streams.
const maxExports = 2

type usageExportIn struct {
	UsageFilterParams
	SummaryParams
	Kind   string `query:"kind" enum:"records,summaries,feed" default:"records" doc:"records: one row per record; summaries: as /usage/summaries (period, group_by); feed: AWS Marketplace's daily usage data feed layout, one row per UTC day, agreement, dimension and region."`
	Format string `query:"format" enum:"csv,jsonl" default:"csv" doc:"CSV with a header row, or JSON lines (one object per line)."`
	Order  string `query:"order" enum:"oldest,newest" default:"oldest" doc:"kind=records only."`
}

func (a *API) registerUsageExport(api huma.API) {
	slots := make(chan struct{}, maxExports)
	o := op("export-usage", http.MethodGet, "/usage/export", "Stream usage records, summaries or the daily usage feed as CSV or JSON lines", "usage")
	o.Responses = map[string]*huma.Response{"200": {Description: "The rows, streamed (docs/reports.md lists every column).", Content: map[string]*huma.MediaType{
		"text/csv": {}, "application/x-ndjson": {},
	}}}
	huma.Register(api, o, func(ctx context.Context, in *usageExportIn) (*huma.StreamResponse, error) {
		f, none, err := a.usageFilter(ctx, in.UsageFilterParams)
		if err != nil {
			return nil, err
		}
		var rows iter.Seq2[any, error]
		var header []string
		var cells func(any) []string
		switch in.Kind {
		case "summaries":
			q, err := summaryQuery(in.SummaryParams, f)
			if err != nil {
				return nil, err
			}
			pr, err := a.loadPricing(ctx)
			if err != nil {
				return nil, err
			}
			header, cells = summaryColumns, summaryRow
			rows = a.summaryRows(ctx, q, pr, none)
		case "feed":
			pr, err := a.loadPricing(ctx)
			if err != nil {
				return nil, err
			}
			header, cells = feedColumns, feedCells
			rows = a.feedRows(ctx, f, pr, none)
		default:
			f.Newest = in.Order == "newest"
			header, cells = recordColumns, recordRow
			rows = a.recordRows(ctx, f, none)
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil, a.storeErr(ctx, "export", ctx.Err())
		}
		next, stop := iter.Pull2(rows)
		first, err, ok := next()
		if err != nil {
			stop()
			<-slots
			return nil, a.usageErr(ctx, "usage export", err)
		}
		return &huma.StreamResponse{Body: func(hc huma.Context) {
			defer func() { <-slots }()
			defer stop()
			name := "usage-" + in.Kind
			if in.Format == "jsonl" {
				hc.SetHeader("Content-Type", "application/x-ndjson")
				name += ".jsonl"
			} else {
				hc.SetHeader("Content-Type", "text/csv; charset=utf-8")
				name += ".csv"
			}
			hc.SetHeader("Content-Disposition", `attachment; filename="`+name+`"`)
			hc.SetStatus(http.StatusOK)
			body := hc.BodyWriter()
			w := unwrapWriter(body) // under the audit recorder's capture
			out := newRowWriter(body, in.Format, header, cells)
			flush := func() error {
				if err := out.flush(); err != nil {
					return err
				}
				return http.NewResponseController(w).Flush()
			}
			// The header row and the first row go out at once.
			if err := out.header(); err != nil {
				return
			}
			if ok {
				if err := out.row(first); err != nil {
					return
				}
			}
			if flush() != nil {
				return
			}
			for ok {
				var row any
				row, err, ok = next()
				if err != nil {
					a.cfg.Logger.Error("admin: usage export failed midway; aborting the response", "kind", in.Kind, "err", err)
					panic(http.ErrAbortHandler)
				}
				if !ok {
					break
				}
				if out.row(row) != nil {
					return // the client went away
				}
			}
			flush()
		}}, nil
	})
}

// rowWriter writes items as CSV rows (cells) or JSON lines (the item
// marshalled: the shape the list routes answer).
type rowWriter struct {
	csv     *csv.Writer
	buf     *bufio.Writer
	enc     *json.Encoder
	columns []string
	cells   func(any) []string
}

func newRowWriter(w io.Writer, format string, columns []string, cells func(any) []string) *rowWriter {
	rw := &rowWriter{columns: columns, cells: cells}
	if format == "jsonl" {
		rw.buf = bufio.NewWriterSize(w, 32<<10)
		rw.enc = json.NewEncoder(rw.buf)
		rw.enc.SetEscapeHTML(false)
	} else {
		rw.csv = csv.NewWriter(w)
	}
	return rw
}

func (rw *rowWriter) header() error {
	if rw.csv != nil {
		return rw.csv.Write(rw.columns)
	}
	return nil
}

func (rw *rowWriter) row(item any) error {
	if rw.csv != nil {
		return rw.csv.Write(rw.cells(item))
	}
	return rw.enc.Encode(item)
}

func (rw *rowWriter) flush() error {
	if rw.csv != nil {
		rw.csv.Flush()
		return rw.csv.Error()
	}
	return rw.buf.Flush()
}

// --- records ---

var recordColumns = []string{"metering_record_id", "operation", "status", "product_code", "seller_account_id", "customer_account_id",
	"customer_identifier", "license_arn", "agreement_id", "workload_id", "dimension", "timestamp", "quantity", "allocations", "created_at"}

// timeText is how exports write times: RFC 3339 in UTC with the stored
// milliseconds, as JSON writes a time.Time.
func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func recordRow(item any) []string {
	r := item.(UsageRecord)
	allocs := ""
	if len(r.Allocations) > 0 {
		b, _ := json.Marshal(r.Allocations)
		allocs = string(b)
	}
	return []string{r.MeteringRecordID, r.Operation, r.Status, r.ProductCode, r.SellerAccountID, r.CustomerAccountID,
		r.CustomerIdentifier, r.LicenseArn, r.AgreementID, r.WorkloadID, r.Dimension, timeText(r.Timestamp),
		strconv.FormatInt(r.Quantity, 10), allocs, timeText(r.CreatedAt)}
}

func (a *API) recordRows(ctx context.Context, f mpmeter.UsageFilter, none bool) iter.Seq2[any, error] {
	return func(yield func(any, error) bool) {
		if none {
			return
		}
		ag := newAgreements(a.cfg.Store)
		for r, err := range a.cfg.Store.EachUsage(ctx, f) {
			if err != nil {
				yield(nil, err)
				return
			}
			sub, err := ag.of(ctx, r)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(recordOut(r, sub.AgreementID), nil) {
				return
			}
		}
	}
}

// --- summaries ---

var summaryColumns = []string{"period_start", "product_code", "customer_account_id", "dimension", "tag_key", "tag_value",
	"quantity", "records", "unit", "price_per_unit", "estimated_charge", "currency"}

func summaryRow(item any) []string {
	l := item.(UsageSummaryLine)
	tv := ""
	if l.TagValue != nil {
		tv = *l.TagValue
	}
	return []string{timeText(l.PeriodStart), l.ProductCode, l.CustomerAccountID, l.Dimension, l.TagKey, tv,
		strconv.FormatInt(l.Quantity, 10), strconv.FormatInt(l.Records, 10), l.Unit, l.PricePerUnit, l.EstimatedCharge, l.Currency}
}

// loadPricing reads every product before an export starts, so pricing
// never queries while the export's query holds a connection (products are
// the marketplace's few rows, not its usage).
func (a *API) loadPricing(ctx context.Context) (*pricing, error) {
	pr := a.newPricing()
	pg := mpmeter.Page{Limit: 500}
	for {
		ps, err := a.cfg.Store.Products(ctx, pg)
		if err != nil {
			return nil, a.storeErr(ctx, "products", err)
		}
		for i := range ps {
			pr.products[ps[i].Code] = &ps[i]
		}
		if len(ps) < pg.Limit {
			break
		}
		pg.After = ps[len(ps)-1].Code
	}
	pr.load = func(context.Context, string) (mpmeter.Product, error) { return mpmeter.Product{}, mpmeter.ErrNotFound }
	return pr, nil
}

func (a *API) summaryRows(ctx context.Context, q mpmeter.UsageSummaryQuery, pr *pricing, none bool) iter.Seq2[any, error] {
	return func(yield func(any, error) bool) {
		if none {
			return
		}
		for l, err := range a.cfg.Store.UsageSummary(ctx, q) {
			if err != nil {
				yield(nil, err)
				return
			}
			o, err := summaryOut(ctx, l, q, pr)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(o, nil) {
				return
			}
		}
	}
}

// --- the daily usage feed ---

// feedColumns are AWS Marketplace's daily usage data feed's, in its order
// (docs/reports.md says where each value comes from).
var feedColumns = []string{"valid_from", "insert_date", "update_date", "delete_date", "usage_feed_id", "usage_date", "product_id",
	"agreement_id", "end_user_account_id", "payer_account_id", "region", "dimension_key", "usage_unit", "usage_quantity",
	"pricing_currency", "estimated_revenue_in_pricing_currency", "offer_id", "usage_rate_per_unit_in_pricing_currency"}

// feedRow is a feed line's cells; as JSON it is an object of the
// columns' names, in order, every value a string but usage_quantity, a
// number.
type feedRow []string

func feedCells(item any) []string { return item.(feedRow) }

func (r feedRow) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, c := range feedColumns {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, c)
		b = append(b, ':')
		if c == "usage_quantity" {
			b = append(b, r[i]...)
		} else {
			v, _ := json.Marshal(r[i])
			b = append(b, v...)
		}
	}
	return append(b, '}'), nil
}

// DefaultFeedRegion is the feed's region for usage without a workload
// (SaaS records: the seller's call names no region the store keeps).
const DefaultFeedRegion = "us-east-1"

var productIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// FeedProductID is the feed's product_id of a product code: "prod-" and 13
// lowercase letters and digits from a SHA-256 of the code (the shape of
// AWS's product ids; mpmeter's products have none of their own).
func FeedProductID(code string) string {
	sum := sha256.Sum256([]byte("mpmeter/product\x00" + code))
	return "prod-" + productIDEncoding.EncodeToString(sum[:])[:13]
}

// FeedLineID is the feed's usage_feed_id: 32 hex digits of a SHA-256 of
// the line's key salted with the seller's account id (AWS's is "a
// per-seller salted hash"), so the same line has the same id in every
// export.
func FeedLineID(seller, usageDate, licenseArn, dimension, region string) string {
	sum := sha256.Sum256([]byte("mpmeter/usage-feed\x00" + seller + "\x00" + usageDate + "\x00" + licenseArn + "\x00" + dimension + "\x00" + region))
	return hex.EncodeToString(sum[:16])
}

type feedKey struct {
	product, customer, license, dimension, region string
}

type feedLine struct {
	feedKey
	seller, agreementID, offerID string
	quantity                     int64
}

// regions finds workloads' regions, remembering them (bounded).
type regions struct {
	st   UsageStore
	memo map[string]string
}

func (g *regions) of(ctx context.Context, workloadID string) (string, error) {
	if workloadID == "" {
		return DefaultFeedRegion, nil
	}
	if r, ok := g.memo[workloadID]; ok {
		return r, nil
	}
	keys, err := g.st.WorkloadAccessKeys(ctx, workloadID, time.Time{})
	if err != nil && !errors.Is(err, mpmeter.ErrNotFound) {
		return "", err
	}
	region := DefaultFeedRegion
	for _, k := range keys {
		if k.Workload != nil && k.Workload.Region != "" {
			region = k.Workload.Region
			break
		}
	}
	if len(g.memo) >= agreementMemo {
		clear(g.memo)
	}
	g.memo[workloadID] = region
	return region, nil
}

// feedRows sums the usage per UTC day, agreement (license), dimension and
// region: the store sums per day, dimension and party (product, customer,
// license, workload: Store.UsageSummary with ByParty, which reads the
// daily rollup where it can), and the lines of one party's workloads in
// one region are added up here as they stream in day order: one day's
// lines are in memory, written when the next day begins. Grouping by
// account (the admin summaries) would not do: an account may hold several
// agreements of a product (concurrent agreements) and run workloads in
// several regions.
func (a *API) feedRows(ctx context.Context, f mpmeter.UsageFilter, pr *pricing, none bool) iter.Seq2[any, error] {
	return func(yield func(any, error) bool) {
		if none {
			return
		}
		now := timeText(a.now().Truncate(time.Second))
		ag := newAgreements(a.cfg.Store)
		rg := &regions{st: a.cfg.Store, memo: map[string]string{}}
		day := map[feedKey]*feedLine{}
		var current time.Time
		emit := func() bool {
			lines := make([]*feedLine, 0, len(day))
			for _, l := range day {
				lines = append(lines, l)
			}
			slices.SortFunc(lines, func(x, y *feedLine) int {
				return cmp.Or(cmp.Compare(x.product, y.product), cmp.Compare(x.customer, y.customer),
					cmp.Compare(x.agreementID, y.agreementID), cmp.Compare(x.license, y.license),
					cmp.Compare(x.dimension, y.dimension), cmp.Compare(x.region, y.region))
			})
			date := current.Format(time.DateOnly)
			for _, l := range lines {
				det, _ := pr.details(ctx, l.product, l.dimension)
				revenue, _ := charge(det.PricePerUnit, l.quantity)
				row := feedRow{now, now, now, "", FeedLineID(l.seller, date, l.license, l.dimension, l.region), date,
					FeedProductID(l.product), l.agreementID, l.customer, l.customer, l.region, l.dimension, det.Unit,
					strconv.FormatInt(l.quantity, 10), "USD", revenue, l.offerID, det.PricePerUnit}
				if !yield(row, nil) {
					return false
				}
			}
			clear(day)
			return true
		}
		q := mpmeter.UsageSummaryQuery{Filter: f, Period: 24 * time.Hour, ByParty: true, ByDimension: true}
		for s, err := range a.cfg.Store.UsageSummary(ctx, q) {
			if err != nil {
				yield(nil, err)
				return
			}
			if !s.Start.Equal(current) && len(day) > 0 {
				if !emit() {
					return
				}
			}
			current = s.Start
			region, err := rg.of(ctx, s.WorkloadID)
			if err != nil {
				yield(nil, err)
				return
			}
			k := feedKey{s.ProductCode, s.CustomerAccountID, s.LicenseArn, s.Dimension, region}
			l, ok := day[k]
			if !ok {
				sub, err := ag.of(ctx, mpmeter.MeteringRecord{ProductCode: s.ProductCode, CustomerAccountID: s.CustomerAccountID, LicenseArn: s.LicenseArn})
				if err != nil {
					yield(nil, err)
					return
				}
				l = &feedLine{feedKey: k, seller: s.SellerAccountID, agreementID: sub.AgreementID, offerID: sub.OfferID}
				day[k] = l
			}
			l.quantity += s.Quantity
		}
		if len(day) > 0 {
			emit()
		}
	}
}
