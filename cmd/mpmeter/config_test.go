package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter/sqlstore"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mpmeter.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:7000\ndb: from-file.db\nusage-window: 2h\nmax-skew: 1m\n"), 0o644)
	env := map[string]string{"MPMETER_CONFIG": file, "MPMETER_DB": "from-env.db", "MPMETER_USAGE_WINDOW": "3h"}
	var c serveConfig
	fs := serveFlags(&c)
	if err := parseFlags(fs, []string{"--usage-window", "4h"}, func(k string) string { return env[k] }, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if c.listen != "127.0.0.1:7000" || c.db != "from-env.db" || c.usageWindow != 4*time.Hour || c.maxSkew != time.Minute {
		t.Fatalf("flags > env > file > defaults broken: %+v", c)
	}
	if c.tokenTTL != 4*time.Hour {
		t.Fatalf("default lost: %v", c.tokenTTL)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listne: x\n"), 0o644)
	cases := map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"unknown file key": {[]string{"--config", bad}, nil, `unknown setting "listne"`},
		"bad env value":    {nil, map[string]string{"MPMETER_USAGE_WINDOW": "soon"}, "MPMETER_USAGE_WINDOW"},
		"stray argument":   {[]string{"extra"}, nil, "unexpected argument"},
	}
	for name, tc := range cases {
		var c serveConfig
		err := parseFlags(serveFlags(&c), tc.args, func(k string) string { return tc.env[k] }, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
	var c serveConfig
	parseFlags(serveFlags(&c), []string{"--usage-window", "-1h", "--pprof", "--listen", "nope"}, func(string) string { return "" }, &bytes.Buffer{})
	err := c.validate()
	for _, want := range []string{"--usage-window must be positive", "--pprof needs --admin-listen", "--listen"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v lacks %q", err, want)
		}
	}
}

func TestSeedCommands(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"seed", "demo"}, &out, &out, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "demo.yaml")
	os.WriteFile(f, out.Bytes(), 0o644)
	out.Reset()
	if err := run(t.Context(), []string{"seed", "check", f}, &out, &out, func(string) string { return "" }); err != nil || !strings.Contains(out.String(), "ok (") {
		t.Fatalf("seed check of the exported demo: %v %s", err, out.String())
	}
	os.WriteFile(f, []byte("accounts:\n  - id: \"12\"\n"), 0o644)
	if err := run(t.Context(), []string{"seed", "check", f}, &out, &out, func(string) string { return "" }); err == nil {
		t.Fatal("an invalid seed passed seed check")
	}
}

func TestKeysCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "k.db")
	env := func(k string) string {
		if k == "MPMETER_KEY_ENCRYPTION_KEY" {
			return "kek"
		}
		return ""
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"keys", "public", "--db", db}, &out, &out, env); err != nil || !strings.HasPrefix(out.String(), "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("keys public: %v %s", err, out.String())
	}
	v1 := out.String()
	out.Reset()
	if err := run(t.Context(), []string{"keys", "rotate", "--db", db}, &out, &out, env); err != nil || !strings.Contains(out.String(), "version 2") {
		t.Fatalf("keys rotate: %v %s", err, out.String())
	}
	out.Reset()
	run(t.Context(), []string{"keys", "public", "--db", db, "--version", "1"}, &out, &out, env)
	if out.String() != v1 {
		t.Fatal("version 1 changed after rotation")
	}
	// The private keys are encrypted: another encryption key cannot use them.
	err := run(t.Context(), []string{"keys", "public", "--db", db, "--key-encryption-key", "other"}, &out, &out, func(string) string { return "" })
	if !errors.Is(err, sqlstore.ErrWrongKeyEncryptionKey) {
		t.Fatalf("wrong encryption key: %v", err)
	}
	// Without one, the keys command refuses an encrypted database.
	err = run(t.Context(), []string{"keys", "public", "--db", db}, &out, &out, func(string) string { return "" })
	if !errors.Is(err, sqlstore.ErrKeyEncryptionKeyRequired) {
		t.Fatalf("no encryption key: %v", err)
	}
	_ = flag.ContinueOnError
}

func TestClockCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "c.db")
	none := func(string) string { return "" }
	var out bytes.Buffer
	if err := run(t.Context(), []string{"clock", "set", "2020-02-03T04:05:06Z", "--db", db}, &out, &out, none); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "service clock: 2020-02-03T04:05") {
		t.Fatalf("set: %s", out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"clock", "advance", "26h", "--db", db}, &out, &out, none); err != nil || !strings.Contains(out.String(), "2020-02-04T06:05") {
		t.Fatalf("advance: %v %s", err, out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"clock", "show", "--db", db}, &out, &out, none); err != nil || !strings.Contains(out.String(), "2020-02-04T06:05") {
		t.Fatalf("show (a new process reads the stored offset): %v %s", err, out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"clock", "reset", "--db", db}, &out, &out, none); err != nil || !strings.Contains(out.String(), "offset 0s") {
		t.Fatalf("reset: %v %s", err, out.String())
	}
	if err := run(t.Context(), []string{"clock", "set", "yesterday", "--db", db}, &out, &out, none); err == nil {
		t.Fatal("an unparsable time was accepted")
	}
}

// "mpmeter bench" is gone: it says where the load generator went.
func TestBenchMoved(t *testing.T) {
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"bench", "--duration", "1s"}, &bytes.Buffer{}, &stderr, func(string) string { return "" })
	if err == nil || !strings.Contains(stderr.String(), "mpmeter-bench") {
		t.Fatalf("mpmeter bench: %v, %q; want a usage error pointing to mpmeter-bench", err, stderr.String())
	}
}

func TestServeRegionsAndWindowFlags(t *testing.T) {
	var c serveConfig
	if err := parseFlags(serveFlags(&c), nil, func(string) string { return "" }, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if c.futureTolerance != 15*time.Minute || c.usageWindow != 6*time.Hour || c.regions != "" {
		t.Fatalf("defaults: future-tolerance %v, usage-window %v, regions %q", c.futureTolerance, c.usageWindow, c.regions)
	}
	env := map[string]string{"MPMETER_REGIONS": "eu-future-1,MeterUsage=us-isof-south-1", "MPMETER_USAGE_WINDOW": "24h"}
	c = serveConfig{}
	if err := parseFlags(serveFlags(&c), nil, func(k string) string { return env[k] }, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err != nil || c.regions != env["MPMETER_REGIONS"] || c.usageWindow != 24*time.Hour {
		t.Fatalf("from the environment: %v, %+v", err, c)
	}
	c = serveConfig{}
	parseFlags(serveFlags(&c), []string{"--regions", "Meter=eu-future-1"}, func(string) string { return "" }, &bytes.Buffer{})
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "--regions") {
		t.Fatalf("a bad --regions: %v", err)
	}
}

// /debug/pprof/cmdline shows no secret given as a flag.
func TestRedactArgs(t *testing.T) {
	got := strings.Join(redactArgs([]string{"mpmeter", "serve", "--key-encryption-key", "kek1", "-key-encryption-key=kek2",
		"--db=postgres://u:pw1@h/db", "--db", "host=h password=pw2", "--listen", "x"}), " ")
	for _, secret := range []string{"kek1", "kek2", "pw1", "pw2"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q shows %s", got, secret)
		}
	}
	if !strings.Contains(got, "--listen x") || !strings.Contains(got, "--db=postgres://u:***@h/db") {
		t.Errorf("got %q", got)
	}
}
