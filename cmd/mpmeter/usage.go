package main

import (
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/internal/adminclient"
)

// usageFilters are the filters every usage route takes (docs/reports.md),
// as flags; the server checks their values (a bad one is 400: exit 2).
type usageFilters struct {
	product, customer, agreement, dimension, from, until, operation, tag string
}

func (f *usageFilters) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.product, "product", "", "the ProductCode")
	fl.StringVar(&f.customer, "customer", "", "a 12-digit customer account id, or else a CustomerIdentifier")
	fl.StringVar(&f.agreement, "agreement", "", "the agreement (agmt-...)")
	fl.StringVar(&f.dimension, "dimension", "", "the dimension name")
	fl.StringVar(&f.from, "from", "", "usage Timestamp at or after this time (RFC 3339)")
	fl.StringVar(&f.until, "until", "", "usage Timestamp before this time (RFC 3339)")
	fl.StringVar(&f.operation, "operation", "", "BatchMeterUsage, MeterUsage or RegisterUsage")
	fl.StringVar(&f.tag, "tag", "", "an allocation tag: KEY or KEY=VALUE")
}

func (f *usageFilters) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"product": f.product, "customer": f.customer, "agreement_id": f.agreement, "dimension": f.dimension,
		"from": f.from, "until": f.until, "operation": f.operation, "tag": f.tag} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// addUsageCommands: usage records, summaries and exports on a server.
