package web

import (
	"encoding/csv"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter"
)

// usageQuery is the usage explorer's form, parsed.
type usageQuery struct {
	Period                     string // hour | day
	GroupBy                    string // product | customer | dimension | tag
	TagKey                     string
	Product, Customer, Dim     string
	From, To                   time.Time
	FromInput, ToInput         string
	Form                       url.Values
	Problems                   []string
	summary                    mpmeter.UsageSummaryQuery
	defaultRange, periodLength time.Duration
}

const dateInput = "2006-01-02T15:04"

// maxChartPeriods bounds the periods one page draws (a year of days, a
// month of hours).
const maxChartPeriods = 744

func (c *Console) parseUsage(q url.Values) usageQuery {
	u := usageQuery{Period: q.Get("period"), GroupBy: q.Get("group"), TagKey: strings.TrimSpace(q.Get("tag")),
		Product: strings.TrimSpace(q.Get("product")), Customer: strings.TrimSpace(q.Get("customer")), Dim: strings.TrimSpace(q.Get("dimension")), Form: q}
	if u.Period != "day" {
		u.Period = "hour"
	}
	u.periodLength, u.defaultRange = time.Hour, 24*time.Hour
	if u.Period == "day" {
		u.periodLength, u.defaultRange = 24*time.Hour, 30*24*time.Hour
	}
	switch u.GroupBy {
	case "customer", "dimension", "tag":
	default:
		u.GroupBy = "product"
	}
	if u.GroupBy == "tag" && u.TagKey == "" {
		u.Problems = append(u.Problems, "Grouping by tag needs a tag key.")
		u.GroupBy = "product"
	}
	now := c.cfg.Clock.Now().UTC()
	u.To = now.Truncate(u.periodLength).Add(u.periodLength)
	u.From = u.To.Add(-u.defaultRange)
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &u.From}, {"to", &u.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(dateInput, v)
			if err != nil {
				u.Problems = append(u.Problems, fmt.Sprintf("%s %q is not a date and time (UTC).", p.name, v))
				continue
			}
			*p.t = t.UTC()
		}
	}
	if !u.From.Before(u.To) {
		u.Problems = append(u.Problems, "From must be before To.")
		u.From = u.To.Add(-u.defaultRange)
	}
	if n := u.To.Sub(u.From) / u.periodLength; n > maxChartPeriods {
		u.Problems = append(u.Problems, fmt.Sprintf("At most %d %ss at once: From moved.", maxChartPeriods, u.Period))
		u.From = u.To.Add(-maxChartPeriods * u.periodLength)
	}
	u.FromInput, u.ToInput = u.From.Format(dateInput), u.To.Format(dateInput)
	u.summary = mpmeter.UsageSummaryQuery{
		Filter:      mpmeter.UsageFilter{ProductCode: u.Product, CustomerAccountID: u.Customer, Dimension: u.Dim, From: u.From, To: u.To},
		Period:      u.periodLength,
		ByProduct:   u.GroupBy == "product",
		ByCustomer:  u.GroupBy == "customer",
		ByDimension: u.GroupBy == "dimension",
	}
	if u.GroupBy == "tag" {
		u.summary.ByTag = u.TagKey
	}
	return u
}

// groupOf is a summary line's group, as the explorer names it.
func (u usageQuery) groupOf(l mpmeter.UsageSummaryLine) string {
	switch u.GroupBy {
	case "customer":
		return l.CustomerAccountID
	case "dimension":
		return l.Dimension
	case "tag":
		if l.TagValue == "" {
			return "(no " + u.TagKey + ")"
		}
		return l.TagValue
	}
	return l.ProductCode
}

// chartData is what static/app.js draws: labels (periods) and one series
// per group.
type chartData struct {
	Labels []string      `json:"labels"`
	Series []chartSeries `json:"series"`
}

type chartSeries struct {
	Label string  `json:"label"`
	Data  []int64 `json:"data"`
}

type usageRow struct {
	Start    time.Time
	Group    string
	Quantity int64
	Records  int64
}

