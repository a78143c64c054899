package main

import (
	"flag"
	"io"

	"github.com/mpmeter/mpmeter/internal/cli"
)

// parseFlags parses a command's flags, also from MPMETER_* variables and
// --config (cli.ParseFlags).
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string, stderr io.Writer) error {
	return cli.ParseFlags(fs, args, "MPMETER_", getenv, stderr)
}
