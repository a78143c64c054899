package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mpmeter/mpmeter"
)

// Operations the load generator sends.
const (
	OpBatch   = mpmeter.OpBatchMeterUsage
	OpMeter   = mpmeter.OpMeterUsage
	OpResolve = mpmeter.OpResolveCustomer
)

// Ops are the operations in report order.
var Ops = []string{OpBatch, OpMeter, OpResolve}

// BatchSize is how many records a BatchMeterUsage request carries.
const BatchSize = 25

// Error types the client itself reports (besides the server's __type).
const (
	// ErrSlotsExhausted: the plan has no new (customer, dimension, hour)
	// slot left; the worker stops rather than send duplicates.
	ErrSlotsExhausted = "bench:SlotsExhausted"
	// ErrTransport: the request got no HTTP answer.
	ErrTransport = "bench:Transport"
	// ErrBadAnswer: a 200 whose body the client could not read.
	ErrBadAnswer = "bench:BadAnswer"
	// ErrUnprocessed: a BatchMeterUsage answer with UnprocessedRecords.
	ErrUnprocessed = "bench:UnprocessedRecords"
)

// Config is one load run.
type Config struct {
	// Endpoint is the server's base URL. Endpoints, when set, replaces it:
	// worker i talks to Endpoints[i % len(Endpoints)] (several nodes).
	Endpoint  string
	Endpoints []string
	// Target names the server in the report.
	Target string
	// Concurrency is the number of workers, each sending one request at a
	// time on its own keep-alive connection (default 8).
	Concurrency int
	// Duration is how long the measured part lasts (default 10s); Warmup
	// runs before it and is reported apart (default 0).
	Duration, Warmup time.Duration
	// Mix weights the operations: each request picks one with probability
	// weight/sum. Default BatchMeterUsage only.
	Mix map[string]int
	// Plan is what to send; nil means NewPlan(Marketplace(Customers,
	// Workloads)).
	Plan                 *Plan
	Customers, Workloads int
	// Base anchors the usage timestamps; zero means the start of the run.
	// Runs against one store that continue each other's slot sequence
	// (FirstBatchSlot, FirstMeterSlot) must share Base, and must all end
	// within an hour of it (the 6-hour window).
	Base                           time.Time
	FirstBatchSlot, FirstMeterSlot int64
	// Rand seeds the workers' choices (operations, tokens); 0 means 1.
	Rand uint64
	// Wrap starts the slots over when they run out instead of stopping
	// with ErrSlotsExhausted: for servers that store nothing (the
	// ceiling), where a repeated slot costs the same as a new one.
	Wrap bool
}

func (c *Config) defaults() error {
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if len(c.Mix) == 0 {
		c.Mix = map[string]int{OpBatch: 1}
	}
	if len(c.Endpoints) == 0 {
		if c.Endpoint == "" {
			return errors.New("bench: no endpoint")
		}
		c.Endpoints = []string{c.Endpoint}
	}
	if c.Plan == nil {
		p, err := NewPlan(Marketplace(max(c.Customers, BatchSize), max(c.Workloads, 1)), Region, "", "")
		if err != nil {
			return err
		}
		c.Plan = p
	}
	if c.Base.IsZero() {
		c.Base = time.Now()
	}
	if c.Rand == 0 {
		c.Rand = 1
	}
	total := 0
	for op, w := range c.Mix {
		if w < 0 {
			return fmt.Errorf("bench: mix weight of %s is negative", op)
		}
		total += w
		if w == 0 {
			continue
		}
		switch op {
		case OpBatch:
			if len(c.Plan.Customers) < BatchSize {
				return fmt.Errorf("bench: BatchMeterUsage needs at least %d customers, the plan has %d", BatchSize, len(c.Plan.Customers))
			}
		case OpMeter:
			if len(c.Plan.Workloads) == 0 {
				return errors.New("bench: MeterUsage needs workloads, the plan has none")
			}
		case OpResolve:
			if len(c.Plan.Tokens) == 0 {
				return errors.New("bench: ResolveCustomer needs registration tokens, the plan has none")
			}
		default:
			return fmt.Errorf("bench: unknown operation %q in the mix (want %s)", op, strings.Join(Ops, ", "))
		}
	}
	if total == 0 {
		return errors.New("bench: the mix has no operation with a positive weight")
	}
	return nil
}

