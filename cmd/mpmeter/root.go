package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/mpmeter/mpmeter/internal/adminclient"
)

// app is what every command runs with: the process's context, output and
// environment (tests give their own).
type app struct {
	ctx            context.Context
	stdout, stderr io.Writer
	getenv         func(string) string

	// The admin-API commands' flags (apiFlags), shared by every group:
	// only one command runs per process.
	server, token, output string
}

// newRoot is the command tree. Each area adds its commands with one
// add...Commands(root, a) call: a new area (usage, audit over HTTP,
// faults, notifications) is one more file and one more line here.
func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "mpmeter",
		Short: "The AWS Marketplace Metering Service, runnable anywhere",
		Long: `mpmeter — the AWS Marketplace Metering Service, runnable anywhere.

Start a server with "mpmeter serve --demo". The commands that manage a running
server talk to its admin API: --server URL (env MPMETER_SERVER, else
http://127.0.0.1:8080) and --token (env MPMETER_ADMIN_TOKEN). keys, audit and
clock --db work on the database without a server. Every command: --help.
Exit codes: 0 ok, 1 other error, 2 usage error, 3 not found, 4 conflict,
5 server error or unreachable (docs/cli.md).

The load generator is its own binary: go run ./cmd/mpmeter-bench -h`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noSubcommand,
		RunE: func(cmd *cobra.Command, args []string) error {
			if v, _ := cmd.Flags().GetBool("version"); v {
				return versionCommand(nil, a.stdout, a.stderr)
			}
			return missingSubcommand(cmd)
		},
	}
	root.Flags().Bool("version", false, "print the version (mpmeter version)")
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.HiddenDefaultCmd = false

	addServeCommand(root, a)
	addAccountsCommands(root, a)
	addAccessKeysCommands(root, a)
	addProductsCommands(root, a)
	addSubscriptionsCommands(root, a)
	addNotificationsCommands(root, a)
	addEntitlementsCommands(root, a)
	addTokensCommands(root, a)
	addSigningKeysCommands(root, a)
	addClockCommands(root, a)
	addExportSeedCommand(root, a)
	addDatabaseCommands(root, a) // keys, audit (and audit tail, over the server)
	addUsageCommands(root, a)
	addFaultsCommands(root, a)
	addToolCommands(root, a) // seed, version, healthcheck, bench
	return root
}

// Exit codes: what a script can tell apart.
const (
	exitOK       = 0
	exitOther    = 1 // anything else: a database that cannot be opened, 401 unauthorized, ...
	exitUsage    = 2 // the command line was wrong (or the server found a value in it invalid: 400)
	exitNotFound = 3 // 404: no such account, product, subscription, token, ...
	exitConflict = 4 // 409: it exists already, a stale --version, a state change the state forbids
	exitServer   = 5 // the server failed (5xx) or did not answer
)

// exitCode is the process's exit status for run's error.
func exitCode(err error) int {
	var ue usageError
	var unreachable *adminclient.UnreachableError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage), errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &unreachable):
		return exitServer
	}
	if errors.As(err, new(notFoundError)) {
		return exitNotFound
	}
	switch s := adminclient.StatusOf(err); {
	case s == 400:
		return exitUsage
	case s == 404:
		return exitNotFound
	case s == 409:
		return exitConflict
	case s >= 500:
		return exitServer
	}
	return exitOther
}

// usageError is a command line that is wrong: exit 2, with the message and
// a pointer to --help.
type usageError struct{ err error }

func (e usageError) Error() string {
	return e.err.Error() + " (see --help)"
}
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// args wraps a cobra argument check so its complaint is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// noSubcommand refuses an argument of a command that only groups others:
// cobra would print the help and succeed.
func noSubcommand(cmd *cobra.Command, a []string) error {
	if len(a) > 0 {
		return usagef("unknown command %q for %q", a[0], cmd.CommandPath())
	}
	return nil
}

// missingSubcommand: a group called alone prints its help on stderr and is
// a usage error.
func missingSubcommand(cmd *cobra.Command) error {
	cmd.SetOut(cmd.ErrOrStderr())
	cmd.Help()
	return errUsage
}

// group is a command that holds subcommands.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: noSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error { return missingSubcommand(cmd) },
	}
}

// apiFlags gives cmd and its subcommands the admin API's flags.
func (a *app) apiFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&a.server, "server", "", "the server's URL (default $MPMETER_SERVER, else http://127.0.0.1:8080)")
	f.StringVar(&a.token, "token", "", "the admin API's bearer token (default $MPMETER_ADMIN_TOKEN)")
	f.StringVarP(&a.output, "output", "o", "table", "table, json or yaml")
}

// defaultServer is where the admin-API commands go without --server and
// MPMETER_SERVER: serve's default --listen.
const defaultServer = "http://127.0.0.1:8080"

// client is the admin API client of --server / --token.
func (a *app) client() (*adminclient.Client, error) {
	if err := a.checkOutput(); err != nil {
		return nil, err
	}
	server := a.server
	if server == "" {
		server = a.getenv("MPMETER_SERVER")
	}
	if server == "" {
		server = defaultServer
	}
	token := a.token
	if token == "" {
		token = a.getenv("MPMETER_ADMIN_TOKEN")
	}
	c, err := adminclient.New(server, token, nil)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

func (a *app) checkOutput() error {
	switch a.output {
	case "table", "json", "yaml":
		return nil
	}
	return usagef("-o must be table, json or yaml, got %q", a.output)
}

// table is a human table: a header and rows, aligned by tabwriter.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// show prints v as -o asks: the API's JSON (a list as one JSON array),
// YAML of the same, or the table t builds.
func (a *app) show(v any, t func() table) error {
	return a.showWith(v, func(w io.Writer) error {
		tab := t()
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(tab.header, "\t"))
		for _, r := range tab.rows {
			for i := range r {
				r[i] = orDash(r[i])
			}
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		return tw.Flush()
	})
}

// showWith is show with the human form written by human.
func (a *app) showWith(v any, human func(io.Writer) error) error {
	switch a.output {
	case "json":
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		// Through JSON, so that YAML has the API's member names.
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			return err
		}
		out, err := yaml.Marshal(doc)
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(out)
		return err
	}
	return human(a.stdout)
}

// note is a line for people on stderr (not in -o json's way).
func (a *app) note(format string, args ...any) {
	if a.output == "table" {
		fmt.Fprintf(a.stderr, format+"\n", args...)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// dirOf is the directory of path, for a temporary file beside it.
func dirOf(path string) string { return filepath.Dir(path) }
