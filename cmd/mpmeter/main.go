// Command mpmeter runs the AWS Marketplace Metering Service locally.
//
//	mpmeter serve [--demo] [--listen ADDR] [--db PATH|URL] [--seed FILE] ...
//	mpmeter keys public --version N [--db ...]
//	mpmeter keys rotate [--db ...]
//	mpmeter clock show | set TIME | advance DURATION | reset [--db ...]
//	mpmeter audit list|export [filters] [--db ...]
//	mpmeter seed check FILE
//	mpmeter seed demo
//	mpmeter version [--json]
//	mpmeter healthcheck [--url URL]
//
// Every flag can also come from the environment (MPMETER_ + the flag name in
// upper case with dashes as underscores: --listen is MPMETER_LISTEN) or from a
// YAML config file (--config FILE, keys are flag names). Flags beat the
// environment, which beats the file.
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
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "mpmeter:", err)
		}
		os.Exit(2)
	}
}

// errUsage: the usage has been printed; exit 2 without a message.
var errUsage = cli.ErrUsage

const usage = `mpmeter — the AWS Marketplace Metering Service, runnable anywhere.

Usage:
  mpmeter serve [flags]              serve the Metering API (try: mpmeter serve --demo)
  mpmeter keys public --version N    print a RegisterUsage public key (PEM)
  mpmeter keys rotate                add a new signing key version
  mpmeter clock show|set T|advance D|reset   the virtual service clock (shared by every node)
  mpmeter audit list|export          the audit log: every API call (filters: mpmeter audit -h)
  mpmeter seed check FILE            validate a seed file
  mpmeter seed demo                  print the built-in demo seed
  mpmeter version                    print the version, commit and build date
  mpmeter healthcheck [--url URL]    exit 0 if a server's /healthz answers 200 (container HEALTHCHECK)

Run "mpmeter COMMAND -h" for a command's flags. The load generator is its
own binary: go run ./cmd/mpmeter-bench -h
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr, getenv)
	case "keys":
		return keysCommand(ctx, args[1:], stdout, stderr, getenv)
	case "seed":
		return seedCommand(args[1:], stdout, stderr)
	case "bench":
		fmt.Fprintln(stderr, "mpmeter: the load generator is its own binary now, mpmeter-bench (go run ./cmd/mpmeter-bench, or go build ./cmd/mpmeter-bench), with the same flags")
		return errUsage
	case "clock":
		return clockCommand(ctx, args[1:], stdout, stderr, getenv)
	case "version", "--version":
		return versionCommand(args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheckCommand(ctx, args[1:], stdout, stderr, getenv)
	case "audit":
		return auditCommand(ctx, args[1:], stdout, stderr, getenv)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
	return errUsage
}
