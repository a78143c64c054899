package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter/seed"
)

// Interleaved is how an interleaved run was cut (SuiteReport.Interleaved).
type Interleaved struct {
	// SliceSeconds is the length of one slice; Rounds how many rounds ran
	// (each gives every target one slice).
	SliceSeconds float64 `json:"slice_seconds"`
	Rounds       int     `json:"rounds"`
	// Baseline is the first target; Ratios holds, for every other target,
	// its figure (records/s for BatchMeterUsage, requests/s otherwise, of
	// the mix's first operation) over the baseline's in the same round,
	// one per round.
	Baseline string               `json:"baseline"`
	Ratios   map[string][]float64 `json:"ratios,omitempty"`
}

// RatioStats summarises a target's per-round ratios to the baseline.
type RatioStats struct {
	Rounds         int
	Median, Q1, Q3 float64
	// CILow and CIHigh bound the median's 95% confidence interval, by a
	// percentile bootstrap over the rounds (bootstrapMedianCI). A claim
	// such as "the audit log costs under 10%" holds when CILow > 0.9:
	// single rounds, and the sums of short runs, scatter by more than
	// that on a machine whose speed drifts (docs/benchmarks.md).
	CILow, CIHigh float64
}

// RatioSummary is the median, the interquartile range and the median's
// confidence interval of a target's per-round ratios to the baseline.
func (il *Interleaved) RatioSummary(target string) (RatioStats, bool) {
	r := slices.Clone(il.Ratios[target])
	if len(r) == 0 {
		return RatioStats{}, false
	}
	slices.Sort(r)
	lo, hi := bootstrapMedianCI(r, bootstrapResamples)
	return RatioStats{Rounds: len(r), Median: quantile(r, 0.5), Q1: quantile(r, 0.25), Q3: quantile(r, 0.75), CILow: lo, CIHigh: hi}, true
}

// bootstrapResamples is how many resamples bootstrapMedianCI draws: enough
// that the 2.5th and 97.5th percentiles of the medians are stable to the
// third decimal.
const bootstrapResamples = 4000

// bootstrapMedianCI is the 95% percentile-bootstrap confidence interval
// of the median of sorted: the 2.5th and 97.5th percentiles of the
// medians of resamples drawn with replacement. The generator has a fixed
// seed, so a result file renders the same interval every time. The rounds
// are treated as independent, which the ABBA order makes closer to true
// (a drift during a round favours neither target).
func bootstrapMedianCI(sorted []float64, resamples int) (lo, hi float64) {
	if len(sorted) < 2 {
		return sorted[0], sorted[0]
	}
	rng := rand.New(rand.NewPCG(1, 2))
	medians := make([]float64, resamples)
	sample := make([]float64, len(sorted))
	for i := range medians {
		for j := range sample {
			sample[j] = sorted[rng.IntN(len(sorted))]
		}
		slices.Sort(sample)
		medians[i] = quantile(sample, 0.5)
	}
	slices.Sort(medians)
	return quantile(medians, 0.025), quantile(medians, 0.975)
}

// quantile interpolates linearly between the sorted values around q.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}

// interleavedTarget is one target's state across the slices.
type interleavedTarget struct {
	t                    *Target
	res                  TargetResult
	parts                []Report
	base                 time.Time
	nextBatch, nextMeter int64
	measured             time.Duration
	store                *StoreStats
}