// ParseMix reads "BatchMeterUsage=3,ResolveCustomer=1" (short names batch,
// meter and resolve work too; a name without "=N" weighs 1).
func ParseMix(s string) (map[string]int, error) {
	m := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, weight, hasWeight := strings.Cut(part, "=")
		w := 1
		if hasWeight {
			n, err := strconv.Atoi(strings.TrimSpace(weight))
			if err != nil || n < 0 {
				return nil, fmt.Errorf("mix %q: weight %q is not a non-negative integer", s, weight)
			}
			w = n
		}
		op := opName(strings.TrimSpace(name))
		if op == "" {
			return nil, fmt.Errorf("mix %q: unknown operation %q (want %s)", s, name, strings.Join(Ops, ", "))
		}
		m[op] += w
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("mix %q names no operation", s)
	}
	return m, nil
}

func opName(s string) string {
	switch strings.ToLower(s) {
	case "batchmeterusage", "batch":
		return OpBatch
	case "meterusage", "meter":
		return OpMeter
	case "resolvecustomer", "resolve":
		return OpResolve
	}
	return ""
}

// MixString formats a mix as ParseMix reads it, in Ops order.
func MixString(m map[string]int) string {
	var parts []string
	for _, op := range Ops {
		if w, ok := m[op]; ok {
			parts = append(parts, op+"="+strconv.Itoa(w))
		}
	}
	return strings.Join(parts, ",")
}

// slotTimes returns the usage timestamp of each of the Hours hour slots: the
// base time itself, then one second before the end of each earlier hour.
// Each lies in its own hour, and all stay inside the 6-hour window for at
// least an hour after base (up to two).
func slotTimes(base time.Time) [Hours]int64 {
	var ts [Hours]int64
	hour := base.Truncate(time.Hour)
	ts[0] = base.Unix()
	for k := 1; k < Hours; k++ {
		ts[k] = hour.Add(-time.Duration(k-1)*time.Hour - time.Second).Unix()
	}
	return ts
}

// run is the shared state of one Run.
type run struct {
	cfg       Config
	ops       []string // by weight: ops[rand % len] picks one
	times     [Hours]int64
	batchNext atomic.Int64
	meterNext atomic.Int64
	measureAt time.Time
	endAt     time.Time
}

// stats are one worker's (then the merged) counts for one operation.
type stats struct {
	requests, errors, records int64
	latencies                 []time.Duration
	statuses                  map[string]int64
	errTypes                  map[string]int64
	statusDelta               int64 // Success statuses of the last answer
}

func (s *stats) addStatus(k string, n int64) {
	if s.statuses == nil {
		s.statuses = map[string]int64{}
	}
	s.statuses[k] += n
}

func (s *stats) addErr(k string) {
	if s.errTypes == nil {
		s.errTypes = map[string]int64{}
	}
	s.errTypes[k]++
	s.errors++
}

func (s *stats) merge(o *stats) {
	s.requests += o.requests
	s.errors += o.errors
	s.records += o.records
	s.latencies = append(s.latencies, o.latencies...)
	for k, v := range o.statuses {
		s.addStatus(k, v)
	}
	for k, v := range o.errTypes {
		if s.errTypes == nil {
			s.errTypes = map[string]int64{}
		}
		s.errTypes[k] += v
	}
}

// worker is one client: its own connection, signer and buffers.
type worker struct {
	r        *run
	endpoint string
	client   *http.Client
	signer   *v4.Signer
	rng      *rand.Rand
	body     bytes.Buffer
	resp     bytes.Buffer
	measured map[string]*stats
	warm     map[string]*stats
	finished time.Time
	stopped  bool // slots exhausted
}

