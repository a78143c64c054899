package main

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/internal/adminclient"
)

// addAccessKeysCommands: access-keys create/get/list/revoke on a server.
func addAccessKeysCommands(root *cobra.Command, a *app) {
	cmd := group("access-keys", "Access keys of accounts and their workloads (admin API)")
	a.apiFlags(cmd)

	var nk adminclient.NewAccessKey
	var w admin.Workload
	create := &cobra.Command{
		Use: "create --account ID [flags]", Short: "Create an access key; its secret is printed this once", Args: args(cobra.NoArgs),
		Example: `  mpmeter access-keys create --account 111122223333
  mpmeter access-keys create --account 444455556666 --workload i-0abc --platform ec2 --region us-east-1 --credentials-endpoint`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nk.AccountID == "" {
				return usagef("--account is required")
			}
			if w != (admin.Workload{}) {
				if w.ID == "" || w.Platform == "" || w.Region == "" {
					return usagef("a workload needs --workload, --platform and --region")
				}
				nk.Workload = &w
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			k, err := c.CreateAccessKey(a.ctx, nk)
			if err != nil {
				return err
			}
			return a.show(k, func() table {
				t := table{header: []string{"ACCESS KEY ID", "ACCOUNT", "SECRET ACCESS KEY", "WORKLOAD", "CREDENTIALS TOKEN"}}
				t.add(k.ID, k.AccountID, k.SecretAccessKey, workloadCell(k.Workload), k.CredentialsToken)
				a.note("The secret (and credentials token) are shown only now.")
				return t
			})
		},
	}
	f := create.Flags()
	f.StringVar(&nk.AccountID, "account", "", "the account the key belongs to (required)")
	f.StringVar(&nk.ID, "id", "", "the key id (default: a generated AKIA...)")
	f.StringVar(&w.ID, "workload", "", "a buyer workload's id (instance id, task ARN, ...): a key for MeterUsage / RegisterUsage")
	f.StringVar(&w.Platform, "platform", "", "the workload's platform: ec2, ecs, eks, fargate or agentcore")
	f.StringVar(&w.Region, "region", "", "the workload's region (us-east-1)")
	f.BoolVar(&nk.CredentialsEndpoint, "credentials-endpoint", false, "let the workload fetch temporary credentials (a credentials token is printed this once)")

	get := &cobra.Command{
		Use: "get ID", Short: "Show an access key (never its secret)", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter access-keys get AKIAEXAMPLESELLER001",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			k, err := c.AccessKey(a.ctx, args[0])
			if err != nil {
				return err
			}
			return a.show(k, func() table { return accessKeysTable(k) })
		},
	}
	var filter adminclient.AccessKeyFilter
	var limit int
	list := &cobra.Command{
		Use: "list [--account ID] [--workload ID]", Short: "List access keys, by id", Args: args(cobra.NoArgs),
		Example: "  mpmeter access-keys list --account 444455556666",
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ks, err := c.AccessKeys(a.ctx, filter, adminclient.ListOptions{Limit: limit})
			if err != nil {
				return err
			}
			return a.show(ks, func() table { return accessKeysTable(ks...) })
		},
	}
	list.Flags().StringVar(&filter.AccountID, "account", "", "only this account's keys")
	list.Flags().StringVar(&filter.WorkloadID, "workload", "", "only this workload's keys")
	limitFlag(list, &limit)

	var version int64
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke an access key, finally, on every node", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter access-keys revoke AKIAEXAMPLEBUYER0001",
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			k, err := c.RevokeAccessKey(a.ctx, args[0], version)
			if err != nil {
				return err
			}
			return a.show(k, func() table { return accessKeysTable(k) })
		},
	}
	revoke.Flags().Int64Var(&version, "version", 0, "revoke only if the key is still at this version (exit 4 if not)")
	cmd.AddCommand(create, get, list, revoke)
	root.AddCommand(cmd)
}

func workloadCell(w *admin.Workload) string {
	if w == nil {
		return ""
	}
	return w.Platform + ":" + w.ID + "@" + w.Region
}

func accessKeysTable(ks ...admin.AccessKey) table {
	t := table{header: []string{"ID", "ACCOUNT", "WORKLOAD", "TEMPORARY", "CREDENTIALS ENDPOINT", "REVOKED", "VERSION"}}
	for _, k := range ks {
		revoked := ""
		if k.RevokedAt != nil {
			revoked = rfc3339(*k.RevokedAt)
		}
		t.add(k.ID, k.AccountID, workloadCell(k.Workload), yesNo(k.Temporary), yesNo(k.CredentialsEndpoint), revoked, strconv.FormatInt(k.Version, 10))
	}
	return t
}
