package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// The commands that keep their standard-library flag sets and parser
// (internal/cli.ParseFlags: flags, MPMETER_* environment, --config file):
// cobra hands them their arguments untouched (DisableFlagParsing) and
// shows their flags in --help from the same flag set, so each flag has one
// home.

// passThrough is a command whose arguments go to run as they are. For
// --help it prints cobra's help and then the flags run itself prints for
// -h.
// fromEnv says whether run's flags also come from the environment and a
// config file (those parsed by cli.ParseFlags).
func passThrough(a *app, use, short, long string, fromEnv bool, run func(args []string, stdout, stderr io.Writer) error) *cobra.Command {
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if wantsHelp(args) {
				return cmd.Help()
			}
			return run(args, a.stdout, a.stderr)
		},
	}
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) {
		var flags bytes.Buffer
		run([]string{"-h"}, io.Discard, &flags)
		w := c.OutOrStdout()
		fmt.Fprintf(w, "%s\n\nUsage:\n  %s\n\n", strings.TrimSpace(c.Long), c.UseLine())
		text := flags.String()
		if i := strings.Index(text, "\n"); strings.HasPrefix(text, "Usage of ") && i >= 0 {
			heading := "Flags:\n"
			if fromEnv {
				heading = "Flags (each also from MPMETER_<FLAG> in the environment or a --config YAML file):\n"
			}
			text = heading + text[i+1:]
		}
		fmt.Fprint(w, text)
	})
	return cmd
}

// wantsHelp: -h or --help before a "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func addServeCommand(root *cobra.Command, a *app) {
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Serve the Metering API (try: mpmeter serve --demo)",
		Long: `Serve the AWS Marketplace Metering API, the Entitlement Service and the admin API.

Every flag also comes from the environment (MPMETER_ + the flag name in upper
case, dashes as underscores: --listen is MPMETER_LISTEN) or from a YAML config
file (--config FILE, keys are flag names); flags beat the environment, which
beats the file.`,
		Example:            "  mpmeter serve --demo\n  MPMETER_ADMIN_TOKEN=secret mpmeter serve --db mpmeter.db --seed seed.yaml",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if wantsHelp(args) {
				return cmd.Help()
			}
			return serve(a.ctx, args, a.stdout, a.stderr, a.getenv)
		},
	}
	// For --help only: serve parses its arguments itself, with these flags.
	cmd.Flags().AddGoFlagSet(serveFlags(&serveConfig{}))
	cmd.Flags().String("config", "", "YAML config file whose keys are flag names (env MPMETER_CONFIG)")
	root.AddCommand(cmd)
}

// addDatabaseCommands: keys and audit, on the database (--db) without a
// server.
func addDatabaseCommands(root *cobra.Command, a *app) {
	keys := group("keys", "RegisterUsage signing keys, in the database (--db; a server: mpmeter signing-keys)")
	for _, sub := range []struct{ name, short string }{
		{"public", "Print a signing key's public key (PEM): --version N, 0 the newest"},
		{"rotate", "Add a signing key version"},
		{"list", "List the signing key versions"},
	} {
		keys.AddCommand(passThrough(a, sub.name+" [flags]", sub.short, sub.short+", in the database given by --db.", true,
			func(args []string, stdout, stderr io.Writer) error {
				return keysCommand(a.ctx, append([]string{sub.name}, args...), stdout, stderr, a.getenv)
			}))
	}
	root.AddCommand(keys)

	audit := group("audit", "The audit log: every API call (list, export: the database; tail: a server)")
	audit.Long = "The audit log: every call to the API, CloudTrail-style. list and export read the database (--db; no server needed); tail reads and follows a running server's (admin API). docs/audit.md."
	audit.AddCommand(
		passThrough(a, "list [filters] [flags]", "One page of audit events as a table or JSON", "One page of audit events as a table or JSON (-o json).", true,
			func(args []string, stdout, stderr io.Writer) error {
				return auditCommand(a.ctx, append([]string{"list"}, args...), stdout, stderr, a.getenv)
			}),
		passThrough(a, "export [filters] [flags]", "Every matching audit event as JSON lines", "Every matching audit event as JSON lines (one CloudTrail record per line).", true,
			func(args []string, stdout, stderr io.Writer) error {
				return auditCommand(a.ctx, append([]string{"export"}, args...), stdout, stderr, a.getenv)
			}))
	addAuditTailCommand(audit, a)
	root.AddCommand(audit)
}

// addToolCommands: seed files, the build, the health check, and the
// bench's forwarding notice.
func addToolCommands(root *cobra.Command, a *app) {
	seed := group("seed", "Seed files: validate one, print the demo")
	seed.AddCommand(&cobra.Command{
		Use: "check FILE", Short: "Validate a seed file", Args: args(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			return seedCommand([]string{"check", args[0]}, a.stdout, a.stderr)
		},
	}, &cobra.Command{
		Use: "demo", Short: "Print the built-in demo seed", Args: args(cobra.NoArgs),
		RunE: func(_ *cobra.Command, _ []string) error { return seedCommand([]string{"demo"}, a.stdout, a.stderr) },
	})
	root.AddCommand(seed)

	root.AddCommand(passThrough(a, "version [--json]", "Print the version, commit and build date", "Print the version, commit and build date (--json: what /healthz reports).", false,
		func(args []string, stdout, stderr io.Writer) error { return versionCommand(args, stdout, stderr) }))
	root.AddCommand(passThrough(a, "healthcheck [--url URL]", "Exit 0 if a server's /healthz answers 200 (container HEALTHCHECK)",
		"Exit 0 if a server's /healthz answers 200: a container HEALTHCHECK for images without curl.", false,
		func(args []string, stdout, stderr io.Writer) error {
			return healthcheckCommand(a.ctx, args, stdout, stderr, a.getenv)
		}))
	root.AddCommand(&cobra.Command{
		Use: "bench", Short: "Moved: the load generator is its own binary, mpmeter-bench", Hidden: true,
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(a.stderr, "mpmeter: the load generator is its own binary now, mpmeter-bench (go run ./cmd/mpmeter-bench, or go build ./cmd/mpmeter-bench), with the same flags")
			return errUsage
		},
	})
}
