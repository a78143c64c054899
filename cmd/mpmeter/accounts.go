package main

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/internal/adminclient"
)

// addAccountsCommands: accounts create/get/list/rename on a server.
func addAccountsCommands(root *cobra.Command, a *app) {
	cmd := group("accounts", "AWS accounts: sellers and buyers (admin API)")
	a.apiFlags(cmd)
	var name string
	var version int64
	var limit int
	create := &cobra.Command{
		Use: "create ID [--name NAME]", Short: "Create an account (a 12-digit AWS account id)", Args: args(cobra.ExactArgs(1)),
		Example: `  mpmeter accounts create 210987654321 --name "New Buyer"`,
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			acc, err := c.CreateAccount(a.ctx, args[0], name)
			if err != nil {
				return err
			}
			return a.show(acc, func() table { return accountsTable(acc) })
		},
	}
	create.Flags().StringVar(&name, "name", "", "the account's name")
	get := &cobra.Command{
		Use: "get ID", Short: "Show an account", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter accounts get 111122223333",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			acc, err := c.Account(a.ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(acc, func() table { return accountsTable(acc) })
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List accounts, by id (every page unless --limit)", Args: args(cobra.NoArgs),
		Example: "  mpmeter accounts list -o json",
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			accs, err := c.Accounts(a.ctx, adminclient.ListOptions{Limit: limit})
			if err != nil {
				return err
			}
			return a.show(accs, func() table { return accountsTable(accs...) })
		},
	}
	limitFlag(list, &limit)
	rename := &cobra.Command{
		Use: "rename ID NAME", Short: "Rename an account", Args: args(cobra.ExactArgs(2)),
		Example: `  mpmeter accounts rename 210987654321 "Renamed Buyer"`,
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			v := version
			if v == 0 {
				cur, err := c.Account(a.ctx, args[0])
				if err != nil {
					return err
				}
				v = cur.Version
			}
			acc, err := c.RenameAccount(a.ctx, args[0], args[1], v)
			if err != nil {
				return err
			}
			return a.show(acc, func() table { return accountsTable(acc) })
		},
	}
	versionFlag(rename, &version)
	cmd.AddCommand(create, get, list, rename)
	root.AddCommand(cmd)
}

func accountsTable(accs ...admin.Account) table {
	t := table{header: []string{"ID", "NAME", "VERSION"}}
	for _, x := range accs {
		t.add(x.ID, x.Name, strconv.FormatInt(x.Version, 10))
	}
	return t
}

// limitFlag is a list's --limit.
func limitFlag(cmd *cobra.Command, limit *int) {
	cmd.Flags().IntVar(limit, "limit", 0, "at most this many (0: all, following every page)")
}

// versionFlag is an update's --version: the version read, so that a
// change made since is a conflict (exit 4) instead of a lost write.
func versionFlag(cmd *cobra.Command, version *int64) {
	cmd.Flags().Int64Var(version, "version", 0, "apply only if the resource is still at this version (exit 4 if not); 0: the version read just before")
}