// Run sends load as cfg says and reports what it measured. Only the
// Duration after the Warmup counts; a request counts in the phase it
// started in, and the measured time runs until the last counted request
// has its answer. Errors are counted, never fatal: Run fails only when the
// configuration is wrong or ctx ends before the measured phase.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.defaults(); err != nil {
		return Report{}, err
	}
	r := &run{cfg: cfg, times: slotTimes(cfg.Base)}
	for _, op := range Ops {
		for range cfg.Mix[op] {
			r.ops = append(r.ops, op)
		}
	}
	r.batchNext.Store(cfg.FirstBatchSlot)
	r.meterNext.Store(cfg.FirstMeterSlot)

	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		tr := &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        cfg.Concurrency,
			MaxIdleConnsPerHost: cfg.Concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		workers[i] = &worker{
			r:        r,
			endpoint: strings.TrimSuffix(cfg.Endpoints[i%len(cfg.Endpoints)], "/") + "/",
			client:   &http.Client{Transport: tr, Timeout: 60 * time.Second},
			signer:   v4.NewSigner(),
			rng:      rand.New(rand.NewPCG(cfg.Rand, uint64(i))),
			measured: map[string]*stats{},
			warm:     map[string]*stats{},
		}
	}
	rss := startRSSSampler()
	start := time.Now()
	r.measureAt = start.Add(cfg.Warmup)
	r.endAt = r.measureAt.Add(cfg.Duration)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go pprof.Do(ctx, pprof.Labels("side", "client"), func(ctx context.Context) {
			defer wg.Done()
			w.loop(ctx)
		})
	}
	wg.Wait()
	peakRSS, lastRSS := rss.stop()
	for _, w := range workers {
		w.client.CloseIdleConnections()
	}
	if err := ctx.Err(); err != nil && time.Now().Before(r.endAt) {
		return Report{}, err
	}

	end := r.measureAt
	merged, warm := map[string]*stats{}, map[string]*stats{}
	for _, w := range workers {
		if w.finished.After(end) {
			end = w.finished
		}
		for op, s := range w.measured {
			if merged[op] == nil {
				merged[op] = &stats{}
			}
			merged[op].merge(s)
		}
		for op, s := range w.warm {
			if warm[op] == nil {
				warm[op] = &stats{}
			}
			warm[op].merge(s)
		}
	}
	secs := end.Sub(r.measureAt).Seconds()
	rep := Report{
		Target:        cfg.Target,
		Endpoints:     cfg.Endpoints,
		Concurrency:   cfg.Concurrency,
		Mix:           MixString(cfg.Mix),
		WarmupSeconds: cfg.Warmup.Seconds(),
		Seconds:       secs,
		StartedAt:     start.UTC(),
		NextBatchSlot: r.batchNext.Load(),
		NextMeterSlot: r.meterNext.Load(),
		BatchSlots:    cfg.Plan.BatchSlots(),
		MeterSlots:    cfg.Plan.MeterSlots(),
		PeakRSSBytes:  peakRSS,
		RSSBytes:      lastRSS,
		Errors:        map[string]int64{},
		latencies:     map[string][]time.Duration{},
	}
	if rep.NextBatchSlot > rep.BatchSlots {
		rep.NextBatchSlot = rep.BatchSlots
	}
	if rep.NextMeterSlot > rep.MeterSlots {
		rep.NextMeterSlot = rep.MeterSlots
	}
	for _, op := range Ops {
		if s := warm[op]; s != nil {
			rep.WarmupRequests += s.requests
			rep.WarmupRecords += s.records
			for k, v := range s.errTypes {
				if rep.WarmupErrors == nil {
					rep.WarmupErrors = map[string]int64{}
				}
				rep.WarmupErrors[k] += v
			}
		}
		s := merged[op]
		if s == nil {
			continue
		}
		o := OpReport{
			Op:             op,
			Requests:       s.requests,
			Errors:         s.errors,
			Records:        s.records,
			RequestsPerSec: perSec(s.requests, secs),
			RecordsPerSec:  perSec(s.records, secs),
			Latency:        latencyOf(s.latencies),
			Statuses:       s.statuses,
			ErrorTypes:     s.errTypes,
		}
		rep.Ops = append(rep.Ops, o)
		rep.latencies[op] = s.latencies
		rep.Requests += s.requests
		rep.Records += s.records
		for k, v := range s.errTypes {
			rep.Errors[k] += v
		}
	}
	rep.RequestsPerSec = perSec(rep.Requests, secs)
	rep.RecordsPerSec = perSec(rep.Records, secs)
	return rep, nil
}

