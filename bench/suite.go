package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter/seed"
	"github.com/mpmeter/mpmeter/storecache"
)

// SuiteConfig is a side-by-side benchmark: the same load against each
// target in turn.
type SuiteConfig struct {
	// Targets are target names (KindSQLite, ..., optionally with
	// AuditSuffix or NoAuditSuffix), run in this order.
	Targets []string
	// NoAudit is TargetOptions.NoAudit.
	NoAudit bool
	// PostgresDSN is for the PostgreSQL targets (see Start).
	PostgresDSN string
	// Load is the load of every run; its Endpoint, Target and Plan are
	// filled per target.
	Load Config
	// Seed is the marketplace; nil means Marketplace(Load.Customers,
	// Load.Workloads).
	Seed *seed.File
	// Dir is where SQLite targets live (TargetOptions.Dir).
	Dir string
	// KeepDB is TargetOptions.KeepDB for RunGrowth's SQLite target.
	KeepDB string
	// Prime runs Prime on every storing target before its run (and before
	// the first slice of an interleaved run).
	Prime bool
	// CPUProfile, when set, is a file to write a CPU profile of each
	// target's run to (warm-up and measurement only, not setup). With more
	// than one target the target's name is put before the extension:
	// cpu.out becomes cpu.sqlite.out.
	CPUProfile string
	// Progress gets a line per step; nil means none.
	Progress io.Writer
	// OnUpdate, when set, is called with the report so far whenever a
	// growth checkpoint completes.
	OnUpdate func(*SuiteReport)
	// Interleave, when positive, runs the targets side by side instead of
	// one after the other: all are started, and the load switches between
	// them every Interleave until each has had Load.Duration (see
	// runInterleaved). For A/B comparisons on a machine whose speed drifts.
	Interleave time.Duration
}

// SuiteReport is a side-by-side benchmark's result.
type SuiteReport struct {
	Machine Machine        `json:"machine"`
	Command string         `json:"command,omitempty"`
	Results []TargetResult `json:"results,omitempty"`
	// Growth holds growth benchmarks (RunGrowth), when run.
	Growth []*GrowthResult `json:"growth,omitempty"`
	// Interleaved says how an interleaved run (SuiteConfig.Interleave)
	// was cut, with each slice's ratio to the first target's.
	Interleaved *Interleaved `json:"interleaved,omitempty"`
}

// TargetResult is one target's part of a SuiteReport.
type TargetResult struct {
	Target string `json:"target"`
	// Error says why the target has no report (it failed to start, or its
	// run failed); the other targets still ran.
	Error        string  `json:"error,omitempty"`
	SetupSeconds float64 `json:"setup_seconds,omitempty"`
	Report       *Report `json:"report,omitempty"`
	// VsCeiling is, per operation, this target's figure (records/s for
	// BatchMeterUsage, requests/s otherwise) over the ceiling's.
	VsCeiling map[string]float64 `json:"vs_ceiling,omitempty"`
	// CPUProfile is the file the run's CPU profile went to.
	CPUProfile string `json:"cpu_profile,omitempty"`
	// AuditWriteShare is, with the audit log on, the share of the first
	// node's database write time (warm-up included) that went to audit
	// batches: mpmeter_audit_store_write_seconds over it plus
	// mpmeter_store_commit_seconds (both BEGIN to COMMIT). On SQLite's one
	// writer it bounds what the audit log takes from the usage writes,
	// measured within one run, so it holds however busy the machine is.
	AuditWriteShare *float64 `json:"audit_write_share,omitempty"`
	// Store is what the first node's database writer did over the run
	// (warm-up included), from its metrics and the process's I/O counters.
	Store *StoreStats `json:"store,omitempty"`
}

// StoreStats is the write side of one target's run: how the usage writes
// were grouped, how busy the writer was, and how many bytes went to disk.
type StoreStats struct {
	Seconds       float64 `json:"seconds"`        // wall time the counters cover
	Commits       float64 `json:"commits"`        // RecordUsage transactions (group commits on SQLite)
	Records       float64 `json:"records"`        // records they carried
	CommitSeconds float64 `json:"commit_seconds"` // their BEGIN-to-COMMIT time, summed
	AuditSeconds  float64 `json:"audit_seconds"`  // audit batches' write time, summed
	// WriteBytes is what the process had the kernel write to storage
	// (/proc/self/io write_bytes: the WAL, checkpoints, the audit log);
	// 0 where it cannot be read or the database is elsewhere (PostgreSQL).
	WriteBytes float64 `json:"write_bytes,omitempty"`
}

// RecordsPerCommit is the mean group size.
func (s *StoreStats) RecordsPerCommit() float64 { return s.Records / max(s.Commits, 1) }

