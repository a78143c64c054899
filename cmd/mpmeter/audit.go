package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/audit"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/vclock"
)

const auditUsage = `usage: mpmeter audit list   [filters] [--limit N] [--newest] [--cursor C] [-o table|json] [--db PATH|URL]
       mpmeter audit export [filters] [--out FILE] [--db PATH|URL]     (JSON lines)

Filters:
  --since T, --until T   event time range [since, until): RFC 3339 (2026-03-04T10:03:00Z)
                         or a duration before now on the service clock (15m, 2h)
  --operation OP         BatchMeterUsage, MeterUsage, ResolveCustomer, RegisterUsage, unknown, or an admin operation
  --account ID           the calling account (userIdentity.accountId)
  --request-id ID        the x-amzn-RequestId the client got
  --error CODE           an AWS error name, "any" (every failed call) or "none" (every successful one)
  --source S             metering or admin (default both)

Did my BatchMeterUsage at 10:03 reach the service, and what did it answer?
  mpmeter audit list --operation BatchMeterUsage --account 111122223333 \
      --since 2026-03-04T10:02:00Z --until 2026-03-04T10:05:00Z
`

// auditCommand: "audit list" and "audit export", read straight from the
// database (no server needed). The admin API's routes and "audit tail
// --follow" over HTTP come with the admin API.
func auditCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "export") {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("audit "+sub, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage) }
	db := fs.String("db", "mpmeter.db", "SQLite database file, or a postgres:// URL")
	since := fs.String("since", "", "events at or after this time")
	until := fs.String("until", "", "events before this time")
	operation := fs.String("operation", "", "operation (eventName)")
	account := fs.String("account", "", "calling account id")
	requestID := fs.String("request-id", "", "request id")
	errCode := fs.String("error", "", `error name, "any" or "none"`)
	source := fs.String("source", "", "metering or admin")
	limit := fs.Int("limit", mpmeter.DefaultAuditLimit, "list: events per page (at most 1000)")
	newest := fs.Bool("newest", false, "newest first (default oldest first)")
	cursor := fs.String("cursor", "", "list: continue after the page that printed this cursor")
	output := fs.String("o", "table", "list: table or json")
	out := fs.String("out", "", "export: write to this file instead of standard output")
	if err := parseFlags(fs, args[1:], getenv, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %s\n\n%s", strings.Join(fs.Args(), " "), auditUsage)
		return errUsage
	}
	if *output != "table" && *output != "json" {
		return fmt.Errorf("-o must be table or json, got %q", *output)
	}
	if *limit < 1 || *limit > mpmeter.MaxAuditLimit {
		return fmt.Errorf("--limit must be from 1 to %d", mpmeter.MaxAuditLimit)
	}
	st, err := sqlstore.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	clock, err := vclock.New(ctx, st, 0)
	if err != nil {
		return err
	}
	f := mpmeter.AuditFilter{EventName: *operation, AccountID: *account, RequestID: *requestID, Newest: *newest, Limit: *limit, Cursor: *cursor}
	if f.From, err = parseAuditTime("--since", *since, clock.Now()); err != nil {
		return err
	}
	if f.To, err = parseAuditTime("--until", *until, clock.Now()); err != nil {
		return err
	}
	switch *errCode {
	case "any":
		f.ErrorCode = mpmeter.AuditAnyError
	case "none":
		f.ErrorCode = mpmeter.AuditNoError
	default:
		f.ErrorCode = *errCode
	}
	switch *source {
	case "":
	case "metering":
		f.EventSource = mpmeter.AuditSourceMetering
	case "admin":
		f.EventSource = mpmeter.AuditSourceAdmin
	default:
		return fmt.Errorf("--source must be metering or admin, got %q", *source)
	}

	if sub == "export" {
		w := stdout
		if *out != "" {
			file, err := os.Create(*out)
			if err != nil {
				return err
			}
			defer file.Close()
			w = file
		}
		n, err := audit.ExportJSONLines(ctx, st, f, w)
		if err != nil {
			return err
		}
		if *out != "" {
			fmt.Fprintf(stderr, "wrote %d events to %s\n", n, *out)
		}
		return nil
	}

	page, err := st.AuditEvents(ctx, f)
	if errors.Is(err, mpmeter.ErrInvalidCursor) {
		return fmt.Errorf("--cursor: not a cursor this command printed")
	}
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Events []mpmeter.AuditEvent `json:"events"`
			Next   string               `json:"nextCursor,omitempty"`
		}{page.Events, page.Next})
	}
	if len(page.Events) == 0 {
		fmt.Fprintln(stderr, "no events match")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tOPERATION\tACCOUNT\tACCESS KEY\tRESULT\tREQUEST ID\tSOURCE IP\tDETAIL")
	for _, ev := range page.Events {
		result := "OK"
		if ev.ErrorCode != "" {
			result = ev.ErrorCode
		}
		account := ev.UserIdentity.AccountID
		if account == "" {
			account = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.EventTime.UTC().Format("2006-01-02T15:04:05.000Z"), ev.EventName, account,
			orDash(ev.UserIdentity.AccessKeyID), result, ev.RequestID, orDash(ev.SourceIPAddress), eventDetail(ev))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(stderr, "more: add --cursor %s\n", page.Next)
	}
	return nil
}

// parseAuditTime reads --since/--until: RFC 3339, or a duration before now.
func parseAuditTime(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time (2026-03-04T10:03:00Z) or a duration (15m)", name, v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// eventDetail is the table's last column: what the call answered, in a
// few words (the whole answer is in -o json).
func eventDetail(ev mpmeter.AuditEvent) string {
	if ev.ErrorCode != "" {
		return clip(ev.ErrorMessage, 80)
	}
	switch ev.EventName {
	case mpmeter.OpBatchMeterUsage:
		var resp struct {
			Results []struct {
				Status string `json:"status"`
			} `json:"results"`
			Unprocessed []json.RawMessage `json:"unprocessedRecords"`
		}
		if json.Unmarshal(ev.ResponseElements, &resp) != nil {
			return ""
		}
		counts := map[string]int{}
		for _, r := range resp.Results {
			counts[r.Status]++
		}
		var parts []string
		for _, status := range slices.Sorted(maps.Keys(counts)) {
			parts = append(parts, strconv.Itoa(counts[status])+" "+status)
		}
		if len(resp.Unprocessed) > 0 {
			parts = append(parts, strconv.Itoa(len(resp.Unprocessed))+" unprocessed")
		}
		return fmt.Sprintf("%d records: %s", len(resp.Results), strings.Join(parts, ", "))
	case mpmeter.OpMeterUsage:
		var resp struct {
			ID string `json:"meteringRecordId"`
		}
		json.Unmarshal(ev.ResponseElements, &resp)
		return "meteringRecordId " + resp.ID
	case mpmeter.OpResolveCustomer:
		var resp struct {
			Customer string `json:"customerIdentifier"`
			Account  string `json:"customerAWSAccountId"`
		}
		json.Unmarshal(ev.ResponseElements, &resp)
		return "customer " + resp.Customer + " (" + resp.Account + ")"
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
