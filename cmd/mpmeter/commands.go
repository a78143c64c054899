package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/keys"
	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/sqlstore"
	"github.com/mpmeter/mpmeter/vclock"
)

// keysCommand: "keys public --version N" and "keys rotate".
func keysCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || (args[0] != "public" && args[0] != "rotate" && args[0] != "list") {
		fmt.Fprintln(stderr, "usage: mpmeter keys public --version N | keys rotate | keys list   [--db PATH|URL]")
		return errUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	db := fs.String("db", "mpmeter.db", "SQLite database file, or a postgres:// URL")
	kek := fs.String("key-encryption-key", "", "secret the signing keys are encrypted with")
	version := fs.Int("version", 0, "key version (keys public; 0 means the newest)")
	if err := parseFlags(fs, args[1:], getenv, stderr); err != nil {
		return err
	}
	st, err := sqlstore.Open(ctx, *db, sqlstore.WithKeyEncryptionKey(*kek))
	if err != nil {
		return err
	}
	defer st.Close()
	if st.Secrets().Locked {
		return sqlstore.ErrKeyEncryptionKeyRequired
	}
	m, err := keys.New(keys.Config{Store: st, Clock: mpmeter.WallClock{}})
	if err != nil {
		return err
	}
	if err := m.Ensure(ctx); err != nil {
		return err
	}
	switch sub {
	case "public":
		v := *version
		if v == 0 {
			v = m.Latest()
		}
		pem, err := m.PublicKeyPEM(ctx, v)
		if err != nil {
			return err
		}
		_, err = stdout.Write(pem)
		return err
	case "rotate":
		v, err := m.Rotate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created signing key version %d\n", v)
	case "list":
		for _, v := range m.Versions() {
			fmt.Fprintln(stdout, strconv.Itoa(v))
		}
	}
	return nil
}

// seedCommand: "seed check FILE" and "seed demo".
func seedCommand(args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) == 2 && args[0] == "check":
		f, err := seed.Load(args[1])
		if err != nil {
			return err
		}
		if err := f.Validate(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: ok (%d accounts, %d products, %d subscriptions, %d registration tokens)\n", args[1], len(f.Accounts), len(f.Products), len(f.Subscriptions), len(f.RegistrationTokens))
		return nil
	case len(args) == 1 && args[0] == "demo":
		b, err := seed.Demo().Marshal()
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	fmt.Fprintln(stderr, "usage: mpmeter seed check FILE | seed demo")
	return errUsage
}

// clockCommand: "clock show|set TIME|advance DURATION|reset" on the virtual
// service clock every server on the database reads (within a second).
func clockCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	usage := func() error {
		fmt.Fprintln(stderr, "usage: mpmeter clock show | set RFC3339-TIME | advance DURATION | reset   [--db PATH|URL]")
		return errUsage
	}
	if len(args) == 0 {
		return usage()
	}
	sub, rest := args[0], args[1:]
	var operand string
	switch sub {
	case "set", "advance":
		if len(rest) == 0 {
			return usage()
		}
		operand, rest = rest[0], rest[1:]
	case "show", "reset":
	default:
		return usage()
	}
	fs := flag.NewFlagSet("clock "+sub, flag.ContinueOnError)
	db := fs.String("db", "mpmeter.db", "SQLite database file, or a postgres:// URL")
	if err := parseFlags(fs, rest, getenv, stderr); err != nil {
		return err
	}
	st, err := sqlstore.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := vclock.New(ctx, st, 0)
	if err != nil {
		return err
	}
	switch sub {
	case "set":
		t, perr := time.Parse(time.RFC3339, operand)
		if perr != nil {
			return fmt.Errorf("clock set: %w", perr)
		}
		err = c.Set(ctx, t)
	case "advance":
		d, perr := time.ParseDuration(operand)
		if perr != nil {
			return fmt.Errorf("clock advance: %w", perr)
		}
		err = c.Advance(ctx, d)
	case "reset":
		err = c.Reset(ctx)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "service clock: %s (offset %s from wall time)\n", c.Now().UTC().Format(time.RFC3339), c.Offset())
	return nil
}
