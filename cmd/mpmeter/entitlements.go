package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/admin"
)

// addEntitlementsCommands: a subscription's entitlements (what
// GetEntitlements answers), read and replaced (docs/entitlements.md).
func addEntitlementsCommands(root *cobra.Command, a *app) {
	cmd := group("entitlements", "A subscription's entitlements, as GetEntitlements answers them (admin API)")
	a.apiFlags(cmd)

	get := &cobra.Command{
		Use: "get AGREEMENT_ID", Short: "Show a subscription's entitlements", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter entitlements get agmt-77o19sv71nspf94am2qa141lc -o json",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			e, err := c.Entitlements(a.ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(e, func() table { return entitlementsTable(e) })
		},
	}

	var specs []string
	var clear bool
	set := &cobra.Command{
		Use:   "set AGREEMENT_ID --entitlement DIMENSION=VALUE[@EXPIRES]... | --clear",
		Short: "Replace a subscription's entitlements",
		Long: `Replace a subscription's entitlements with the --entitlement ones (repeated,
one per dimension; the old set goes), or remove them all with --clear.

VALUE is typed as GetEntitlements answers it: an integer (10, -3) is
IntegerValue, a number with a fraction or exponent (2.5, 4.0, 1e3) DoubleValue,
true or false BooleanValue, anything else StringValue; a value in double quotes
is a string as written ('tier="10"'). @EXPIRES (RFC 3339, 2031-02-03T04:05:06Z)
is the contract's end, GetEntitlements' ExpirationDate.`,
		Args: args(cobra.ExactArgs(1)),
		Example: `  mpmeter entitlements set agmt-77o19sv71nspf94am2qa141lc --entitlement users=25@2031-02-03T04:05:06Z \
      --entitlement storage_tb=4.0 --entitlement premium_support=false --entitlement 'tier="10"'
  mpmeter entitlements set agmt-77o19sv71nspf94am2qa141lc --clear`,
		RunE: func(_ *cobra.Command, args []string) error {
			if clear == (len(specs) > 0) {
				return usagef("give --entitlement (at least one) or --clear")
			}
			ents := make([]admin.Entitlement, 0, len(specs))
			for _, s := range specs {
				e, err := parseEntitlement(s)
				if err != nil {
					return err
				}
				ents = append(ents, e)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			e, err := c.PutEntitlements(a.ctx, args[0], ents)
			if err != nil {
				return err
			}
			return a.show(e, func() table { return entitlementsTable(e) })
		},
	}
	set.Flags().StringArrayVar(&specs, "entitlement", nil, "DIMENSION=VALUE[@EXPIRES] (repeat for each; VALUE: integer, number, true/false, else string)")
	set.Flags().BoolVar(&clear, "clear", false, "remove every entitlement")

	cmd.AddCommand(get, set)
	root.AddCommand(cmd)
}

// looksLikeDate is an @-suffix meant as an expiry: one that does not parse
// is a mistake, not part of a string value.
var looksLikeDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}`)

// parseEntitlement reads DIMENSION=VALUE[@EXPIRES]; the server checks the
// dimension and the value's range.
func parseEntitlement(spec string) (admin.Entitlement, error) {
	dim, raw, ok := strings.Cut(spec, "=")
	if !ok || dim == "" {
		return admin.Entitlement{}, usagef("--entitlement %q: want DIMENSION=VALUE[@EXPIRES]", spec)
	}
	e := admin.Entitlement{Dimension: dim}
	if i := strings.LastIndex(raw, "@"); i >= 0 && looksLikeDate.MatchString(raw[i+1:]) {
		t, err := time.Parse(time.RFC3339, raw[i+1:])
		if err != nil {
			return admin.Entitlement{}, usagef("--entitlement %q: the expiry is not RFC 3339 (2031-02-03T04:05:06Z): %v", spec, err)
		}
		t = t.UTC()
		e.ExpiresAt, raw = &t, raw[:i]
	}
	e.Value = admin.EntitlementValue{EntitlementValue: entitlementValue(raw)}
	return e, nil
}

// entitlementValue types a command-line value: integer, number, boolean,
// else string ("..." is a string as written).
func entitlementValue(s string) mpmeter.EntitlementValue {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return mpmeter.EntitlementString(s[1 : len(s)-1])
	}
	switch s {
	case "true", "false":
		return mpmeter.EntitlementBoolean(s == "true")
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return mpmeter.EntitlementInteger(i)
	}
	if strings.ContainsAny(s, ".eE") {
		if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "nN") {
			return mpmeter.EntitlementDouble(f)
		}
	}
	return mpmeter.EntitlementString(s)
}

func entitlementsTable(e admin.Entitlements) table {
	t := table{header: []string{"DIMENSION", "VALUE", "TYPE", "EXPIRES"}}
	for _, x := range e.Entitlements {
		v, kind := x.Value.EntitlementValue, ""
		switch {
		case v.IntegerValue != nil:
			kind = "integer"
		case v.DoubleValue != nil:
			kind = "double"
		case v.BooleanValue != nil:
			kind = "boolean"
		case v.StringValue != nil:
			kind = "string"
		}
		shown, _ := json.Marshal(x.Value)
		exp := ""
		if x.ExpiresAt != nil {
			exp = rfc3339(*x.ExpiresAt)
		}
		t.add(x.Dimension, string(shown), kind, exp)
	}
	return t
}
