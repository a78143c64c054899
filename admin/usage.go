package admin

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"iter"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/mpmeter/mpmeter"
)

// Usage reports: the metering records as stored, summaries the database
// sums, and streamed exports of both (usage_export.go). The JSON shapes
// here are a public contract (docs/reports.md; the CLI's `mpmeter usage`
// reads them): members are only ever added.

// UsageStore is what the usage routes read.
type UsageStore interface {
	UsageRecord(ctx context.Context, id string) (mpmeter.MeteringRecord, error)
	UsagePage(ctx context.Context, f mpmeter.UsageFilter, cursor string, limit int) (mpmeter.UsagePage, error)
	EachUsage(ctx context.Context, f mpmeter.UsageFilter) iter.Seq2[mpmeter.MeteringRecord, error]
	UsageSummary(ctx context.Context, q mpmeter.UsageSummaryQuery) iter.Seq2[mpmeter.UsageSummaryLine, error]
	// Subscription and SubscriptionsOf join a record to its agreement.
	Subscription(ctx context.Context, licenseArn string) (mpmeter.Subscription, error)
	SubscriptionsOf(ctx context.Context, accountID, productCode string) ([]mpmeter.Subscription, error)
	// WorkloadAccessKeys gives a workload's region (the feed's region).
	WorkloadAccessKeys(ctx context.Context, workloadID string, validAt time.Time) ([]mpmeter.AccessKey, error)
}

// UsageRecord is one stored metering record.
type UsageRecord struct {
	MeteringRecordID   string            `json:"metering_record_id" doc:"What the call answered (MeteringRecordId)."`
	Operation          string            `json:"operation" enum:"BatchMeterUsage,MeterUsage,RegisterUsage" doc:"The operation that stored it."`
	Status             string            `json:"status" enum:"Success" doc:"Only accepted records are stored, so always Success."`
	ProductCode        string            `json:"product_code"`
	SellerAccountID    string            `json:"seller_account_id"`
	CustomerAccountID  string            `json:"customer_account_id" doc:"The buyer's 12-digit AWS account id."`
	CustomerIdentifier string            `json:"customer_identifier,omitempty" doc:"SaaS records of products without concurrent agreements."`
	LicenseArn         string            `json:"license_arn,omitempty" doc:"The agreement's license."`
	AgreementID        string            `json:"agreement_id,omitempty" doc:"agmt-..., the subscription's as /subscriptions shows it (joined by license ARN, or for workload records by account and product)."`
	WorkloadID         string            `json:"workload_id,omitempty" doc:"MeterUsage and RegisterUsage records: the calling workload."`
	Dimension          string            `json:"dimension"`
	Timestamp          time.Time         `json:"timestamp" doc:"The usage's Timestamp (UTC, milliseconds)."`
	Quantity           int64             `json:"quantity"`
	Allocations        []UsageAllocation `json:"allocations,omitempty" doc:"UsageAllocations as metered; absent when none."`
	CreatedAt          time.Time         `json:"created_at" doc:"When the service stored it (service clock)."`
}

// UsageAllocation is one tagged part of a record's quantity.
type UsageAllocation struct {
	Quantity int64      `json:"quantity"`
	Tags     []UsageTag `json:"tags"`
}

// UsageTag is an allocation's tag.
type UsageTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// UsageSummaryLine is one line of a usage summary. Members of what the
// summary is not grouped by are absent; the charge members are present
// only when the line's product and dimension are known and the dimension
// has a price.
type UsageSummaryLine struct {
	PeriodStart       time.Time `json:"period_start" doc:"Start of the hour or UTC day."`
	ProductCode       string    `json:"product_code,omitempty"`
	CustomerAccountID string    `json:"customer_account_id,omitempty"`
	Dimension         string    `json:"dimension,omitempty"`
	TagKey            string    `json:"tag_key,omitempty" doc:"With group_by tag:KEY: KEY."`
	TagValue          *string   `json:"tag_value,omitempty" doc:"With group_by tag:KEY: the value, \"\" for quantities without the tag."`
	Quantity          int64     `json:"quantity" doc:"Summed."`
	Records           int64     `json:"records" doc:"Records summed (with a tag grouping: allocations, a record without any counting as one)."`
	Unit              string    `json:"unit,omitempty" doc:"The dimension's unit, when it has one."`
	PricePerUnit      string    `json:"price_per_unit,omitempty" doc:"The dimension's price (USD, decimal string), when it has one."`
	EstimatedCharge   string    `json:"estimated_charge,omitempty" doc:"quantity × price_per_unit, exact, as a decimal string."`
	Currency          string    `json:"currency,omitempty" enum:"USD" doc:"With estimated_charge: USD."`
}

