// Command mpmeter-bench is mpmeter's load generator and side-by-side
// benchmark (package bench): real SigV4-signed awsJson requests against
// in-process servers on SQLite and PostgreSQL and the storage-off ceiling,
// or against a running mpmeter. It is a tool apart from the product: the
// mpmeter binary does not contain it. scripts/benchmarks.sh runs it to
// regenerate docs/benchmarks.md.
//
//	mpmeter-bench [flags]
//
// Flags also come from the environment as MPMETER_BENCH_<FLAG> or from a
// YAML config file (--config FILE).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mpmeter/mpmeter/bench"
	"github.com/mpmeter/mpmeter/internal/cli"
	"github.com/mpmeter/mpmeter/seed"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv); err != nil {
		if !errors.Is(err, cli.ErrUsage) {
			fmt.Fprintln(os.Stderr, "mpmeter-bench:", err)
		}
		os.Exit(2)
	}
}

const benchUsage = `usage: mpmeter-bench [flags]

Side by side: the same load (real SigV4-signed awsJson requests) against
in-process servers — mpmeter on SQLite, on PostgreSQL, and the ceiling (the
same server with the usage write switched off) — one after the other, each
reported with its ratio to the ceiling. Client and servers share this
process and its CPUs.

  mpmeter-bench                                   sqlite and ceiling, BatchMeterUsage, 10s each
  mpmeter-bench --mix MeterUsage=1 --duration 20s
  mpmeter-bench --postgres-dsn postgres://u@host/db   adds the postgres target (a new database per run)
  mpmeter-bench --growth 10000000                 records/s, p99, report time, bytes/record as the store grows
  mpmeter-bench --endpoint http://host:8080       a running server seeded with: mpmeter-bench --write-seed FILE

Flags also come from the environment as MPMETER_BENCH_<FLAG> (e.g.
MPMETER_BENCH_POSTGRES_DSN) or from --config FILE.

`