// runInterleaved is RunSuite with cfg.Interleave: every target is started
// first, then each round gives every target one slice of cfg.Interleave of
// load, in ABBA order (the order reverses every round, so that a drift in
// the machine's speed during a round favours no target), until each has
// had load.Duration. A target's first slice is preceded by the warm-up.
// Its figures are the sums over its slices (records over measured
// seconds, latency over every sample), its store counters the sums of
// per-slice differences. At the end of a slice the target writes its
// audit log's queue (FlushAudit), and the time that takes is added to
// the slice's measured time: left queued, those writes would land in the
// next target's slice. Charged serially like this they cost a little
// more than under steady load, where they overlap the requests' CPU
// work: the audit log's cost comes out, if anything, too high. Each
// round also gives a ratio to the first target, whose median is robust
// to a round the machine was slow in.
func runInterleaved(ctx context.Context, cfg SuiteConfig, load Config, m *seed.File, tmpl *Template, progress func(string, ...any)) (*SuiteReport, error) {
	if cfg.CPUProfile != "" {
		return nil, errors.New("bench: a CPU profile is per target; it cannot be taken of an interleaved run")
	}
	rep := &SuiteReport{Machine: ThisMachine()}
	var live []*interleavedTarget
	defer func() {
		for _, it := range live {
			it.t.Stop()
		}
	}()
	for _, name := range cfg.Targets {
		it := &interleavedTarget{res: TargetResult{Target: name}}
		progress("target %s: starting", name)
		t, err := Start(ctx, name, cfg.PostgresDSN, m, TargetOptions{Dir: cfg.Dir, Template: tmpl, Progress: cfg.Progress, NoAudit: cfg.NoAudit})
		if err != nil {
			it.res.Error = err.Error()
			progress("target %s: %v", name, err)
			rep.Results = append(rep.Results, it.res)
			continue
		}
		it.t, it.res.SetupSeconds = t, t.SetupSeconds
		live = append(live, it)
		if cfg.Prime {
			if err := primeTarget(ctx, t, load.Plan, progress); err != nil {
				return rep, err
			}
		}
	}
	if len(live) == 0 {
		return rep, ctx.Err()
	}
	il := &Interleaved{SliceSeconds: cfg.Interleave.Seconds(), Baseline: live[0].res.Target, Ratios: map[string][]float64{}}
	rep.Interleaved = il
	figureOp := ""
	for _, op := range Ops {
		if load.Mix[op] > 0 {
			figureOp = op
			break
		}
	}
	for round := 0; ; round++ {
		order := slices.Clone(live)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		ran := false
		for _, it := range order {
			if it.res.Error != "" || it.measured >= load.Duration {
				continue
			}
			ran = true
			if err := it.slice(ctx, load, cfg.Interleave, progress); err != nil {
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				it.res.Error = err.Error()
				progress("target %s: %v", it.res.Target, err)
			}
		}
		if !ran {
			break
		}
		il.Rounds = round + 1
		base := live[0]
		if len(base.parts) <= round {
			continue
		}
		for _, it := range live[1:] {
			if len(it.parts) > round {
				b, o := base.parts[round].Op(figureOp), it.parts[round].Op(figureOp)
				if b != nil && o != nil && b.Figure() > 0 {
					il.Ratios[it.res.Target] = append(il.Ratios[it.res.Target], o.Figure()/b.Figure())
				}
			}
		}
	}
	for _, it := range live {
		if len(it.parts) > 0 {
			r := combineReports(it.parts)
			it.res.Report = &r
		}
		it.res.Store = it.store
		if it.t.Audit {
			it.res.AuditWriteShare = it.store.auditShare()
		}
		rep.Results = append(rep.Results, it.res)
	}
	rep.compare()
	return rep, ctx.Err()
}

// slice runs one slice of load against the target, continuing its slot
// sequence, and adds the store counters' difference over it.
func (it *interleavedTarget) slice(ctx context.Context, load Config, d time.Duration, progress func(string, ...any)) error {
	l := load
	l.Target, l.Endpoint, l.Endpoints = it.res.Target, "", it.t.Endpoints
	l.Wrap = it.t.Kind == KindCeiling
	l.Duration = min(d, load.Duration-it.measured)
	if len(it.parts) == 0 {
		it.base = time.Now()
	} else {
		l.Warmup = 0
	}
	l.Base, l.FirstBatchSlot, l.FirstMeterSlot = it.base, it.nextBatch, it.nextMeter
	before, began := it.t.storeCounters(ctx), time.Now()
	r, err := Run(ctx, l)
	if err != nil {
		return err
	}
	flushBegan := time.Now()
	if err := it.t.FlushAudit(ctx); err != nil {
		return fmt.Errorf("flushing the audit log: %w", err)
	}
	r.stretch(time.Since(flushBegan))
	after := it.t.storeCounters(ctx)
	if before != nil && after != nil {
		if it.store == nil {
			it.store = &StoreStats{}
		}
		it.store.add(before, after, time.Since(began).Seconds())
	}
	it.parts = append(it.parts, r)
	it.nextBatch, it.nextMeter = r.NextBatchSlot, r.NextMeterSlot
	it.measured += time.Duration(r.Seconds * float64(time.Second))
	progress("target %s: slice %d, %s records/s", it.res.Target, len(it.parts), Num(r.RecordsPerSec))
	return nil
}

// stretch adds d to the measured time, with nothing done in it, and
// recomputes the rates.
func (r *Report) stretch(d time.Duration) {
	r.Seconds += d.Seconds()
	r.RequestsPerSec, r.RecordsPerSec = perSec(r.Requests, r.Seconds), perSec(r.Records, r.Seconds)
	for i := range r.Ops {
		o := &r.Ops[i]
		o.RequestsPerSec, o.RecordsPerSec = perSec(o.Requests, r.Seconds), perSec(o.Records, r.Seconds)
	}
}

// add adds the counters' growth from before to after, over secs.
func (s *StoreStats) add(before, after *StoreStats, secs float64) {
	s.Seconds += secs
	s.Commits += after.Commits - before.Commits
	s.Records += after.Records - before.Records
	s.CommitSeconds += after.CommitSeconds - before.CommitSeconds
	s.AuditSeconds += after.AuditSeconds - before.AuditSeconds
	if after.WriteBytes > 0 {
		s.WriteBytes += after.WriteBytes - before.WriteBytes
	}
}