// UsageFilterParams are the filters every usage route takes.
type UsageFilterParams struct {
	Product     string    `query:"product" doc:"ProductCode."`
	Customer    string    `query:"customer" doc:"A 12-digit customer AWS account id, or else a CustomerIdentifier."`
	LicenseArn  string    `query:"license_arn" doc:"The agreement's license ARN."`
	AgreementID string    `query:"agreement_id" doc:"agmt-...: the agreement's records (by its license)."`
	Dimension   string    `query:"dimension"`
	From        time.Time `query:"from" doc:"RFC 3339: records with a Timestamp at or after it."`
	Until       time.Time `query:"until" doc:"RFC 3339: records with a Timestamp before it."`
	Status      string    `query:"status" enum:"Success,DuplicateRecord,CustomerNotSubscribed," doc:"Only accepted records are stored: Success matches all, the others none."`
	Operation   string    `query:"operation" enum:"BatchMeterUsage,MeterUsage,RegisterUsage," doc:"The operation that stored the record."`
	Tag         string    `query:"tag" doc:"An allocation tag: KEY (any value) or KEY=VALUE."`
}

var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// filter turns the parameters into a store filter; none reports a filter
// that matches nothing (an agreement that does not exist).
func (a *API) usageFilter(ctx context.Context, p UsageFilterParams) (f mpmeter.UsageFilter, none bool, err error) {
	f = mpmeter.UsageFilter{ProductCode: p.Product, LicenseArn: p.LicenseArn, Dimension: p.Dimension,
		From: p.From, To: p.Until, Status: p.Status, Kind: p.Operation}
	if accountIDPattern.MatchString(p.Customer) {
		f.CustomerAccountID = p.Customer
	} else {
		f.CustomerIdentifier = p.Customer
	}
	if p.Tag != "" {
		k, v, _ := strings.Cut(p.Tag, "=")
		if k == "" {
			return f, false, invalid("tag %q: want KEY or KEY=VALUE", p.Tag)
		}
		f.TagKey, f.TagValue = k, v
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, false, invalid("from %s is not before until %s", f.From.Format(time.RFC3339), f.To.Format(time.RFC3339))
	}
	if p.AgreementID != "" {
		sub, err := a.cfg.Store.SubscriptionByAgreement(ctx, p.AgreementID)
		if errors.Is(err, mpmeter.ErrNotFound) {
			return f, true, nil
		} else if err != nil {
			return f, false, a.storeErr(ctx, "agreement "+p.AgreementID, err)
		}
		if f.LicenseArn != "" && f.LicenseArn != sub.LicenseArn {
			return f, true, nil
		}
		f.LicenseArn = sub.LicenseArn
	}
	return f, false, nil
}

// usageErr is storeErr for usage reads: a bad cursor is the client's.
func (a *API) usageErr(ctx context.Context, what string, err error) error {
	if errors.Is(err, mpmeter.ErrInvalidCursor) {
		return invalid("cursor is not a cursor this API gave for this query")
	}
	return a.storeErr(ctx, what, err)
}

// agreements joins records to their subscriptions, remembering what it
// looked up (bounded: forgotten past agreementMemo entries). A record with
// a license ARN (every SaaS record) joins by it; one without (MeterUsage,
// RegisterUsage: AMI and container products, which have no concurrent
// agreements) by its account's one subscription to the product.
type agreements struct {
	st   UsageStore
	memo map[string]mpmeter.Subscription
}

const agreementMemo = 65536

func newAgreements(st UsageStore) *agreements {
	return &agreements{st: st, memo: map[string]mpmeter.Subscription{}}
}

