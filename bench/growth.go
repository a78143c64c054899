package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
)

// GrowthConfig is a growth benchmark: how the store's speed changes as it
// fills up.
type GrowthConfig struct {
	// Records is the store's size at the last checkpoint.
	Records int64 `json:"records"`
	// Steps is the number of checkpoints after the empty store (default
	// 10: 0, N/10, 2N/10, ..., N).
	Steps int `json:"steps"`
	// Days is how many days of history the pre-filled records spread over,
	// at an even rate (default 30): the one-day usage report returns about
	// Records/Days rows.
	Days int `json:"days"`
	// Batch is the records per pre-fill RecordUsage call (default 5000),
	// Writers how many calls run at once (default 1 for SQLite, which has
	// one writer, 4 otherwise).
	Batch   int `json:"batch"`
	Writers int `json:"writers"`
	// OnPoint, when set, is called with the result so far after each
	// checkpoint (to save partial results of a long run).
	OnPoint func(*GrowthResult) `json:"-"`
}

// GrowthPoint is one checkpoint.
type GrowthPoint struct {
	// StoredRecords is how many usage records the store held when the
	// measurement started: pre-filled plus those earlier measurements
	// stored.
	StoredRecords   int64 `json:"stored_records"`
	PrefilledRecord int64 `json:"prefilled_records"`
	// PrefillSeconds is how long pre-filling up to this checkpoint took
	// (since the previous one), written straight into the store.
	PrefillSeconds       float64 `json:"prefill_seconds"`
	PrefillRecordsPerSec float64 `json:"prefill_records_per_sec"`
	Report               *Report `json:"report"`
	// VsEmpty is this point's headline figure over the empty store's.
	VsEmpty float64 `json:"vs_empty"`
	// ReportQuery is the one-day usage report (nil before a day of
	// history is filled).
	ReportQuery *QueryTiming `json:"report_query,omitempty"`
	// TotalsQuery is the same day's report summed by the database
	// (Store.UsageTotals): its Rows are report lines, its Records the
	// records they sum, which must equal ReportQuery's Rows.
	TotalsQuery *QueryTiming `json:"totals_query,omitempty"`
	// DBBytes is the database's size after the run; BytesPerRecord is its
	// growth since the store was seeded over the records stored by then.
	DBBytes        int64   `json:"db_bytes"`
	BytesPerRecord float64 `json:"bytes_per_record"`
}

// QueryTiming is one timed Store.Usage or Store.UsageTotals call.
type QueryTiming struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Rows    int       `json:"rows"`
	Records int64     `json:"records"` // the records the rows cover (a listing: one each)
	Seconds float64   `json:"seconds"`
}

// GrowthResult is one target's growth benchmark.
type GrowthResult struct {
	Target       string        `json:"target"`
	Error        string        `json:"error,omitempty"`
	Config       GrowthConfig  `json:"config"`
	EmptyDBBytes int64         `json:"empty_db_bytes"`
	Points       []GrowthPoint `json:"points"`
}

func (g *GrowthConfig) defaults(kind string) {
	if g.Steps <= 0 {
		g.Steps = 10
	}
	if g.Days <= 0 {
		g.Days = 30
	}
	if g.Batch <= 0 {
		g.Batch = 5000
	}
	if g.Writers <= 0 {
		g.Writers = 4
		if kind == KindSQLite || kind == KindCeiling {
			g.Writers = 1
		}
	}
}