// WriterBusy is the share of the wall time the database writer spent in
// write transactions (usage and audit). On SQLite, with one writer, near 1
// means the writer is what bounds the run.
func (s *StoreStats) WriterBusy() float64 {
	return (s.CommitSeconds + s.AuditSeconds) / max(s.Seconds, 1e-9)
}

// prepare returns what both RunSuite and RunGrowth start from: the
// progress printer, the marketplace and its load plan.
func (cfg SuiteConfig) prepare() (func(format string, args ...any), *seed.File, *Plan, error) {
	progress := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}
	m := cfg.Seed
	if m == nil {
		m = Marketplace(cfg.Load.Customers, cfg.Load.Workloads)
	}
	plan, err := NewPlan(m, Region, "", "")
	return progress, m, plan, err
}

// RunSuite runs cfg.Load against each target and compares each with the
// ceiling. A target that fails is reported with its error; RunSuite itself
// fails only when ctx ends or the configuration is wrong.
func RunSuite(ctx context.Context, cfg SuiteConfig) (*SuiteReport, error) {
	progress, m, plan, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	load := cfg.Load
	load.Plan = plan
	load.Endpoint = "-" // checked below, per target
	if err := load.defaults(); err != nil {
		return nil, err
	}
	load.Base = time.Time{} // each target's store is new: its own base

	tmpl, err := cfg.template(ctx, m, plan, progress)
	if err != nil {
		return nil, err
	}
	if tmpl != nil {
		defer tmpl.Remove()
	}
	if cfg.Interleave > 0 {
		return runInterleaved(ctx, cfg, load, m, tmpl, progress)
	}
	rep := &SuiteReport{Machine: ThisMachine()}
	for _, kind := range cfg.Targets {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		res := TargetResult{Target: kind}
		progress("target %s: starting", kind)
		t, err := Start(ctx, kind, cfg.PostgresDSN, m, TargetOptions{Dir: cfg.Dir, Template: tmpl, Progress: cfg.Progress, NoAudit: cfg.NoAudit})
		if err != nil {
			res.Error = err.Error()
			progress("target %s: %v", kind, err)
			rep.Results = append(rep.Results, res)
			continue
		}
		res.SetupSeconds = t.SetupSeconds
		if cfg.Prime {
			if err := primeTarget(ctx, t, plan, progress); err != nil {
				t.Stop()
				return rep, err
			}
		}
		l := load
		l.Target, l.Endpoint, l.Endpoints = kind, "", t.Endpoints
		l.Wrap = t.Kind == KindCeiling // it stores nothing: a slot may repeat
		progress("target %s: %d workers for %s (+%s warm-up) at %s", kind, l.Concurrency, l.Duration, l.Warmup, strings.Join(t.Endpoints, ", "))
		var stopProfile func() error
		if cfg.CPUProfile != "" {
			res.CPUProfile = profilePath(cfg.CPUProfile, kind, len(cfg.Targets))
			stopProfile, err = StartCPUProfile(res.CPUProfile)
			if err != nil {
				t.Stop()
				return rep, err
			}
		}
		before, began := t.storeCounters(ctx), time.Now()
		r, err := Run(ctx, l)
		after := t.storeCounters(ctx)
		if before != nil && after != nil && after.Commits > before.Commits {
			res.Store = &StoreStats{}
			res.Store.add(before, after, time.Since(began).Seconds())
		}
		if stopProfile != nil {
			if perr := stopProfile(); perr != nil && err == nil {
				err = perr
			}
		}
		if t.Audit {
			res.AuditWriteShare = after.auditShare()
		}
		t.Stop()
		if err != nil {
			res.Error = err.Error()
			progress("target %s: %v", kind, err)
		} else {
			res.Report = &r
			var b bytes.Buffer
			r.WriteText(&b)
			progress("%s", b.String())
		}
		rep.Results = append(rep.Results, res)
	}
	rep.compare()
	return rep, ctx.Err()
}

// template seeds the marketplace into a SQLite file that the SQLite
// targets (and the ceiling) copy, or returns nil when no target needs it.
func (cfg SuiteConfig) template(ctx context.Context, m *seed.File, plan *Plan, progress func(string, ...any)) (*Template, error) {
	for _, name := range cfg.Targets {
		if kind, _ := ParseTarget(name, cfg.NoAudit); kind == KindSQLite || kind == KindCeiling {
			progress("seeding the marketplace (%d customers, %d workloads) into a SQLite template", len(plan.Customers), len(plan.Workloads))
			began := time.Now()
			tmpl, err := NewTemplate(ctx, m, "")
			if err != nil {
				return nil, fmt.Errorf("bench: seeding: %w", err)
			}
			progress("seeded in %.1fs", time.Since(began).Seconds())
			return tmpl, nil
		}
	}
	return nil, nil
}

