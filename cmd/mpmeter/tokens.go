package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/internal/adminclient"
)

// addTokensCommands: registration tokens issue/get/list/expire on a server.
func addTokensCommands(root *cobra.Command, a *app) {
	cmd := group("tokens", "Registration tokens: what ResolveCustomer resolves (admin API)")
	a.apiFlags(cmd)

	var sel agreementSelector
	var expiresIn, expiresAt string
	issue := &cobra.Command{
		Use: "issue (--account ID --product CODE | --agreement ID) [--expires-in D | --expires-at T]", Short: "Issue a registration token; its value is printed this once",
		Args: args(cobra.NoArgs),
		Example: `  mpmeter tokens issue --account 444455556666 --product exampleprod1
  TOKEN=$(mpmeter tokens issue --agreement agmt-... --expires-in 30m -o json | jq -r .token)`,
		RunE: func(_ *cobra.Command, _ []string) error {
			nt := adminclient.NewToken{ExpiresIn: expiresIn}
			if expiresAt != "" {
				t, err := time.Parse(time.RFC3339, expiresAt)
				if err != nil {
					return usagef("--expires-at: %v", err)
				}
				nt.ExpiresAt = &t
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if nt.AgreementID, err = sel.resolve(a.ctx, c); err != nil {
				return err
			}
			t, err := c.IssueToken(a.ctx, nt)
			if err != nil {
				return err
			}
			return a.show(t, func() table {
				tab := table{header: []string{"TOKEN", "ID", "ACCOUNT", "PRODUCT", "EXPIRES"}}
				tab.add(t.Token, t.ID, t.AccountID, t.ProductCode, rfc3339(t.ExpiresAt))
				a.note("The token's value is shown only now; later commands name it by its id.")
				return tab
			})
		},
	}
	sel.flags(issue, true)
	issue.Flags().StringVar(&expiresIn, "expires-in", "", "lifetime, a Go duration (30m, 4h; default: the server's --token-ttl)")
	issue.Flags().StringVar(&expiresAt, "expires-at", "", "expiry, RFC 3339 on the service clock")

	get := &cobra.Command{
		Use: "get ID", Short: "Show a registration token by id (rt-..., never its value)", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter tokens get rt-...",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			t, err := c.Token(a.ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(t, func() table { return tokensTable(t) })
		},
	}
	var limit int
	list := &cobra.Command{
		Use: "list", Short: "List registration tokens, by id", Args: args(cobra.NoArgs),
		Example: "  mpmeter tokens list",
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ts, err := c.Tokens(a.ctx, adminclient.ListOptions{Limit: limit})
			if err != nil {
				return err
			}
			return a.show(ts, func() table { return tokensTable(ts...) })
		},
	}
	limitFlag(list, &limit)
	expire := &cobra.Command{
		Use: "expire ID", Short: "Expire a registration token now", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter tokens expire rt-...",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			t, err := c.ExpireToken(a.ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(t, func() table { return tokensTable(t) })
		},
	}
	cmd.AddCommand(issue, get, list, expire)
	root.AddCommand(cmd)
}

func tokensTable(ts ...admin.RegistrationToken) table {
	t := table{header: []string{"ID", "ACCOUNT", "PRODUCT", "LICENSE ARN", "CREATED", "EXPIRES"}}
	for _, x := range ts {
		t.add(x.ID, x.AccountID, x.ProductCode, x.LicenseArn, rfc3339(x.CreatedAt), rfc3339(x.ExpiresAt))
	}
	return t
}