// run is the command, with its environment passed in for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("mpmeter-bench", flag.ContinueOnError)
	targets := fs.String("targets", "", "comma-separated targets: sqlite, postgres, postgres2 (two nodes on one database), ceiling (default sqlite,ceiling, plus postgres when a DSN is given); a suffix :audit or :noaudit turns the target's audit log on or off (e.g. sqlite:noaudit,sqlite:audit for an A/B run)")
	withAudit := fs.Bool("audit", true, "servers record the audit log, as mpmeter serve does by default (the ceiling never does); a target's :audit/:noaudit suffix overrides it")
	pgDSN := fs.String("postgres-dsn", "", "PostgreSQL server URL for the postgres targets; each run creates (and drops) a database bench_<random> there")
	duration := fs.Duration("duration", 10*time.Second, "measured time per target (and per growth checkpoint)")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up before each measurement, not counted")
	concurrency := fs.Int("concurrency", 8, "concurrent clients, each with its own keep-alive connection")
	mixFlag := fs.String("mix", "BatchMeterUsage=1", "operation weights: BatchMeterUsage, MeterUsage, ResolveCustomer (e.g. BatchMeterUsage=3,ResolveCustomer=1)")
	customers := fs.Int("customers", 0, "customers in the generated marketplace (0: enough that no run repeats a slot)")
	workloads := fs.Int("workloads", 0, "EC2 workloads in the generated marketplace (0: enough that no run repeats a slot)")
	jsonPath := fs.String("json", "", "also write the results as JSON to this file")
	growth := fs.Int64("growth", 0, "growth mode: fill each storing target to this many records, measuring at checkpoints (0: off)")
	growthSteps := fs.Int("growth-steps", 10, "growth checkpoints after the empty store")
	growthKeep := fs.String("growth-keep", "", "growth mode: move the filled SQLite database to this file at the end instead of removing it (to measure a separate server process on it)")
	growthDays := fs.Int("growth-days", 30, "days of history the growth pre-fill spreads over (a one-day report returns about N/days rows)")
	endpoint := fs.String("endpoint", "", "bench a running server at this URL instead of in-process targets")
	key := fs.String("key", "", "with --endpoint: the seller's access key id (default: the bench marketplace's)")
	secret := fs.String("secret", "", "with --endpoint: the seller's secret access key")
	seedPath := fs.String("seed", "", "marketplace seed the load is derived from (default: the generated bench marketplace)")
	writeSeed := fs.String("write-seed", "", "write the generated bench marketplace (--customers, --workloads) as a seed file and exit")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of each target's run (warm-up and measurement; with several targets, FILE becomes FILE.<target>); client goroutines carry pprof label side=client, servers side=server")
	dir := fs.String("dir", "", "directory for the SQLite targets' databases (default: the system's temporary directory; use a real disk)")
	prime := fs.Bool("prime", false, "before measuring, store one record of every customer (a day back, straight into each storing target's store), so that the run meets customers seen before (the steady state of a seller metering hourly) instead of every customer's first record")
	interleave := fs.Duration("interleave", 0, "A/B mode: start every target, then switch the load between them every DURATION (ABBA order) until each had --duration; reports each round's ratio to the first target (e.g. --targets sqlite:noaudit,sqlite:audit --interleave 5s --duration 60s)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	render := fs.String("render", "", "print the tables of a --json result file and exit (runs nothing); several comma-separated files of --interleave runs of the same targets are pooled: the median of all their rounds with its confidence interval, and each run's own ratio")
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	// Only MPMETER_BENCH_* variables configure the benchmark (MPMETER_SEED
	// is serve's seed, not the benchmark's).
	if err := cli.ParseFlags(fs, args, "MPMETER_BENCH_", getenv, stderr); err != nil {
		return err
	}
	if *render != "" {
		var reps []*bench.SuiteReport
		for _, file := range splitList(*render) {
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var rep bench.SuiteReport
			if err := json.Unmarshal(b, &rep); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			reps = append(reps, &rep)
		}
		if len(reps) == 1 {
			printSuite(stdout, reps[0])
			return nil
		}
		// Several files: interleaved runs of the same targets, pooled.
		p, err := bench.PoolInterleaved(reps)
		if err != nil {
			return fmt.Errorf("--render: %w", err)
		}
		return p.WriteText(stdout)
	}
	mix, err := bench.ParseMix(*mixFlag)
	if err != nil {
		return err
	}
	if *concurrency < 1 || *duration <= 0 || *warmup < 0 || *growth < 0 || *growthSteps < 1 || *growthDays < 1 {
		return errors.New("--concurrency, --duration, --growth-steps and --growth-days must be positive, --warmup and --growth not negative")
	}
	progress := stderr
	if *quiet {
		progress = nil
	}
	command := "mpmeter-bench"
	for _, a := range args {
		command += " " + shellQuote(cli.RedactDSN(a)) // no passwords in the docs
	}

	// How big a marketplace: enough slots that no run repeats one.
	seconds := (*duration + *warmup).Seconds()
	if *growth > 0 {
		seconds *= float64(*growthSteps + 1)
	}
	// Generous rates, so that a faster server does not run out: records/s
	// and MeterUsage requests/s a run could reach against a storing target.
	rate := 200_000.0
	if *growth > 0 {
		rate = 100_000 // over many checkpoints; keeps seeding reasonable
	}
	size := bench.SizeFor(seconds, rate, 20_000)
	if *customers > 0 {
		size.Customers = *customers
	}
	if *workloads > 0 {
		size.Workloads = *workloads
	}
	if mix[bench.OpMeter] == 0 && *workloads == 0 {
		size.Workloads = 200 // unused: keep seeding short
	}
	if mix[bench.OpBatch] == 0 && mix[bench.OpResolve] == 0 && *customers == 0 {
		size.Customers = 1000
	}

	if *writeSeed != "" {
		b, err := bench.Marketplace(size.Customers, size.Workloads).Marshal()
		if err != nil {
			return err
		}
		if err := os.WriteFile(*writeSeed, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote the bench marketplace (%d customers, %d workloads) to %s\nserve it: mpmeter serve --seed %s --db FILE\nthen:     mpmeter-bench --endpoint URL --customers %d --workloads %d\n",
			size.Customers, size.Workloads, *writeSeed, *writeSeed, size.Customers, size.Workloads)
		return nil
	}

	var m *seed.File
	if *seedPath != "" {
		if m, err = seed.Load(*seedPath); err != nil {
			return err
		}
	} else {
		m = bench.Marketplace(size.Customers, size.Workloads)
	}
	load := bench.Config{
		Concurrency: *concurrency, Duration: *duration, Warmup: *warmup, Mix: mix,
		Customers: size.Customers, Workloads: size.Workloads,
	}

	var rep *bench.SuiteReport
	switch {
	case *endpoint != "":
		rep, err = benchEndpoint(ctx, *endpoint, m, *key, *secret, load, *cpuProfile, progress)
	default:
		list := *targets
		if list == "" {
			list = "sqlite,ceiling"
			if *pgDSN != "" {
				list = "sqlite,postgres,ceiling"
			}
		}
		cfg := bench.SuiteConfig{
			Targets: splitList(list), PostgresDSN: *pgDSN, Load: load, Seed: m,
			Dir: *dir, CPUProfile: *cpuProfile, Progress: progress, KeepDB: *growthKeep,
			NoAudit: !*withAudit, Interleave: *interleave, Prime: *prime,
		}
		if *growth > 0 {
			if *jsonPath != "" {
				// A growth run is long: keep what it measured so far.
				cfg.OnUpdate = func(partial *bench.SuiteReport) {
					partial.Command = command
					if b, err := json.MarshalIndent(partial, "", "  "); err == nil {
						os.WriteFile(*jsonPath, append(b, '\n'), 0o644)
					}
				}
			}
			rep, err = bench.RunGrowth(ctx, cfg, bench.GrowthConfig{Records: *growth, Steps: *growthSteps, Days: *growthDays})
		} else {
			rep, err = bench.RunSuite(ctx, cfg)
		}
	}
	if rep == nil {
		return err
	}
	rep.Command = command
	printSuite(stdout, rep)
	if *jsonPath != "" {
		b, jerr := json.MarshalIndent(rep, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(*jsonPath, append(b, '\n'), 0o644)
		}
		if err == nil {
			err = jerr
		}
	}
	return err
}