// of returns the record's subscription; a zero one when there is none (a
// report must not fail for a missing join).
func (g *agreements) of(ctx context.Context, r mpmeter.MeteringRecord) (mpmeter.Subscription, error) {
	key := r.LicenseArn
	if key == "" {
		key = "\x00" + r.CustomerAccountID + "\x00" + r.ProductCode
	}
	if s, ok := g.memo[key]; ok {
		return s, nil
	}
	var s mpmeter.Subscription
	var err error
	if r.LicenseArn != "" {
		s, err = g.st.Subscription(ctx, r.LicenseArn)
	} else {
		var subs []mpmeter.Subscription
		subs, err = g.st.SubscriptionsOf(ctx, r.CustomerAccountID, r.ProductCode)
		if len(subs) == 1 {
			s = subs[0]
		}
	}
	if errors.Is(err, mpmeter.ErrNotFound) {
		s, err = mpmeter.Subscription{}, nil
	}
	if err != nil {
		return s, err
	}
	if len(g.memo) >= agreementMemo {
		clear(g.memo)
	}
	g.memo[key] = s
	return s, nil
}

func recordOut(r mpmeter.MeteringRecord, agreementID string) UsageRecord {
	out := UsageRecord{MeteringRecordID: r.MeteringRecordID, Operation: r.Kind, Status: mpmeter.UsageRecordResultStatusSuccess,
		ProductCode: r.ProductCode, SellerAccountID: r.SellerAccountID, CustomerAccountID: r.CustomerAccountID,
		CustomerIdentifier: r.CustomerIdentifier, LicenseArn: r.LicenseArn, AgreementID: agreementID, WorkloadID: r.WorkloadID,
		Dimension: r.Dimension, Timestamp: r.Timestamp.UTC(), Quantity: r.Quantity, CreatedAt: r.CreatedAt.UTC()}
	for _, al := range r.Allocations {
		oa := UsageAllocation{Quantity: al.Quantity, Tags: []UsageTag{}}
		for _, t := range al.Tags {
			oa.Tags = append(oa.Tags, UsageTag{Key: t.Key, Value: t.Value})
		}
		out.Allocations = append(out.Allocations, oa)
	}
	return out
}

// --- summaries ---

// SummaryParams are a summary's own parameters.
type SummaryParams struct {
	Period  string `query:"period" enum:"hour,day" default:"day" doc:"Sum per hour or per UTC day."`
	GroupBy string `query:"group_by" doc:"Comma-separated, any of product, customer, dimension, tag:KEY (one tag key). Empty: one line per period." example:"product,customer,dimension"`
}

// summaryQuery turns the parameters into a store query.
func summaryQuery(p SummaryParams, f mpmeter.UsageFilter) (mpmeter.UsageSummaryQuery, error) {
	q := mpmeter.UsageSummaryQuery{Filter: f, Period: 24 * time.Hour}
	if p.Period == "hour" {
		q.Period = time.Hour
	}
	for g := range strings.SplitSeq(p.GroupBy, ",") {
		switch g = strings.TrimSpace(g); {
		case g == "":
		case g == "product":
			q.ByProduct = true
		case g == "customer":
			q.ByCustomer = true
		case g == "dimension":
			q.ByDimension = true
		case strings.HasPrefix(g, "tag:") && len(g) > len("tag:"):
			if q.ByTag != "" && q.ByTag != g[4:] {
				return q, invalid("group_by: one tag key at most (%q and %q)", q.ByTag, g[4:])
			}
			q.ByTag = g[4:]
		default:
			return q, invalid("group_by %q: want any of product, customer, dimension, tag:KEY", g)
		}
	}
	return q, nil
}

// pricing finds dimensions' prices, remembering the products it read.
type pricing struct {
	products map[string]*mpmeter.Product // nil: no such product
	load     func(ctx context.Context, code string) (mpmeter.Product, error)
}

func (a *API) newPricing() *pricing {
	return &pricing{products: map[string]*mpmeter.Product{}, load: a.cfg.Store.Product}
}

