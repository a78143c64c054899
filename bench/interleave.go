package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// RatioSummary is the median and the interquartile range of a target's
// per-round ratios to the baseline.
func (il *Interleaved) RatioSummary(target string) (median, q1, q3 float64, ok bool) {
	r := slices.Clone(il.Ratios[target])
	if len(r) == 0 {
		return 0, 0, 0, false
	}
	slices.Sort(r)
	return quantile(r, 0.5), quantile(r, 0.25), quantile(r, 0.75), true
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
	before, began := storeCounters(ctx, it.t.Endpoint()), time.Now()
	r, err := Run(ctx, l)
	if err != nil {
		return err
	}
	flushBegan := time.Now()
	if err := it.t.FlushAudit(ctx); err != nil {
		return fmt.Errorf("flushing the audit log: %w", err)
	}
	r.stretch(time.Since(flushBegan))
	after := storeCounters(ctx, it.t.Endpoint())
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
