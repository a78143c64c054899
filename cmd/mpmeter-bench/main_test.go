package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mpmeter/mpmeter/seed"
)

// The benchmark reads MPMETER_BENCH_* and names that variable when its
// value is bad; serve's MPMETER_* variables do not configure it.
func TestEnv(t *testing.T) {
	env := map[string]string{"MPMETER_BENCH_DURATION": "soon", "MPMETER_DURATION": "1s"}
	err := run(t.Context(), []string{"--quiet"}, &bytes.Buffer{}, &bytes.Buffer{}, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "MPMETER_BENCH_DURATION") {
		t.Fatalf("a bad MPMETER_BENCH_DURATION: %v; want an error naming it", err)
	}
}

// --write-seed writes the generated marketplace as a seed file that
// validates and has the size asked for.
func TestWriteSeed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.yaml")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--write-seed", path, "--customers", "30", "--workloads", "60"}, &out, &out, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "mpmeter-bench --endpoint URL --customers 30 --workloads 60") {
		t.Errorf("output: %s", out.String())
	}
	f, err := seed.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(f.RegistrationTokens) != 30 {
		t.Errorf("%d tokens, want 30", len(f.RegistrationTokens))
	}
}