func (pr *pricing) details(ctx context.Context, product, dimension string) (mpmeter.DimensionDetails, error) {
	p, ok := pr.products[product]
	if !ok {
		got, err := pr.load(ctx, product)
		switch {
		case errors.Is(err, mpmeter.ErrNotFound):
		case err != nil:
			return mpmeter.DimensionDetails{}, err
		default:
			p = &got
		}
		pr.products[product] = p
	}
	if p == nil {
		return mpmeter.DimensionDetails{}, nil
	}
	return p.DimensionDetails[dimension], nil
}

// summaryOut converts a line, with its unit, price and charge when the
// line names a product (grouped by it, or the filter's one product) and a
// dimension.
func summaryOut(ctx context.Context, l mpmeter.UsageSummaryLine, q mpmeter.UsageSummaryQuery, pr *pricing) (UsageSummaryLine, error) {
	out := UsageSummaryLine{PeriodStart: l.Start.UTC(), ProductCode: l.ProductCode, CustomerAccountID: l.CustomerAccountID,
		Dimension: l.Dimension, Quantity: l.Quantity, Records: l.Records}
	if q.ByTag != "" {
		v := l.TagValue
		out.TagKey, out.TagValue = q.ByTag, &v
	}
	product := l.ProductCode
	if !q.ByProduct {
		product = q.Filter.ProductCode
	}
	if !q.ByDimension || product == "" || pr == nil {
		return out, nil
	}
	det, err := pr.details(ctx, product, l.Dimension)
	if err != nil {
		return out, err
	}
	out.Unit = det.Unit
	if c, ok := charge(det.PricePerUnit, l.Quantity); ok {
		out.PricePerUnit, out.EstimatedCharge, out.Currency = det.PricePerUnit, c, "USD"
	}
	return out, nil
}

// charge is quantity × price, exactly (big.Rat: prices are decimal strings
// of at most 12 fraction digits, so the product is a finite decimal),
// without trailing zeros: "0.05" × 3 = "0.15".
func charge(price string, quantity int64) (string, bool) {
	if price == "" {
		return "", false
	}
	r, ok := new(big.Rat).SetString(price)
	if !ok {
		return "", false
	}
	r.Mul(r, new(big.Rat).SetInt64(quantity))
	s := r.FloatString(12)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s, true
}

// A summary cursor is the last line's key; the next page re-runs the query
// from that line's period (a period boundary, so that period's sums are
// whole) and skips the lines up to the key. The lines' order is the
// store's: period, then product, customer, dimension and tag value in byte
// order.
type summaryKey struct {
	StartMS   int64  `json:"s"`
	Product   string `json:"p,omitempty"`
	Customer  string `json:"c,omitempty"`
	Dimension string `json:"d,omitempty"`
	Tag       string `json:"t,omitempty"`
}

func keyOf(l mpmeter.UsageSummaryLine) summaryKey {
	return summaryKey{l.Start.UnixMilli(), l.ProductCode, l.CustomerAccountID, l.Dimension, l.TagValue}
}

func (k summaryKey) after(o summaryKey) bool {
	if k.StartMS != o.StartMS {
		return k.StartMS > o.StartMS
	}
	for _, c := range [][2]string{{k.Product, o.Product}, {k.Customer, o.Customer}, {k.Dimension, o.Dimension}, {k.Tag, o.Tag}} {
		if c[0] != c[1] {
			return c[0] > c[1]
		}
	}
	return false
}

func encodeSummaryCursor(k summaryKey) string {
	b, _ := json.Marshal(k)
	return base64.RawURLEncoding.EncodeToString(append([]byte("s1:"), b...))
}

func decodeSummaryCursor(c string) (summaryKey, error) {
	var k summaryKey
	b, err := base64.RawURLEncoding.DecodeString(c)
	rest, ok := strings.CutPrefix(string(b), "s1:")
	if err != nil || !ok || json.Unmarshal([]byte(rest), &k) != nil {
		return k, invalid("cursor %q is not a cursor this API gave", c)
	}
	return k, nil
}

// --- routes ---

type usageListIn struct {
	UsageFilterParams
	Order  string `query:"order" enum:"oldest,newest" default:"oldest" doc:"By Timestamp (then MeteringRecordId): oldest or newest first."`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"At most this many items (1-1000)."`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page, with the same filters and order; empty for the first."`
}