// Growth measures load against t at checkpoints from the empty store to
// g.Records stored records. Between checkpoints it pre-fills the store
// directly through Store.RecordUsage in large batches (not through the
// API: that would take as long as the benchmark is slow), with
// BatchMeterUsage-shaped records of load's plan spread evenly over g.Days
// days of history that end 8 hours before the first measurement, so they
// never collide with the live load's slots. At each checkpoint it runs load
// (continuing its slots), times a one-day usage report (Store.Usage for the
// SaaS product over the newest complete pre-filled day), and measures the
// database's size.
//
// The live runs share one base time, so the whole benchmark must finish
// within an hour of the first measurement (the 6-hour usage window); later
// runs would see TimestampOutOfBoundsException.
func Growth(ctx context.Context, t *Target, load Config, g GrowthConfig, progress io.Writer) (*GrowthResult, error) {
	g.defaults(t.Kind)
	say := func(format string, args ...any) {
		if progress != nil {
			fmt.Fprintf(progress, "  [growth %s] "+format+"\n", append([]any{t.Name}, args...)...)
		}
	}
	res := &GrowthResult{Target: t.Name, Config: g}
	load.Target, load.Endpoint, load.Endpoints = t.Name, "", t.Endpoints
	if err := load.defaults(); err != nil {
		return nil, err
	}
	plan := load.Plan
	hours := int64(g.Days) * 24
	perHour := (g.Records + hours - 1) / hours
	pairs := int64(len(plan.Subscriptions)) * int64(len(plan.SaaSDimensions))
	if g.Records > 0 && perHour > pairs {
		return nil, fmt.Errorf("bench: growth: %d records over %d days need %d distinct (customer, dimension) pairs an hour; the plan has %d (more customers or days)", g.Records, g.Days, perHour, pairs)
	}
	load.Base = time.Now()
	histStart := load.Base.Truncate(time.Hour).Add(-8*time.Hour - time.Duration(hours-1)*time.Hour)

	var err error
	res.EmptyDBBytes, err = t.DBBytes(ctx)
	if err != nil {
		return nil, err
	}
	var prefilled, live int64
	var firstFigure float64
	for step := 0; step <= g.Steps; step++ {
		var pt GrowthPoint
		if step > 0 {
			target := g.Records * int64(step) / int64(g.Steps)
			began := time.Now()
			say("pre-filling %d → %d records", prefilled, target)
			if err := prefill(ctx, t.Store, plan, histStart, perHour, prefilled, target, g); err != nil {
				res.Error = err.Error()
				return res, nil
			}
			pt.PrefillSeconds = time.Since(began).Seconds()
			pt.PrefillRecordsPerSec = perSec(target-prefilled, pt.PrefillSeconds)
			prefilled = target
		}
		pt.PrefilledRecord = prefilled
		pt.StoredRecords = prefilled + live
		runtime.GC()
		debug.FreeOSMemory()
		say("measuring at %d stored records", pt.StoredRecords)
		rep, err := Run(ctx, load)
		if err != nil {
			return res, err
		}
		load.FirstBatchSlot, load.FirstMeterSlot = rep.NextBatchSlot, rep.NextMeterSlot
		live += rep.Records + rep.WarmupRecords
		pt.Report = &rep
		fig := headline(&rep)
		if step == 0 {
			firstFigure = fig
		}
		if firstFigure > 0 {
			pt.VsEmpty = fig / firstFigure
		}

		// The newest complete day of pre-filled history.
		if days := prefilled / max(perHour, 1) / 24; perHour > 0 && days > 0 {
			day := days - 1
			from := histStart.Add(time.Duration(day*24) * time.Hour)
			f := mpmeter.UsageFilter{ProductCode: plan.SaaSProduct, From: from.UTC(), To: from.Add(24 * time.Hour).UTC()}
			q, err := timeQuery(f, func() (int, int64, error) {
				recs, err := t.Store.Usage(ctx, f)
				return len(recs), int64(len(recs)), err
			})
			if err != nil {
				res.Error = fmt.Sprintf("usage report: %v", err)
				return res, nil
			}
			pt.ReportQuery = &q
			runtime.GC()
			debug.FreeOSMemory()

			tq, err := timeQuery(f, func() (int, int64, error) {
				totals, err := t.Store.UsageTotals(ctx, f)
				var n int64
				for _, l := range totals {
					n += l.Records
				}
				return len(totals), n, err
			})
			if err != nil {
				res.Error = fmt.Sprintf("usage totals: %v", err)
				return res, nil
			}
			pt.TotalsQuery = &tq
			if tq.Records != q.Records {
				res.Error = fmt.Sprintf("usage totals summed %d records; the listing of the same day has %d", tq.Records, q.Records)
				return res, nil
			}
		}
		pt.DBBytes, err = t.DBBytes(ctx)
		if err != nil {
			return res, err
		}
		if stored := prefilled + live; stored > 0 {
			pt.BytesPerRecord = float64(pt.DBBytes-res.EmptyDBBytes) / float64(stored)
		}
		res.Points = append(res.Points, pt)
		if g.OnPoint != nil {
			g.OnPoint(res)
		}
		say("%s at %d stored: %s %s, p99 %.2f ms, errors %s", t.Kind, pt.StoredRecords, Num(fig), headlineUnit(&rep), p99(&rep), Counts(rep.Errors))
	}
	return res, nil
}

// timeQuery times run, one report query over f's range; run returns how
// many rows it got and how many records they cover.
func timeQuery(f mpmeter.UsageFilter, run func() (rows int, records int64, err error)) (QueryTiming, error) {
	q := QueryTiming{From: f.From, To: f.To}
	began := time.Now()
	rows, records, err := run()
	q.Seconds = time.Since(began).Seconds()
	q.Rows, q.Records = rows, records
	return q, err
}

// headline is a report's main figure: records/s when it stored records,
// else requests/s.
func headline(r *Report) float64 {
	if r.Records > 0 {
		return r.RecordsPerSec
	}
	return r.RequestsPerSec
}

func headlineUnit(r *Report) string {
	if r.Records > 0 {
		return "records/s"
	}
	return "req/s"
}

