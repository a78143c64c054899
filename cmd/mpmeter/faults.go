package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/internal/adminclient"
)

// faultIn is the body of POST /admin/v1/faults (docs/admin-api.md#faults).
type faultIn struct {
	ID          string  `json:"id,omitempty"`
	Operation   string  `json:"operation,omitempty"`
	AccountID   string  `json:"account_id,omitempty"`
	ProductCode string  `json:"product_code,omitempty"`
	Kind        string  `json:"kind"`
	Rate        float64 `json:"rate,omitempty"`
	Count       int64   `json:"count,omitempty"`
	Latency     string  `json:"latency,omitempty"`
	ExpiresIn   string  `json:"expires_in,omitempty"`
}

// addFaultsCommands: fault rules (calls that fail on purpose) on a server.
func addFaultsCommands(root *cobra.Command, a *app) {
	cmd := group("faults", "Fault rules: make calls fail on purpose, to test retries (admin API)")
	cmd.Long = "Fault rules: which Metering and Entitlement Service calls fail on purpose, how and how often (docs/retries.md)."
	a.apiFlags(cmd)

	var in faultIn
	add := &cobra.Command{
		Use: "add --kind KIND (--rate R | --count N) [--operation OP] [--account ID] [--product CODE] [--latency D] [--expires-in D]", Short: "Add a fault rule",
		Args: args(cobra.NoArgs),
		Long: `Add a fault rule. --kind is throttling, internal_error, service_unavailable,
latency (with --latency), drop_connection or unprocessed_records (BatchMeterUsage
only). Give exactly one of --rate (the share of matching calls, 0 < R <= 1) and
--count (how many calls in all, shared across nodes). The server checks the rule:
a bad one exits 2 naming each problem.`,
		Example: `  mpmeter faults add --kind throttling --count 1
  mpmeter faults add --kind latency --latency 2s --rate 0.5 --operation BatchMeterUsage --expires-in 10m`,
		RunE: func(_ *cobra.Command, _ []string) error {
			if in.Kind == "" {
				return usagef("--kind is required")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var f admin.Fault
			if err := c.Do(a.ctx, http.MethodPost, "/faults", nil, in, &f); err != nil {
				return err
			}
			return a.show(f, func() table { return faultsTable(f) })
		},
	}
	fl := add.Flags()
	fl.StringVar(&in.Kind, "kind", "", "throttling, internal_error, service_unavailable, latency, drop_connection or unprocessed_records")
	fl.StringVar(&in.ID, "id", "", "the rule's id (default: generated, f-...)")
	fl.StringVar(&in.Operation, "operation", "", "BatchMeterUsage, MeterUsage, RegisterUsage, ResolveCustomer or GetEntitlements (default: any)")
	fl.StringVar(&in.AccountID, "account", "", "the calling account (default: any)")
	fl.StringVar(&in.ProductCode, "product", "", "the request's ProductCode (default: any)")
	fl.Float64Var(&in.Rate, "rate", 0, "the share of matching calls faulted, 0 < R <= 1")
	fl.Int64Var(&in.Count, "count", 0, "how many matching calls are faulted in all")
	fl.StringVar(&in.Latency, "latency", "", "kind latency: the added delay (a Go duration, up to 5m)")
	fl.StringVar(&in.ExpiresIn, "expires-in", "", "stop after this long on the service clock (a Go duration; default never)")

	list := &cobra.Command{
		Use: "list", Short: "List fault rules, in the order they are tried", Args: args(cobra.NoArgs),
		Example: "  mpmeter faults list",
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			fs, err := adminclient.List[admin.Fault](a.ctx, c, "/faults", nil, adminclient.ListOptions{})
			if err != nil {
				return err
			}
			return a.show(fs, func() table { return faultsTable(fs...) })
		},
	}

	clear := &cobra.Command{
		Use: "clear [ID]", Short: "Delete one fault rule, or every one", Args: args(cobra.MaximumNArgs(1)),
		Example: "  mpmeter faults clear            # every rule\n  mpmeter faults clear f-3a9c0e1b2d4f",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var out struct {
				Deleted int `json:"deleted"`
			}
			if len(args) == 1 {
				if err := c.Do(a.ctx, http.MethodDelete, "/faults/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
					return err
				}
				out.Deleted = 1
			} else if err := c.Do(a.ctx, http.MethodDelete, "/faults", nil, nil, &out); err != nil {
				return err
			}
			return a.showWith(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "deleted %d fault rule(s)\n", out.Deleted)
				return err
			})
		},
	}
	cmd.AddCommand(add, list, clear)
	root.AddCommand(cmd)
}

func faultsTable(fs ...admin.Fault) table {
	t := table{header: []string{"ID", "KIND", "OPERATION", "ACCOUNT", "PRODUCT", "RATE/COUNT", "REMAINING", "LATENCY", "EXPIRES", "ACTIVE"}}
	for _, f := range fs {
		how, rem, exp := "", "", ""
		if f.Count > 0 {
			how = strconv.FormatInt(f.Count, 10)
		} else if f.Rate > 0 {
			how = strconv.FormatFloat(f.Rate, 'g', -1, 64)
		}
		if f.Remaining != nil {
			rem = strconv.FormatInt(*f.Remaining, 10)
		}
		if f.ExpiresAt != nil {
			exp = rfc3339(*f.ExpiresAt)
		}
		t.add(f.ID, f.Kind, f.Operation, f.AccountID, f.ProductCode, how, rem, f.Latency, exp, yesNo(f.Active))
	}
	return t
}