type usageRecordIn struct {
	ID string `path:"id" doc:"The MeteringRecordId."`
}

type usageSummaryIn struct {
	UsageFilterParams
	SummaryParams
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"At most this many lines (1-1000)."`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page, with the same parameters; empty for the first."`
}

func (a *API) registerUsage(api huma.API) {
	huma.Register(api, op("list-usage-records", http.MethodGet, "/usage/records", "List metering records, oldest (or newest) first", "usage"),
		func(ctx context.Context, in *usageListIn) (*struct{ Body List[UsageRecord] }, error) {
			f, none, err := a.usageFilter(ctx, in.UsageFilterParams)
			if err != nil {
				return nil, err
			}
			out := &struct{ Body List[UsageRecord] }{List[UsageRecord]{Items: []UsageRecord{}}}
			if none {
				return out, nil
			}
			f.Newest = in.Order == "newest"
			limit := cmp.Or(in.Limit, defaultLimit)
			page, err := a.cfg.Store.UsagePage(ctx, f, in.Cursor, limit)
			if err != nil {
				return nil, a.usageErr(ctx, "usage records", err)
			}
			ag := newAgreements(a.cfg.Store)
			for _, r := range page.Records {
				sub, err := ag.of(ctx, r)
				if err != nil {
					return nil, a.storeErr(ctx, "subscription", err)
				}
				out.Body.Items = append(out.Body.Items, recordOut(r, sub.AgreementID))
			}
			out.Body.NextCursor = page.Next
			return out, nil
		})
	huma.Register(api, op("get-usage-record", http.MethodGet, "/usage/records/{id}", "Get a metering record by MeteringRecordId", "usage"),
		func(ctx context.Context, in *usageRecordIn) (*struct{ Body UsageRecord }, error) {
			r, err := a.cfg.Store.UsageRecord(ctx, in.ID)
			if err != nil {
				return nil, a.storeErr(ctx, "metering record "+in.ID, err)
			}
			sub, err := newAgreements(a.cfg.Store).of(ctx, r)
			if err != nil {
				return nil, a.storeErr(ctx, "subscription", err)
			}
			return &struct{ Body UsageRecord }{recordOut(r, sub.AgreementID)}, nil
		})
	huma.Register(api, op("summarize-usage", http.MethodGet, "/usage/summaries", "Usage summed per hour or day by the database, grouped, with estimated charges", "usage"),
		func(ctx context.Context, in *usageSummaryIn) (*struct{ Body List[UsageSummaryLine] }, error) {
			f, none, err := a.usageFilter(ctx, in.UsageFilterParams)
			if err != nil {
				return nil, err
			}
			q, err := summaryQuery(in.SummaryParams, f)
			if err != nil {
				return nil, err
			}
			out := &struct{ Body List[UsageSummaryLine] }{List[UsageSummaryLine]{Items: []UsageSummaryLine{}}}
			if none {
				return out, nil
			}
			var after *summaryKey
			if in.Cursor != "" {
				k, err := decodeSummaryCursor(in.Cursor)
				if err != nil {
					return nil, err
				}
				after = &k
				if start := time.UnixMilli(k.StartMS); start.After(q.Filter.From) {
					q.Filter.From = start
				}
			}
			limit := cmp.Or(in.Limit, defaultLimit)
			// The page is collected first and priced after the query is
			// done, so pricing's product reads never wait on a second
			// connection while the summary holds one.
			var lines []mpmeter.UsageSummaryLine
			for l, err := range a.cfg.Store.UsageSummary(ctx, q) {
				if err != nil {
					return nil, a.usageErr(ctx, "usage summary", err)
				}
				if after != nil && !keyOf(l).after(*after) {
					continue
				}
				if len(lines) == limit {
					out.Body.NextCursor = encodeSummaryCursor(keyOf(lines[len(lines)-1]))
					break
				}
				lines = append(lines, l)
			}
			pr := a.newPricing()
			for _, l := range lines {
				o, err := summaryOut(ctx, l, q, pr)
				if err != nil {
					return nil, a.storeErr(ctx, "product", err)
				}
				out.Body.Items = append(out.Body.Items, o)
			}
			return out, nil
		})
	a.registerUsageExport(api)
}