// p99 is the p99 latency of the report's first operation.
func p99(r *Report) float64 {
	if len(r.Ops) == 0 {
		return 0
	}
	return r.Ops[0].Latency.P99
}

// prefill writes records [from, to) of the pre-fill sequence: record i is
// in history hour i/perHour, for the (customer, dimension) pair i%perHour.
func prefill(ctx context.Context, st mpmeter.Store, plan *Plan, histStart time.Time, perHour, from, to int64, g GrowthConfig) error {
	var next atomic.Int64
	next.Store(from)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	nc := int64(len(plan.Subscriptions))
	nd := int64(len(plan.SaaSDimensions))
	spacing := time.Hour / time.Duration(perHour)
	for range g.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]mpmeter.MeteringRecord, 0, g.Batch)
			for ctx.Err() == nil {
				lo := next.Add(int64(g.Batch)) - int64(g.Batch)
				if lo >= to {
					return
				}
				hi := min(lo+int64(g.Batch), to)
				batch = batch[:0]
				for i := lo; i < hi; i++ {
					hour, j := i/perHour, i%perHour
					sub := plan.Subscriptions[j%nc]
					dim := plan.SaaSDimensions[(j/nc)%nd]
					hourStart := histStart.Add(time.Duration(hour) * time.Hour)
					ts := hourStart.Add(time.Duration(j) * spacing)
					q := j%97 + 1
					batch = append(batch, mpmeter.MeteringRecord{
						MeteringRecordID:   uuid.NewString(),
						Kind:               mpmeter.UsageBatch,
						ProductCode:        plan.SaaSProduct,
						SellerAccountID:    plan.SellerAccount,
						CustomerAccountID:  sub.AccountID,
						CustomerIdentifier: sub.CustomerIdentifier,
						LicenseArn:         sub.LicenseArn,
						Dimension:          dim,
						Timestamp:          ts,
						Quantity:           q,
						// The service's key shape: agreement, dimension, hour.
						DedupKey:    "batch|" + sub.LicenseArn + "|" + dim + "|" + strconv.FormatInt(hourStart.Unix(), 10),
						Fingerprint: "prefill-" + strconv.FormatInt(q, 10),
						CreatedAt:   ts.Add(time.Minute),
					})
				}
				out, err := st.RecordUsage(ctx, batch, nil)
				if err == nil {
					for _, o := range out {
						if !o.Created {
							err = errors.New("bench: pre-fill record was deduplicated (a slot was reused)")
							break
						}
					}
				}
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("bench: pre-fill: %w", err); cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// WriteText writes the growth table in Markdown.
func (g *GrowthResult) WriteText(w io.Writer) error {
	var b bytes.Buffer
	if g.Error != "" {
		fmt.Fprintf(&b, "growth on %s failed: %s\n\n", g.Target, oneLine(g.Error))
	}
	fmt.Fprintf(&b, "| target | stored records | records/s (req/s) | vs empty | p99 ms | errors | one-day listing | one-day totals | DB size | bytes/record | peak RSS | pre-fill |\n")
	b.WriteString("|---|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range g.Points {
		r := p.Report
		report := "–"
		if q := p.ReportQuery; q != nil {
			report = fmt.Sprintf("%d rows in %.2f s", q.Rows, q.Seconds)
		}
		totals := "–"
		if q := p.TotalsQuery; q != nil {
			totals = fmt.Sprintf("%d lines in %.2f s", q.Rows, q.Seconds)
		}
		pre := "–"
		if p.PrefillSeconds > 0 {
			pre = fmt.Sprintf("%s rec/s", Num(p.PrefillRecordsPerSec))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f%% | %.2f | %s | %s | %s | %s | %.0f | %s | %s |\n",
			g.Target, Int(p.StoredRecords), Num(headline(r)), 100*p.VsEmpty, p99(r), Counts(r.Errors),
			report, totals, MiB(p.DBBytes), p.BytesPerRecord, MiB(r.PeakRSSBytes), pre)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Prime stores one record of every customer, an hour's worth spread over
// the hour a day before now, straight into the target's store: each
// customer's dictionary rows (its party and its agreement's dedup anchor)
// then exist, as for a seller who metered these customers before, and a
// run measures the steady state instead of every customer's first record
// (SuiteConfig.Prime, mpmeter-bench --prime). It returns how many records
// it stored: none for the ceiling, which stores nothing and is left alone.
func Prime(ctx context.Context, t *Target, plan *Plan) (int, error) {
	n := len(plan.Subscriptions)
	if t.Kind == KindCeiling || t.Store == nil || n == 0 {
		return 0, nil
	}
	g := GrowthConfig{}
	g.defaults(t.Kind)
	hour := time.Now().Add(-24 * time.Hour).Truncate(time.Hour)
	if err := prefill(ctx, t.Store, plan, hour, int64(n), 0, int64(n), g); err != nil {
		return 0, err
	}
	return n, nil
}
