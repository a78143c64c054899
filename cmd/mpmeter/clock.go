package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/internal/adminclient"
)

// addClockCommands: the virtual service clock, on a server (its admin API)
// or on the database. The rule: --db on the command line means the
// database; otherwise --server or MPMETER_SERVER means the server;
// otherwise the database (--db's default, MPMETER_DB, a --config file).
func addClockCommands(root *cobra.Command, a *app) {
	clock := group("clock", "The virtual service clock, shared by every node (a server's, or --db's)")
	clock.Long = `The virtual service clock every node on a database reads (within a second).

With --server URL or MPMETER_SERVER it goes through that server's admin API;
with --db on the command line (or neither) it changes the database directly,
without a server: --db PATH|URL, MPMETER_DB, or a --config file's db.
A negative duration goes after "--": mpmeter clock advance -- -30m.`
	a.apiFlags(clock)
	var db, config string
	clock.PersistentFlags().StringVar(&db, "db", "mpmeter.db", "SQLite database file, or a postgres:// URL (without a server)")
	clock.PersistentFlags().StringVar(&config, "config", "", "YAML config file whose keys are flag names (with --db; env MPMETER_CONFIG)")

	// onServer decides the rule above.
	onServer := func(cmd *cobra.Command) bool {
		if cmd.Flags().Changed("db") || cmd.Flags().Changed("config") {
			return false
		}
		return cmd.Flags().Changed("server") || a.getenv("MPMETER_SERVER") != ""
	}
	// onDatabase runs the database command with the flags given here.
	onDatabase := func(cmd *cobra.Command, args ...string) error {
		if cmd.Flags().Changed("db") {
			args = append(args, "--db", db)
		}
		if cmd.Flags().Changed("config") {
			args = append(args, "--config", config)
		}
		return clockCommand(a.ctx, args, a.stdout, a.stderr, a.getenv)
	}
	show := func(c admin.Clock) error {
		return a.showWith(c, func(w io.Writer) error {
			// The same line as the database command's.
			_, err := fmt.Fprintf(w, "service clock: %s (offset %s from wall time)\n", c.Now.UTC().Format(time.RFC3339), c.Offset)
			return err
		})
	}
	serverCommand := func(call func(*adminclient.Client) (admin.Clock, error)) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		clk, err := call(c)
		if err != nil {
			return err
		}
		return show(clk)
	}

	clock.AddCommand(&cobra.Command{
		Use: "show", Short: "Print the service clock", Args: args(cobra.NoArgs),
		Example: "  mpmeter clock show\n  mpmeter clock show --db mpmeter.db",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !onServer(cmd) {
				return onDatabase(cmd, "show")
			}
			return serverCommand(func(c *adminclient.Client) (admin.Clock, error) { return c.Clock(a.ctx) })
		},
	}, &cobra.Command{
		Use: "set TIME", Short: "Make the service clock read TIME (RFC 3339) now", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter clock set 2026-01-31T23:30:00Z",
		RunE: func(cmd *cobra.Command, args []string) error {
			if !onServer(cmd) {
				return onDatabase(cmd, "set", args[0])
			}
			t, err := time.Parse(time.RFC3339, args[0])
			if err != nil {
				return usagef("clock set: %v", err)
			}
			return serverCommand(func(c *adminclient.Client) (admin.Clock, error) { return c.SetClock(a.ctx, t) })
		},
	}, &cobra.Command{
		Use: "advance DURATION", Short: "Move the service clock by a duration (7h, 30m; negative after --)", Args: args(cobra.ExactArgs(1)),
		Example: "  mpmeter clock advance 7h\n  mpmeter clock advance -- -30m",
		RunE: func(cmd *cobra.Command, args []string) error {
			if !onServer(cmd) {
				return onDatabase(cmd, "advance", args[0])
			}
			if _, err := time.ParseDuration(args[0]); err != nil {
				return usagef("clock advance: %v", err)
			}
			return serverCommand(func(c *adminclient.Client) (admin.Clock, error) { return c.AdvanceClock(a.ctx, args[0]) })
		},
	}, &cobra.Command{
		Use: "reset", Short: "Put the service clock back on wall time", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !onServer(cmd) {
				return onDatabase(cmd, "reset")
			}
			return serverCommand(func(c *adminclient.Client) (admin.Clock, error) { return c.ResetClock(a.ctx) })
		},
	})
	root.AddCommand(clock)
}