func addUsageCommands(root *cobra.Command, a *app) {
	cmd := group("usage", "Metered usage: records, reports with estimated charges, exports (admin API)")
	cmd.Long = "What was metered, read back from a running server: records, sums per hour or day with estimated charges, and streamed exports (docs/reports.md)."
	a.apiFlags(cmd)

	var listF usageFilters
	var newest bool
	var limit int
	list := &cobra.Command{
		Use: "list [filters] [--newest] [--limit N]", Short: "List metering records, oldest first", Args: args(cobra.NoArgs),
		Example: `  mpmeter usage list --product exampleprod1 --from 2026-03-01T00:00:00Z --limit 20
  mpmeter usage list --customer 444455556666 --tag team=a --newest -o json`,
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			q := listF.query()
			if newest {
				q.Set("order", "newest")
			}
			rs, err := adminclient.List[admin.UsageRecord](a.ctx, c, "/usage/records", q, adminclient.ListOptions{Limit: limit})
			if err != nil {
				return err
			}
			return a.show(rs, func() table { return usageRecordsTable(rs...) })
		},
	}
	listF.flags(list)
	list.Flags().BoolVar(&newest, "newest", false, "newest first")
	limitFlag(list, &limit)

	get := &cobra.Command{
		Use: "get ID", Short: "Show a metering record by its MeteringRecordId", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter usage get 01a2329e-3745-7139-b6f0-9bfa6dc8933e -o json",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var r admin.UsageRecord
			if err := c.Do(a.ctx, "GET", "/usage/records/"+url.PathEscape(args[0]), nil, nil, &r); err != nil {
				return err
			}
			return a.show(r, func() table { return usageRecordsTable(r) })
		},
	}

	var repF usageFilters
	var by, groupBy, format string
	var repLimit int
	report := &cobra.Command{
		Use: "report --by hour|day [--group product,customer,dimension,tag:KEY] [filters] [--format table|csv|json]", Short: "Sum usage per hour or day, with estimated charges",
		Args: args(cobra.NoArgs),
		Long: `Sum the metered quantities per hour or UTC day, grouped by product, customer,
dimension and/or one allocation tag (tag:KEY), with estimated charges where the
product and dimension are known and priced (docs/reports.md). The table (or -o
json|yaml) reads /usage/summaries; --format csv and --format json (JSON lines)
stream the export, holding nothing in memory.`,
		Example: `  mpmeter usage report --by day
  mpmeter usage report --by hour --group product,dimension --product exampleprod1 --from 2026-03-01T00:00:00Z
  mpmeter usage report --by day --group product,customer,dimension --format csv > usage.csv`,
		RunE: func(_ *cobra.Command, _ []string) error {
			if by != "hour" && by != "day" {
				return usagef("--by must be hour or day, got %q", by)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			q := repF.query()
			q.Set("period", by)
			if groupBy != "" {
				q.Set("group_by", groupBy)
			}
			switch format {
			case "csv", "json":
				q.Set("kind", "summaries")
				q.Set("format", map[string]string{"csv": "csv", "json": "jsonl"}[format])
				return streamTo(a, c, "/usage/export", q, a.stdout)
			case "table":
			default:
				return usagef("--format must be table, csv or json, got %q", format)
			}
			ls, err := adminclient.List[admin.UsageSummaryLine](a.ctx, c, "/usage/summaries", q, adminclient.ListOptions{Limit: repLimit})
			if err != nil {
				return err
			}
			return a.show(ls, func() table { return summaryTable(ls) })
		},
	}
	repF.flags(report)
	report.Flags().StringVar(&by, "by", "day", "sum per hour or day (UTC)")
	report.Flags().StringVar(&groupBy, "group", "", "comma-separated: product, customer, dimension, tag:KEY (default: one line per period)")
	report.Flags().StringVar(&format, "format", "table", "table (or -o json|yaml), csv or json (JSON lines), streamed")
	limitFlag(report, &repLimit)

	var expF usageFilters
	var kind, expFormat, file, expBy, expGroup string
	export := &cobra.Command{
		Use: "export --kind records|summaries|feed --format csv|jsonl [filters] [-f FILE]", Short: "Stream usage as CSV or JSON lines",
		Args: args(cobra.NoArgs),
		Long: `Stream every matching record, summary line, or AWS Marketplace daily usage data
feed line (kind feed) as CSV or JSON lines, as the server writes them: nothing is
held whole in memory. -f writes the file whole or not at all (docs/reports.md).`,
		Example: `  mpmeter usage export --kind records --format jsonl --from 2026-03-01T00:00:00Z --until 2026-03-02T00:00:00Z
  mpmeter usage export --kind feed --format csv -f feed.csv`,
		RunE: func(_ *cobra.Command, _ []string) error {
			switch kind {
			case "records", "summaries", "feed":
			default:
				return usagef("--kind must be records, summaries or feed, got %q", kind)
			}
			if expFormat != "csv" && expFormat != "jsonl" {
				return usagef("--format must be csv or jsonl, got %q", expFormat)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			q := expF.query()
			q.Set("kind", kind)
			q.Set("format", expFormat)
			if kind == "summaries" {
				q.Set("period", expBy)
				if expGroup != "" {
					q.Set("group_by", expGroup)
				}
			}
			if file == "" {
				return streamTo(a, c, "/usage/export", q, a.stdout)
			}
			if err := writeWhole(file, 0o644, func(w io.Writer) error { return streamTo(a, c, "/usage/export", q, w) }); err != nil {
				return err
			}
			a.note("wrote %s", file)
			return nil
		},
	}
	expF.flags(export)
	export.Flags().StringVar(&kind, "kind", "records", "records, summaries or feed")
	export.Flags().StringVar(&expFormat, "format", "csv", "csv or jsonl")
	export.Flags().StringVarP(&file, "file", "f", "", "write to this file instead of standard output")
	export.Flags().StringVar(&expBy, "by", "day", "kind summaries: hour or day")
	export.Flags().StringVar(&expGroup, "group", "", "kind summaries: product, customer, dimension, tag:KEY")

	cmd.AddCommand(list, get, report, export)
	root.AddCommand(cmd)
}

// streamTo copies a streamed answer to w as it arrives.
func streamTo(a *app, c *adminclient.Client, path string, q url.Values, w io.Writer) error {
	body, err := c.Stream(a.ctx, path, q)
	if err != nil {
		return err
	}
	defer body.Close()
	if _, err := io.Copy(w, body); err != nil {
		return &adminclient.UnreachableError{URL: path, Err: err}
	}
	return nil
}

// writeWhole writes file through write, in full or not at all: a failed
// transfer leaves no half a file that looks complete.
func writeWhole(file string, perm os.FileMode, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(dirOf(file), ".mpmeter-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

func usageRecordsTable(rs ...admin.UsageRecord) table {
	t := table{header: []string{"TIMESTAMP", "OPERATION", "PRODUCT", "CUSTOMER", "DIMENSION", "QUANTITY", "AGREEMENT", "RECORD ID"}}
	for _, r := range rs {
		t.add(r.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z"), r.Operation, r.ProductCode, r.CustomerAccountID, r.Dimension,
			strconv.FormatInt(r.Quantity, 10), r.AgreementID, r.MeteringRecordID)
	}
	return t
}

// summaryTable shows the columns the grouping gives, and the charges when
// any line has one.
func summaryTable(ls []admin.UsageSummaryLine) table {
	var product, customer, dimension, tag, charged bool
	for _, l := range ls {
		product = product || l.ProductCode != ""
		customer = customer || l.CustomerAccountID != ""
		dimension = dimension || l.Dimension != ""
		tag = tag || l.TagValue != nil
		charged = charged || l.EstimatedCharge != ""
	}
	t := table{header: []string{"PERIOD"}}
	col := func(on bool, name string) {
		if on {
			t.header = append(t.header, name)
		}
	}
	col(product, "PRODUCT")
	col(customer, "CUSTOMER")
	col(dimension, "DIMENSION")
	if tag {
		key := ""
		for _, l := range ls {
			key = l.TagKey
		}
		t.header = append(t.header, "TAG "+strings.ToUpper(key))
	}
	t.header = append(t.header, "QUANTITY", "RECORDS")
	col(charged, "UNIT")
	col(charged, "PRICE")
	col(charged, "ESTIMATED (USD)")
	for _, l := range ls {
		row := []string{rfc3339(l.PeriodStart)}
		add := func(on bool, v string) {
			if on {
				row = append(row, v)
			}
		}
		add(product, l.ProductCode)
		add(customer, l.CustomerAccountID)
		add(dimension, l.Dimension)
		if tag {
			v := ""
			if l.TagValue != nil {
				v = *l.TagValue
			}
			row = append(row, v)
		}
		row = append(row, strconv.FormatInt(l.Quantity, 10), strconv.FormatInt(l.Records, 10))
		add(charged, l.Unit)
		add(charged, l.PricePerUnit)
		add(charged, l.EstimatedCharge)
		t.add(row...)
	}
	return t
}
