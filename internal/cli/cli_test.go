package cli

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The prefix chooses the variables; the config file is named by
// PREFIX_CONFIG; flags > environment > file > defaults.
func TestParseFlagsPrefix(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bench.yaml")
	os.WriteFile(file, []byte("duration: 3s\nwarmup: 4s\nconcurrency: 5\n"), 0o644)
	env := map[string]string{"MPMETER_BENCH_CONFIG": file, "MPMETER_BENCH_WARMUP": "6s", "MPMETER_CONCURRENCY": "99"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	duration := fs.Duration("duration", time.Second, "")
	warmup := fs.Duration("warmup", time.Second, "")
	concurrency := fs.Int("concurrency", 1, "")
	quiet := fs.Bool("quiet", false, "")
	if err := ParseFlags(fs, []string{"--quiet"}, "MPMETER_BENCH_", func(k string) string { return env[k] }, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if *duration != 3*time.Second || *warmup != 6*time.Second || *concurrency != 5 || !*quiet {
		t.Fatalf("duration %v warmup %v concurrency %d quiet %v", *duration, *warmup, *concurrency, *quiet)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	if err := ParseFlags(fs, []string{"--nope"}, "X_", func(string) string { return "" }, &bytes.Buffer{}); !errors.Is(err, ErrUsage) {
		t.Fatalf("an unknown flag: %v, want ErrUsage", err)
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db?sslmode=disable":           "postgres://u:***@h:5432/db?sslmode=disable",
		"postgres://u@h/db":                                       "postgres://u@h/db",
		"mpmeter.db":                                              "mpmeter.db",
		"postgres://u@h/db?password=secret":                       "postgres://u@h/db?password=***",
		"postgresql://u@h/db?sslmode=disable&PASSWORD=secret&x=1": "postgresql://u@h/db?sslmode=disable&PASSWORD=***&x=1",
		"postgres://u:se/cr@et@h/db?sslpassword=secret":           "postgres://u:***@h/db?sslpassword=***",
		"host=h user=u password=secret dbname=db":                 "host=h user=u password=*** dbname=db",
		"host=h password = 'sec \\' ret' dbname=db":               "host=h password = *** dbname=db",
		"user=u sslpassword=secret":                               "user=u sslpassword=***",
	} {
		if got := RedactDSN(in); got != want || strings.Contains(got, "secret") {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}