// auditShare is audit batch write time over all write time (nil when the
// counters could not be read or show no writes).
func (c *StoreStats) auditShare() *float64 {
	if c == nil || c.AuditSeconds+c.CommitSeconds == 0 {
		return nil
	}
	share := c.AuditSeconds / (c.AuditSeconds + c.CommitSeconds)
	return &share
}

// storeCounters reads a server's store metrics, and this process's bytes
// written (nil when the metrics cannot be read). Seconds is left 0.
func (t *Target) storeCounters(ctx context.Context) *StoreStats {
	c := storeCounters(ctx, t.Endpoint())
	if c != nil && t.DBPath == "" {
		// /proc/self/io is this process's: it is the store's writes only
		// for an in-process SQLite target.
		c.WriteBytes = 0
	}
	return c
}

func storeCounters(ctx context.Context, endpoint string) *StoreStats {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var c StoreStats
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "mpmeter_audit_store_write_seconds_sum":
			c.AuditSeconds = v
		case "mpmeter_store_commit_seconds_sum":
			c.CommitSeconds = v
		case "mpmeter_store_commit_seconds_count":
			c.Commits = v
		case "mpmeter_store_commit_records_sum":
			c.Records = v
		}
	}
	if sc.Err() != nil {
		return nil
	}
	c.WriteBytes = float64(max(procIO("write_bytes"), 0))
	return &c
}

// procIO is a field of /proc/self/io (-1 where there is none): write_bytes
// is what the process had the kernel send to storage, syscw its write
// calls.
func procIO(field string) int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+": "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// compare fills each result's VsCeiling.
func (s *SuiteReport) compare() {
	var ceiling *Report
	for _, r := range s.Results {
		if r.Target == KindCeiling && r.Report != nil {
			ceiling = r.Report
		}
	}
	if ceiling == nil {
		return
	}
	for i := range s.Results {
		r := s.Results[i].Report
		if r == nil {
			continue
		}
		s.Results[i].VsCeiling = map[string]float64{}
		for _, o := range r.Ops {
			if c := ceiling.Op(o.Op); c != nil && c.Figure() > 0 {
				s.Results[i].VsCeiling[o.Op] = o.Figure() / c.Figure()
			}
		}
	}
}

func profilePath(path, kind string, targets int) string {
	if targets <= 1 {
		return path
	}
	ext := ""
	if i := strings.LastIndexByte(path, '.'); i > strings.LastIndexByte(path, '/') {
		path, ext = path[:i], path[i:]
	}
	return path + "." + kind + ext
}