func (c *Console) usage(w http.ResponseWriter, r *http.Request) {
	u := c.parseUsage(r.URL.Query())
	var rows []usageRow
	var labels []string
	index := map[time.Time]int{}
	for t := u.From; t.Before(u.To); t = t.Add(u.periodLength) {
		index[t] = len(labels)
		if u.Period == "day" {
			labels = append(labels, t.Format("2006-01-02"))
		} else {
			labels = append(labels, t.Format("01-02 15:00"))
		}
	}
	series := map[string][]int64{}
	var total, records int64
	for l, err := range c.cfg.Store.UsageSummary(r.Context(), u.summary) {
		if err != nil {
			c.fail(w, r, "summing usage", err)
			return
		}
		g := u.groupOf(l)
		rows = append(rows, usageRow{l.Start, g, l.Quantity, l.Records})
		total += l.Quantity
		records += l.Records
		if series[g] == nil {
			series[g] = make([]int64, len(labels))
		}
		if i, ok := index[l.Start.UTC()]; ok {
			series[g][i] += l.Quantity
		}
	}
	cd := chartData{Labels: labels, Series: []chartSeries{}}
	groups := make([]string, 0, len(series))
	for g := range series {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	for _, g := range groups {
		cd.Series = append(cd.Series, chartSeries{g, series[g]})
	}
	slices.Reverse(rows) // newest first in the table
	d := map[string]any{"Q": u, "Rows": rows, "Chart": cd, "Total": total, "Records": records,
		"SummaryCSV": template.URL(Prefix + "usage/summary.csv?" + r.URL.Query().Encode()),
		"RecordsCSV": template.URL(Prefix + "usage/records.csv?" + r.URL.Query().Encode()), "GroupLabel": strings.ToUpper(u.GroupBy[:1]) + u.GroupBy[1:]}
	c.render(w, r, http.StatusOK, "usage", pageData{Title: "Usage", Error: strings.Join(u.Problems, " "), Data: d})
}

// usageSummaryCSV streams the explorer's lines as CSV.
func (c *Console) usageSummaryCSV(w http.ResponseWriter, r *http.Request) {
	u := c.parseUsage(r.URL.Query())
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="usage-%s-by-%s.csv"`, u.Period, u.GroupBy))
	cw := csv.NewWriter(w)
	cw.Write([]string{"period_start", u.GroupBy, "quantity", "records"})
	for l, err := range c.cfg.Store.UsageSummary(r.Context(), u.summary) {
		if err != nil {
			// The header is sent: say so in the body, where a reader sees it.
			c.cfg.Logger.Error("console: usage CSV", "err", err)
			cw.Write([]string{"error: the export stopped early; retry"})
			break
		}
		cw.Write([]string{l.Start.UTC().Format(time.RFC3339), u.groupOf(l), strconv.FormatInt(l.Quantity, 10), strconv.FormatInt(l.Records, 10)})
	}
	cw.Flush()
}

// usageRecordsCSV streams every record of the explorer's filter as CSV,
// from one query (EachUsage), never all in memory.
func (c *Console) usageRecordsCSV(w http.ResponseWriter, r *http.Request) {
	u := c.parseUsage(r.URL.Query())
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="usage-records.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"timestamp", "metering_record_id", "operation", "product_code", "seller_account_id", "customer_account_id",
		"customer_identifier", "license_arn", "workload_id", "dimension", "quantity", "allocations"})
	n := 0
	for rec, err := range c.cfg.Store.EachUsage(r.Context(), u.summary.Filter) {
		if err != nil {
			c.cfg.Logger.Error("console: records CSV", "err", err)
			cw.Write([]string{"error: the export stopped early; retry"})
			break
		}
		var allocs []string
		for _, a := range rec.Allocations {
			var tags []string
			for _, t := range a.Tags {
				tags = append(tags, t.Key+"="+t.Value)
			}
			allocs = append(allocs, strconv.FormatInt(a.Quantity, 10)+"["+strings.Join(tags, ",")+"]")
		}
		cw.Write([]string{rec.Timestamp.UTC().Format(time.RFC3339), rec.MeteringRecordID, rec.Kind, rec.ProductCode, rec.SellerAccountID,
			rec.CustomerAccountID, rec.CustomerIdentifier, rec.LicenseArn, rec.WorkloadID, rec.Dimension,
			strconv.FormatInt(rec.Quantity, 10), strings.Join(allocs, " ")})
		if n++; n%1000 == 0 {
			cw.Flush()
		}
	}
	cw.Flush()
}
