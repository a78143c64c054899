package main

import (
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mpmeter/mpmeter/admin"
)

// addSigningKeysCommands: the RegisterUsage signing keys on a server
// (mpmeter keys does the same on a database).
func addSigningKeysCommands(root *cobra.Command, a *app) {
	cmd := group("signing-keys", "RegisterUsage signing key versions (admin API; on a database: mpmeter keys)")
	a.apiFlags(cmd)
	list := &cobra.Command{
		Use: "list", Short: "List signing key versions, oldest first (-o json: with their public keys)", Args: args(cobra.NoArgs),
		Example: "  mpmeter signing-keys list",
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ks, err := c.SigningKeys(a.ctx)
			if err != nil {
				return err
			}
			return a.show(ks, func() table { return signingKeysTable(ks...) })
		},
	}
	rotate := &cobra.Command{
		Use: "rotate", Short: "Add a signing key version; older ones keep verifying", Args: args(cobra.NoArgs),
		Example: "  mpmeter signing-keys rotate",
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			k, err := c.RotateSigningKey(a.ctx)
			if err != nil {
				return err
			}
			return a.show(k, func() table { return signingKeysTable(k) })
		},
	}
	cmd.AddCommand(list, rotate)
	root.AddCommand(cmd)
}

func signingKeysTable(ks ...admin.SigningKey) table {
	t := table{header: []string{"VERSION", "CREATED", "CURRENT"}}
	for _, k := range ks {
		t.add(strconv.Itoa(k.Version), rfc3339(k.CreatedAt), yesNo(k.Current))
	}
	return t
}

// addExportSeedCommand: the marketplace as a seed file.
func addExportSeedCommand(root *cobra.Command, a *app) {
	var file string
	cmd := &cobra.Command{
		Use: "export-seed [-f FILE]", Short: "Write a server's marketplace as a seed file (secrets included)", Args: args(cobra.NoArgs),
		Long: `Write the running server's marketplace as a seed file that "mpmeter serve --seed"
applies back to the same state. It holds secrets (access keys'): treat it like
the database.`,
		Example: "  mpmeter export-seed -f marketplace.yaml",
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if file == "" {
				return c.ExportSeed(a.ctx, a.stdout)
			}
			// Written in full or not at all: a failed export leaves no
			// half a file.
			tmp, err := os.CreateTemp(dirOf(file), ".mpmeter-seed-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			if err := tmp.Chmod(0o600); err != nil {
				tmp.Close()
				return err
			}
			if err := c.ExportSeed(a.ctx, tmp); err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), file); err != nil {
				return err
			}
			a.note("wrote %s", file)
			return nil
		},
	}
	a.apiFlags(cmd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "write to this file (mode 0600) instead of standard output")
	root.AddCommand(cmd)
}
