package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Report is what one Run measured.
type Report struct {
	Target      string    `json:"target"`
	Endpoints   []string  `json:"endpoints"`
	Concurrency int       `json:"concurrency"`
	Mix         string    `json:"mix"`
	StartedAt   time.Time `json:"started_at"`
	// WarmupSeconds ran before the measurement; its requests are not in
	// the figures (WarmupRequests, WarmupRecords count them).
	WarmupSeconds  float64 `json:"warmup_seconds"`
	WarmupRequests int64   `json:"warmup_requests"`
	WarmupRecords  int64   `json:"warmup_records"`
	// WarmupErrors counts the warm-up's failed requests by type.
	WarmupErrors map[string]int64 `json:"warmup_errors,omitempty"`
	// Seconds is the measured time: from the end of the warm-up until the
	// last counted request had its answer.
	Seconds        float64 `json:"seconds"`
	Requests       int64   `json:"requests"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	// Records are usage records stored: BatchMeterUsage records answered
	// Success plus MeterUsage requests answered with a record id.
	Records       int64   `json:"records"`
	RecordsPerSec float64 `json:"records_per_sec"`
	// Errors counts failed requests by error type: the server's __type,
	// or one of the bench: types.
	Errors map[string]int64 `json:"errors"`
	Ops    []OpReport       `json:"ops"`
	// Slots used and available (see Config.FirstBatchSlot).
	NextBatchSlot int64 `json:"next_batch_slot"`
	BatchSlots    int64 `json:"batch_slots"`
	NextMeterSlot int64 `json:"next_meter_slot"`
	MeterSlots    int64 `json:"meter_slots"`
	// RSS of this process (client and in-process servers together),
	// sampled every 100ms during the run: the largest sample and the last.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	RSSBytes     int64 `json:"rss_bytes"`

	// latencies are each operation's samples, kept so that the slices of
	// an interleaved run combine into one distribution (combineReports).
	latencies map[string][]time.Duration
}

// OpReport is one operation's part of a Report.
type OpReport struct {
	Op             string  `json:"op"`
	Requests       int64   `json:"requests"`
	Errors         int64   `json:"errors"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	// Records stored by this operation's successful answers.
	Records       int64   `json:"records"`
	RecordsPerSec float64 `json:"records_per_sec"`
	// Latency of every counted request (errors too), from sending to the
	// last byte of the answer; signing and building the body are not in it.
	Latency Latency `json:"latency"`
	// Statuses counts BatchMeterUsage's per-record statuses (Success,
	// DuplicateRecord, CustomerNotSubscribed), and MeterUsage successes.
	Statuses   map[string]int64 `json:"statuses,omitempty"`
	ErrorTypes map[string]int64 `json:"error_types,omitempty"`
}

// Op returns the report of op, or nil.
func (r *Report) Op(op string) *OpReport {
	for i := range r.Ops {
		if r.Ops[i].Op == op {
			return &r.Ops[i]
		}
	}
	return nil
}

// Figure is an operation's headline throughput: records/s for
// BatchMeterUsage, requests/s for the others.
func (o *OpReport) Figure() float64 {
	if o.Op == OpBatch {
		return o.RecordsPerSec
	}
	return o.RequestsPerSec
}

// FigureUnit names Figure's unit for op.
func FigureUnit(op string) string {
	if op == OpBatch {
		return "records/s"
	}
	return "req/s"
}

// rssSampler samples VmRSS while a run lasts.
type rssSampler struct {
	done       chan struct{}
	wg         sync.WaitGroup
	peak, last int64
}

func startRSSSampler() *rssSampler {
	s := &rssSampler{done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v := RSS(); v > 0 {
				s.last = v
				s.peak = max(s.peak, v)
			}
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() (peak, last int64) {
	close(s.done)
	s.wg.Wait()
	return s.peak, s.last
}

// RSS returns this process's resident set size (VmRSS in
// /proc/self/status), or 0 where there is none.
func RSS() int64 { return procStatus("VmRSS:") }

// PeakRSS returns the process's high-water RSS (VmHWM), or 0.
func PeakRSS() int64 { return procStatus("VmHWM:") }

func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// Machine describes where a benchmark ran.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	MemTotal   string `json:"mem_total"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Date       string `json:"date"`
}

// ThisMachine describes the machine the process runs on.
func ThisMachine() Machine {
	m := Machine{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		Date:       time.Now().UTC().Format(time.RFC3339),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// WriteText writes r as a Markdown table, one row per operation.
func (r *Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "target %s: %d workers, mix %s, %.1fs measured after %.1fs warm-up; peak RSS %s\n\n",
		r.Target, r.Concurrency, r.Mix, r.Seconds, r.WarmupSeconds, MiB(r.PeakRSSBytes))
	b.WriteString("| op | requests | req/s | records/s | p50 ms | p99 ms | max ms | errors | statuses |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|---|---|\n")
	for _, o := range r.Ops {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %.2f | %.2f | %.1f | %s | %s |\n",
			o.Op, o.Requests, Num(o.RequestsPerSec), recordsCell(o), o.Latency.P50, o.Latency.P99, o.Latency.Max,
			Counts(o.ErrorTypes), Counts(o.Statuses))
	}
	_, err := w.Write(b.Bytes())
	return err
}

func recordsCell(o OpReport) string {
	if o.Op == OpResolve {
		return "–"
	}
	return Num(o.RecordsPerSec)
}

// Counts formats a count map as "A 3, B 1" (largest first), or "0".
func Counts(m map[string]int64) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// Num formats a rate with thousands separators and no decimals (one
// decimal under 100).
func Num(v float64) string {
	if v < 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return Int(int64(v + 0.5))
}

// Int formats n with thousands separators.
func Int(n int64) string {
	s := strconv.FormatInt(n, 10)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// MiB formats a byte count in MiB.
func MiB(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// CustomerRevisit is how often the load came back to one customer:
// BatchMeterUsage visits the customers in turn, so every customers ÷
// records/s. ok is false when the report has no BatchMeterUsage records.
func (r *Report) CustomerRevisit() (time.Duration, bool) {
	o := r.Op(OpBatch)
	if o == nil || o.RecordsPerSec <= 0 || r.BatchSlots <= 0 {
		return 0, false
	}
	customers := float64(r.BatchSlots) / (Dimensions * Hours)
	return time.Duration(customers / o.RecordsPerSec * float64(time.Second)), true
}

// Which side of the marketplace cache's TTL a run was on (CacheRegime).
const (
	CacheHits   = "hits"
	CacheMisses = "misses"
	CacheEdge   = "edge"
)

// CacheRegime says what a customer's subscription reads met when the load
// came back to it every revisit, with the server's marketplace cache
// keeping a subscription for ttl: hits well inside ttl, misses well past
// it, and in between the edge, where a target that slows down a little
// starts missing and slows further, so its figures swing from run to run
// (docs/benchmarks.md#running-it).
func CacheRegime(revisit, ttl time.Duration) string {
	switch {
	case revisit < ttl/2:
		return CacheHits
	case revisit > 2*ttl:
		return CacheMisses
	}
	return CacheEdge
}