func perSec(n int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(n) / secs
}

func latencyOf(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	ms := func(v time.Duration) float64 { return float64(v) / float64(time.Millisecond) }
	q := func(p float64) float64 {
		i := int(p*float64(len(d))+0.5) - 1
		return ms(d[min(max(i, 0), len(d)-1)])
	}
	return Latency{P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms(d[len(d)-1]), Mean: ms(sum / time.Duration(len(d)))}
}

func (w *worker) loop(ctx context.Context) {
	r := w.r
	for !w.stopped && ctx.Err() == nil {
		started := time.Now()
		if !started.Before(r.endAt) {
			break
		}
		op := r.ops[0]
		if len(r.ops) > 1 {
			op = r.ops[w.rng.IntN(len(r.ops))]
		}
		set := w.warm
		if !started.Before(r.measureAt) {
			set = w.measured
		}
		s := set[op]
		if s == nil {
			s = &stats{}
			set[op] = s
		}
		w.do(ctx, op, s)
		w.finished = time.Now()
	}
}

// do sends one request of op and counts it in s.
func (w *worker) do(ctx context.Context, op string, s *stats) {
	r := w.r
	plan := r.cfg.Plan
	w.body.Reset()
	b := &w.body
	key, secret := plan.SellerKey, plan.SellerSecret
	switch op {
	case OpBatch:
		first := r.batchNext.Add(BatchSize) - BatchSize
		if r.cfg.Wrap {
			first %= plan.BatchSlots() / BatchSize * BatchSize
		}
		if first+BatchSize > plan.BatchSlots() {
			s.addErr(ErrSlotsExhausted)
			w.stopped = true
			return
		}
		writeBatchBody(b, plan, first, &r.times)
	case OpMeter:
		slot := r.meterNext.Add(1) - 1
		if r.cfg.Wrap {
			slot %= plan.MeterSlots()
		}
		if slot >= plan.MeterSlots() {
			s.addErr(ErrSlotsExhausted)
			w.stopped = true
			return
		}
		nw, nd := int64(len(plan.Workloads)), int64(len(plan.MeterDimensions))
		wl, q := slot%nw, slot/nw
		dim, hour := q%nd, q/nd
		key, secret = plan.Workloads[wl].ID, plan.Workloads[wl].Secret
		b.WriteString(`{"ProductCode":`)
		writeJSONString(b, plan.MeterProduct)
		b.WriteString(`,"Timestamp":`)
		b.WriteString(strconv.FormatInt(r.times[hour], 10))
		b.WriteString(`,"UsageDimension":`)
		writeJSONString(b, plan.MeterDimensions[dim])
		b.WriteString(`,"UsageQuantity":`)
		b.WriteString(strconv.FormatInt(slot%97+1, 10))
		b.WriteByte('}')
	case OpResolve:
		b.WriteString(`{"RegistrationToken":`)
		writeJSONString(b, plan.Tokens[w.rng.IntN(len(plan.Tokens))])
		b.WriteByte('}')
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.endpoint, bytes.NewReader(b.Bytes()))
	if err != nil {
		s.requests++
		s.addErr(ErrTransport)
		return
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", mpmeter.TargetPrefix+"."+op)
	sum := sha256.Sum256(b.Bytes())
	if err := w.signer.SignHTTP(ctx, aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}, req,
		hex.EncodeToString(sum[:]), mpmeter.SigningName, plan.Region, time.Now()); err != nil {
		s.requests++
		s.addErr(ErrTransport)
		return
	}

	t0 := time.Now()
	resp, err := w.client.Do(req)
	if err == nil {
		w.resp.Reset()
		_, err = w.resp.ReadFrom(resp.Body)
		resp.Body.Close()
	}
	lat := time.Since(t0)
	if err != nil && ctx.Err() != nil {
		return // cancelled: neither counted nor an error
	}
	s.requests++
	s.latencies = append(s.latencies, lat)
	if err != nil {
		s.addErr(ErrTransport)
		return
	}
	body := w.resp.Bytes()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type string `json:"__type"`
		}
		if json.Unmarshal(body, &e) != nil || e.Type == "" {
			s.addErr(fmt.Sprintf("HTTP%d", resp.StatusCode))
			return
		}
		if i := strings.LastIndexByte(e.Type, '#'); i >= 0 {
			e.Type = e.Type[i+1:]
		}
		s.addErr(e.Type)
		return
	}
	switch op {
	case OpBatch:
		n, ok := countStatuses(body, s)
		if !ok || n != BatchSize {
			s.addErr(ErrBadAnswer)
			return
		}
		if !bytes.Contains(body, []byte(`"UnprocessedRecords":[]`)) {
			s.addErr(ErrUnprocessed)
		}
		s.records += s.statusDelta
	case OpMeter:
		if !bytes.Contains(body, []byte(`"MeteringRecordId":"`)) {
			s.addErr(ErrBadAnswer)
			return
		}
		s.addStatus(mpmeter.UsageRecordResultStatusSuccess, 1)
		s.records++
	case OpResolve:
		if !bytes.Contains(body, []byte(`"CustomerIdentifier":"`)) {
			s.addErr(ErrBadAnswer)
		}
	}
}