// combineReports is the report of the slices together: counts summed,
// rates over the summed measured time, latencies over every sample,
// the first slice's warm-up and start, the last one's slots and RSS.
func combineReports(parts []Report) Report {
	first, last := parts[0], parts[len(parts)-1]
	out := first
	out.Seconds, out.Requests, out.Records = 0, 0, 0
	out.Errors = map[string]int64{}
	out.Ops = nil
	out.NextBatchSlot, out.NextMeterSlot, out.RSSBytes = last.NextBatchSlot, last.NextMeterSlot, last.RSSBytes
	ops := map[string]*stats{}
	for _, p := range parts {
		out.Seconds += p.Seconds
		out.PeakRSSBytes = max(out.PeakRSSBytes, p.PeakRSSBytes)
		for _, o := range p.Ops {
			s := ops[o.Op]
			if s == nil {
				s = &stats{}
				ops[o.Op] = s
			}
			s.merge(&stats{requests: o.Requests, errors: o.Errors, records: o.Records, latencies: p.latencies[o.Op],
				statuses: o.Statuses, errTypes: o.ErrorTypes})
		}
	}
	out.latencies = map[string][]time.Duration{}
	for _, op := range Ops {
		s := ops[op]
		if s == nil {
			continue
		}
		out.Ops = append(out.Ops, OpReport{Op: op, Requests: s.requests, Errors: s.errors, Records: s.records,
			RequestsPerSec: perSec(s.requests, out.Seconds), RecordsPerSec: perSec(s.records, out.Seconds),
			Latency: latencyOf(s.latencies), Statuses: s.statuses, ErrorTypes: s.errTypes})
		out.latencies[op] = s.latencies
		out.Requests += s.requests
		out.Records += s.records
		for k, v := range s.errTypes {
			out.Errors[k] += v
		}
	}
	out.RequestsPerSec = perSec(out.Requests, out.Seconds)
	out.RecordsPerSec = perSec(out.Records, out.Seconds)
	return out
}

// Pooled is several interleaved runs of the same targets taken together
// (mpmeter-bench --render a.json,b.json,...): every round of every run,
// and each run's own ratio of its sums (records/s over the whole run).
type Pooled struct {
	Runs        int
	Interleaved Interleaved
	// RunRatios holds, for every target but the baseline, one ratio per
	// run: its figure summed over the run over the baseline's.
	RunRatios map[string][]float64
}

// PoolInterleaved pools interleaved runs. They must share the baseline
// and the slice length; a target missing from a run adds nothing for it.
func PoolInterleaved(reps []*SuiteReport) (*Pooled, error) {
	if len(reps) == 0 {
		return nil, errors.New("no runs to pool")
	}
	p := &Pooled{Runs: len(reps), RunRatios: map[string][]float64{}}
	for i, rep := range reps {
		il := rep.Interleaved
		if il == nil {
			return nil, fmt.Errorf("run %d is not an interleaved run (--interleave)", i+1)
		}
		if i == 0 {
			p.Interleaved = Interleaved{SliceSeconds: il.SliceSeconds, Baseline: il.Baseline, Ratios: map[string][]float64{}}
		} else if il.Baseline != p.Interleaved.Baseline || il.SliceSeconds != p.Interleaved.SliceSeconds {
			return nil, fmt.Errorf("run %d has baseline %s and %gs slices, run 1 %s and %gs", i+1, il.Baseline, il.SliceSeconds, p.Interleaved.Baseline, p.Interleaved.SliceSeconds)
		}
		p.Interleaved.Rounds += il.Rounds
		for t, r := range il.Ratios {
			p.Interleaved.Ratios[t] = append(p.Interleaved.Ratios[t], r...)
		}
		var base *Report
		for _, res := range rep.Results {
			if res.Target == il.Baseline {
				base = res.Report
			}
		}
		if base == nil || len(base.Ops) == 0 {
			continue
		}
		b := base.Ops[0]
		for _, res := range rep.Results {
			if res.Target == il.Baseline || res.Report == nil {
				continue
			}
			if o := res.Report.Op(b.Op); o != nil && b.Figure() > 0 {
				p.RunRatios[res.Target] = append(p.RunRatios[res.Target], o.Figure()/b.Figure())
			}
		}
	}
	return p, nil
}

// WriteText prints, per target, the pooled rounds' summary and the runs'
// own ratios.
func (p *Pooled) WriteText(w io.Writer) error {
	il := &p.Interleaved
	var b strings.Builder
	fmt.Fprintf(&b, "Pooled: %d runs, %d rounds of one %.3gs slice per target.\n", p.Runs, il.Rounds, il.SliceSeconds)
	for _, t := range slices.Sorted(maps.Keys(il.Ratios)) {
		st, ok := il.RatioSummary(t)
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "%s over %s, per round: median %.3f (95%% confidence interval %.3f–%.3f; interquartile %.3f–%.3f; %d rounds).\n",
			t, il.Baseline, st.Median, st.CILow, st.CIHigh, st.Q1, st.Q3, st.Rounds)
		if runs := p.RunRatios[t]; len(runs) > 0 {
			parts := make([]string, len(runs))
			for i, r := range runs {
				parts[i] = fmt.Sprintf("%.3f", r)
			}
			fmt.Fprintf(&b, "%s over %s, each run's sums: %s.\n", t, il.Baseline, strings.Join(parts, ", "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