// StartCPUProfile starts writing a CPU profile to path; the returned func
// stops it and closes the file.
func StartCPUProfile(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// WriteText writes the side-by-side table in Markdown: one row per target
// and operation, with its ratio to the ceiling.
func (s *SuiteReport) WriteText(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString("| target | op | workers | req/s | records/s | p50 ms | p99 ms | max ms | errors | statuses | vs ceiling | peak RSS |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|---|---|--:|--:|\n")
	for _, r := range s.Results {
		if r.Report == nil {
			fmt.Fprintf(&b, "| %s | – | | | | | | | failed: %s | | | |\n", r.Target, oneLine(r.Error))
			continue
		}
		for _, o := range r.Report.Ops {
			ratio := "–"
			if v, ok := r.VsCeiling[o.Op]; ok {
				ratio = fmt.Sprintf("%.0f%% (%s)", 100*v, FigureUnit(o.Op))
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %.2f | %.2f | %.1f | %s | %s | %s | %s |\n",
				r.Target, o.Op, r.Report.Concurrency, Num(o.RequestsPerSec), recordsCell(o),
				o.Latency.P50, o.Latency.P99, o.Latency.Max, Counts(o.ErrorTypes), Counts(o.Statuses), ratio, MiB(r.Report.PeakRSSBytes))
		}
	}
	table := b.Len()
	for _, r := range s.Results {
		if st := r.Store; st != nil {
			fmt.Fprintf(&b, "\n%s: %s commits of %.1f records on average, the writer in a transaction %.0f%% of the time (usage %.0f%%, audit %.0f%%)",
				r.Target, Num(st.Commits), st.RecordsPerCommit(), 100*st.WriterBusy(), 100*st.CommitSeconds/max(st.Seconds, 1e-9), 100*st.AuditSeconds/max(st.Seconds, 1e-9))
			if st.WriteBytes > 0 {
				fmt.Fprintf(&b, ", %.0f bytes written to storage per record", st.WriteBytes/max(st.Records, 1))
			}
			b.WriteString(".")
		}
	}
	for _, r := range s.Results {
		if r.Report == nil {
			continue
		}
		revisit, ok := r.Report.CustomerRevisit()
		if !ok {
			continue
		}
		ttl := storecache.DefaultTTL
		fmt.Fprintf(&b, "\n%s: a customer came back every %.2fs; ", r.Target, revisit.Seconds())
		switch CacheRegime(revisit, ttl) {
		case CacheHits:
			fmt.Fprintf(&b, "its subscription reads hit the marketplace cache (%v).", ttl)
		case CacheMisses:
			fmt.Fprintf(&b, "its subscription reads missed the marketplace cache (%v), as for a seller metering each customer hourly.", ttl)
		default:
			fmt.Fprintf(&b, "that is near the marketplace cache's %v, where a small slowdown turns hits into misses: figures at this sizing are unstable, pin --customers (docs/benchmarks.md#running-it).", ttl)
		}
	}
	for _, r := range s.Results {
		if r.AuditWriteShare != nil {
			fmt.Fprintf(&b, "\n%s: audit batches held the database writer %.1f%% of its write time (mpmeter_audit_store_write_seconds / (that + mpmeter_store_commit_seconds)).", r.Target, 100**r.AuditWriteShare)
		}
	}
	if il := s.Interleaved; il != nil {
		fmt.Fprintf(&b, "\nInterleaved: %d rounds of one %.3gs slice per target, in ABBA order.", il.Rounds, il.SliceSeconds)
		for _, r := range s.Results {
			if st, ok := il.RatioSummary(r.Target); ok {
				fmt.Fprintf(&b, "\n%s over %s, per round: median %.3f (95%% confidence interval %.3f–%.3f; interquartile %.3f–%.3f; %d rounds).",
					r.Target, il.Baseline, st.Median, st.CILow, st.CIHigh, st.Q1, st.Q3, st.Rounds)
			}
		}
	}
	if b.Len() > table { // the notes below the table end with a newline too
		b.WriteString("\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// RunGrowth runs the growth benchmark (Growth) on each storing target of
// cfg.Targets in turn (the ceiling stores nothing and is skipped).
func RunGrowth(ctx context.Context, cfg SuiteConfig, g GrowthConfig) (*SuiteReport, error) {
	progress, m, plan, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	rep := &SuiteReport{Machine: ThisMachine()}
	var tmpl *Template
	for _, kind := range cfg.Targets {
		if base, _ := ParseTarget(kind, cfg.NoAudit); base == KindCeiling {
			continue
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if base, _ := ParseTarget(kind, cfg.NoAudit); base == KindSQLite && tmpl == nil {
			progress("seeding the marketplace (%d customers, %d workloads) into a SQLite template", len(plan.Customers), len(plan.Workloads))
			if tmpl, err = NewTemplate(ctx, m, ""); err != nil {
				return nil, fmt.Errorf("bench: seeding: %w", err)
			}
			defer tmpl.Remove()
		}
		progress("growth %s: starting", kind)
		t, err := Start(ctx, kind, cfg.PostgresDSN, m, TargetOptions{Dir: cfg.Dir, Template: tmpl, Progress: cfg.Progress, KeepDB: cfg.KeepDB, NoAudit: cfg.NoAudit})
		if err != nil {
			rep.Growth = append(rep.Growth, &GrowthResult{Target: kind, Config: g, Error: err.Error()})
			progress("growth %s: %v", kind, err)
			continue
		}
		load := cfg.Load
		load.Plan = plan
		gk := g
		gk.OnPoint = func(partial *GrowthResult) {
			if cfg.OnUpdate != nil {
				snap := *rep
				snap.Growth = append(append([]*GrowthResult(nil), rep.Growth...), partial)
				cfg.OnUpdate(&snap)
			}
		}
		res, err := Growth(ctx, t, load, gk, cfg.Progress)
		t.Stop()
		if err != nil {
			if ctx.Err() != nil {
				return rep, err
			}
			res = &GrowthResult{Target: kind, Config: g, Error: err.Error()}
		}
		res.Config.OnPoint = nil
		rep.Growth = append(rep.Growth, res)
	}
	return rep, ctx.Err()
}

// primeTarget is Prime with a progress line.
func primeTarget(ctx context.Context, t *Target, plan *Plan, progress func(string, ...any)) error {
	began := time.Now()
	n, err := Prime(ctx, t, plan)
	if err != nil {
		return fmt.Errorf("target %s: %w", t.Name, err)
	}
	if n > 0 {
		progress("target %s: primed %d customers (one record each, a day back) in %.1fs", t.Name, n, time.Since(began).Seconds())
	}
	return nil
}