// writeBatchBody writes a BatchMeterUsage request of the BatchSize slots
// from first on: slot s is customer s%C, dimension (s/C)%D, hour s/(C*D).
func writeBatchBody(b *bytes.Buffer, plan *Plan, first int64, times *[Hours]int64) {
	b.WriteString(`{"ProductCode":`)
	writeJSONString(b, plan.SaaSProduct)
	b.WriteString(`,"UsageRecords":[`)
	nc, nd := int64(len(plan.Customers)), int64(len(plan.SaaSDimensions))
	for i := range int64(BatchSize) {
		slot := first + i
		cust, q := slot%nc, slot/nc
		dim, hour := q%nd, q/nd
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"CustomerIdentifier":`)
		writeJSONString(b, plan.Customers[cust])
		b.WriteString(`,"Dimension":`)
		writeJSONString(b, plan.SaaSDimensions[dim])
		b.WriteString(`,"Quantity":`)
		b.WriteString(strconv.FormatInt(slot%97+1, 10))
		b.WriteString(`,"Timestamp":`)
		b.WriteString(strconv.FormatInt(times[hour], 10))
		b.WriteByte('}')
	}
	b.WriteString(`]}`)
}

var statusKey = []byte(`"Status":"`)

// countStatuses tallies the "Status" members of a BatchMeterUsage answer
// without decoding it (the client's cost is the server's loss on a shared
// machine): it returns how many it found and sets s.statusDelta to the
// number of Success among them.
func countStatuses(body []byte, s *stats) (int, bool) {
	n := 0
	s.statusDelta = 0
	for {
		i := bytes.Index(body, statusKey)
		if i < 0 {
			return n, true
		}
		body = body[i+len(statusKey):]
		j := bytes.IndexByte(body, '"')
		if j < 0 {
			return n, false
		}
		st := body[:j]
		body = body[j+1:]
		n++
		switch string(st) {
		case mpmeter.UsageRecordResultStatusSuccess:
			s.addStatus(mpmeter.UsageRecordResultStatusSuccess, 1)
			s.statusDelta++
		default:
			s.addStatus(string(st), 1)
		}
	}
}

// writeJSONString writes s as a JSON string. Plan values are plain ASCII
// names, but a hand-written seed may hold anything.
func writeJSONString(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			b.Write(q)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}
