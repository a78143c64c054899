// Command mpmeter runs the AWS Marketplace Metering Service locally, and
// manages a running one through its admin API.
//
//	mpmeter serve [--demo] [--listen ADDR] [--db PATH|URL] [--seed FILE] ...
//	mpmeter accounts|access-keys|products|subscriptions|tokens|signing-keys ...   (admin API: --server, --token)
//	mpmeter usage list|get|report|export, faults add|list|clear, audit tail [--follow]   (admin API)
//	mpmeter clock show | set TIME | advance DURATION | reset   (--server, or --db)
//	mpmeter export-seed [-f FILE]
//	mpmeter keys public|rotate|list [--db ...]
//	mpmeter audit list|export [filters] [--db ...]
//	mpmeter seed check FILE | seed demo
//	mpmeter version [--json] | healthcheck [--url URL] | completion bash|zsh|fish|powershell
//
// The command tree is cobra's (root.go); docs/cli.md describes every
// command. serve and the database commands keep their flag parser
// (internal/cli.ParseFlags): every flag can also come from the environment
// (MPMETER_ + the flag name in upper case with dashes as underscores:
// --listen is MPMETER_LISTEN) or from a YAML config file (--config FILE,
// keys are flag names). Flags beat the environment, which beats the file.
//
// The load generator is a binary of its own, cmd/mpmeter-bench.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mpmeter/mpmeter/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	if err != nil && !errors.Is(err, errUsage) {
		fmt.Fprintln(os.Stderr, "mpmeter:", err)
	}
	stop()
	os.Exit(exitCode(err))
}

// errUsage: the usage has been printed; exit 2 without a message.
var errUsage = cli.ErrUsage

// run executes the command line args.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	root := newRoot(&app{ctx: ctx, stdout: stdout, stderr: stderr, getenv: getenv})
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