// benchEndpoint runs the load against a server someone else started.
func benchEndpoint(ctx context.Context, endpoint string, m *seed.File, key, secret string, load bench.Config, cpuProfile string, progress io.Writer) (*bench.SuiteReport, error) {
	if (key == "") != (secret == "") {
		return nil, errors.New("--key and --secret go together")
	}
	plan, err := bench.NewPlan(m, bench.Region, key, secret)
	if err != nil {
		return nil, err
	}
	load.Plan, load.Endpoint, load.Target = plan, endpoint, "external"
	if progress != nil {
		fmt.Fprintf(progress, "external %s: %d workers for %s (+%s warm-up); the server must hold the same marketplace (mpmeter-bench --write-seed) and no usage of the last 6 hours from an earlier run\n",
			endpoint, load.Concurrency, load.Duration, load.Warmup)
	}
	res := bench.TargetResult{Target: "external"}
	var stop func() error
	if cpuProfile != "" {
		var err error
		if stop, err = bench.StartCPUProfile(cpuProfile); err != nil {
			return nil, err
		}
		res.CPUProfile = cpuProfile
	}
	r, err := bench.Run(ctx, load)
	if stop != nil {
		stop()
	}
	if err != nil {
		res.Error = err.Error()
	} else {
		res.Report = &r
	}
	return &bench.SuiteReport{Machine: bench.ThisMachine(), Results: []bench.TargetResult{res}}, nil
}

func printSuite(w io.Writer, rep *bench.SuiteReport) {
	m := rep.Machine
	fmt.Fprintf(w, "\n%s\n%d CPUs (GOMAXPROCS %d), %s, %s, %s, %s\n\n", rep.Command, m.CPUs, m.GOMAXPROCS, m.CPUModel, m.MemTotal, m.GoVersion, m.Date)
	if len(rep.Results) > 0 {
		rep.WriteText(w)
	}
	for _, g := range rep.Growth {
		g.WriteText(w)
		fmt.Fprintln(w)
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// shellQuote quotes an argument for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=.,/:@+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
