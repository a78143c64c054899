package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/admin"
)

// tailPage is how many events one poll of audit tail asks for.
const tailPage = 1000

// tailPoll is how often audit tail --follow asks for new events.
const tailPoll = time.Second

// addAuditTailCommand: "audit tail [--follow]" over a server's admin API
// (audit list and export read the database; tail follows a running log).
func addAuditTailCommand(audit *cobra.Command, a *app) {
	var follow bool
	var operation, account, errCode, source, since string
	tail := &cobra.Command{
		Use: "tail [--follow] [--operation OP] [--account ID] [--error CODE] [--source S]", Short: "Print a server's audit events oldest first; --follow keeps printing new ones",
		Args: args(cobra.NoArgs),
		Long: `Print the audit events of a running server (admin API), oldest first: a table,
or -o json with one CloudTrail-style event per line (JSON lines). --follow keeps
polling every second for newer events until interrupted (Ctrl-C); it holds back
the last 2 seconds' events until every node has written them, so none is missed
(docs/admin-api.md). audit list and audit export read a database (--db) instead.`,
		Example: `  mpmeter audit tail --since 10m
  mpmeter audit tail --follow --operation BatchMeterUsage --error any
  mpmeter audit tail --follow --source metering -o json | jq .eventName`,
		RunE: func(_ *cobra.Command, _ []string) error {
			if a.output == "yaml" {
				return usagef("audit tail: -o must be table or json (JSON lines)")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"operation": operation, "account": account, "error": errCode, "source": source} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if since != "" {
				var clock admin.Clock
				if err := c.Do(a.ctx, http.MethodGet, "/clock", nil, nil, &clock); err != nil {
					return err
				}
				from, err := parseAuditTime("--since", since, clock.Now)
				if err != nil {
					return usageError{err}
				}
				q.Set("from", from.UTC().Format(time.RFC3339Nano))
			}
			q.Set("order", "oldest")
			q.Set("limit", strconv.Itoa(tailPage))
			if follow {
				q.Set("follow", "true")
			}
			p := newEventPrinter(a)
			for {
				var page admin.AuditEventList
				if err := c.Do(a.ctx, http.MethodGet, "/audit/events", q, nil, &page); err != nil {
					if follow && a.ctx.Err() != nil { // interrupted: done
						return nil
					}
					return err
				}
				if err := p.print(page.Items); err != nil {
					return err
				}
				if page.NextCursor != "" {
					q.Set("cursor", page.NextCursor)
				}
				// Oldest first the cursor is always set: a short page
				// has caught up with the log.
				if len(page.Items) == tailPage {
					continue
				}
				if !follow {
					return nil
				}
				select {
				case <-a.ctx.Done():
					return nil
				case <-time.After(tailPoll):
				}
			}
		},
	}
	a.apiFlags(tail)
	f := tail.Flags()
	f.BoolVar(&follow, "follow", false, "keep polling (every second) for new events until interrupted")
	f.StringVar(&since, "since", "", "events at or after this time: RFC 3339, or a duration before now on the service clock (10m)")
	f.StringVar(&operation, "operation", "", "eventName: BatchMeterUsage, ResolveCustomer, ..., or an admin operation id")
	f.StringVar(&account, "account", "", "the calling account")
	f.StringVar(&errCode, "error", "", `an error code, "any" (every failed call) or "none" (every successful one)`)
	f.StringVar(&source, "source", "", "metering, entitlement or admin (default all)")
	audit.AddCommand(tail)
}

// eventPrinter prints events as they come: table rows (the header once)
// or JSON lines.
type eventPrinter struct {
	a      *app
	header bool
}

func newEventPrinter(a *app) *eventPrinter { return &eventPrinter{a: a} }

func (p *eventPrinter) print(items []json.RawMessage) error {
	if len(items) == 0 {
		return nil
	}
	if p.a.output == "json" {
		for _, raw := range items {
			if _, err := fmt.Fprintf(p.a.stdout, "%s\n", raw); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(p.a.stdout, 0, 0, 2, ' ', 0)
	if !p.header {
		fmt.Fprintln(tw, "TIME\tOPERATION\tACCOUNT\tRESULT\tREQUEST ID\tDETAIL")
		p.header = true
	}
	for _, raw := range items {
		var ev mpmeter.AuditEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("an audit event the server sent: %w", err)
		}
		result := "OK"
		if ev.ErrorCode != "" {
			result = ev.ErrorCode
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ev.EventTime.UTC().Format("2006-01-02T15:04:05.000Z"), ev.EventName,
			orDash(ev.UserIdentity.AccountID), result, ev.RequestID, orDash(eventDetail(ev)))
	}
	return tw.Flush()
}
