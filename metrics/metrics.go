// Package metrics exports mpmeter's Prometheus metrics: requests by operation
// and error, latency, metered records by outcome, and store commits. It uses
// its own registry (no global state), served by Handler.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mpmeter/mpmeter"
)

// Metrics is one server's metrics. Safe for concurrent use.
type Metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	records     *prometheus.CounterVec
	commitBatch prometheus.Histogram
	commitTime  prometheus.Histogram

	auditWritten prometheus.Counter
	auditDropped *prometheus.CounterVec
	auditPurged  prometheus.Counter
	auditFlush   prometheus.Histogram
	auditStore   prometheus.Histogram
	purged       *prometheus.CounterVec
	faults       *prometheus.CounterVec

	rollupDays    prometheus.Counter
	rollupRecords prometheus.Counter
	rollupLag     prometheus.Gauge

	notifyAttempts *prometheus.CounterVec
	notifySeconds  *prometheus.HistogramVec
	notifyEvents   prometheus.Counter
}

// New returns metrics registered in a fresh registry, with Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpmeter_requests_total",
			Help: "API requests by operation and AWS error name (empty: success).",
		}, []string{"operation", "error"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mpmeter_request_duration_seconds",
			Help:    "API request latency by operation, from first byte read to response written.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}, []string{"operation"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpmeter_records_total",
			Help: "Metering records by operation and outcome: accepted (stored now), identical (the same record again), duplicate (another quantity for a metered slot), not_subscribed.",
		}, []string{"operation", "outcome"}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mpmeter_store_commit_records",
			Help:    "Records per store commit, new and already stored (group commit folds many requests into one commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mpmeter_store_commit_seconds",
			Help:    "Store commit latency, including the fsync.",
			Buckets: []float64{.0001, .0005, .001, .002, .005, .01, .02, .05, .1, .5, 1},
		}),
		auditWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mpmeter_audit_events_written_total",
			Help: "Audit log events committed to the database.",
		}),
		auditDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpmeter_audit_dropped_total",
			Help: "Audit log events lost, by reason: queue_full (the writer fell behind), write_failed (the database refused the batch), closed (recorded after shutdown began).",
		}, []string{"reason"}),
		auditPurged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mpmeter_audit_events_purged_total",
			Help: "Audit log events deleted past the retention.",
		}),
		auditFlush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mpmeter_audit_flush_seconds",
			Help:    "Latency of one audit log batch write, including the commit.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1},
		}),
		auditStore: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mpmeter_audit_store_write_seconds",
			Help:    "How long one audit log batch held the database, BEGIN to COMMIT (on SQLite: time taken from the one writer).",
			Buckets: []float64{.0001, .0005, .001, .002, .005, .01, .02, .05, .1, .5, 1},
		}),
		purged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpmeter_purged_total",
			Help: "Expired rows deleted by the background purge: client_tokens (MeterUsage ClientTokens), registration_tokens.",
		}, []string{"what"}),
	}
	m.rollupDays = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mpmeter_usage_rollup_days_total",
		Help: "UTC days of usage rolled up into daily sums by the background roller (days that had no records count too).",
	})
	m.rollupRecords = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mpmeter_usage_rollup_records_total",
		Help: "Usage records summed into daily sums by the background roller.",
	})
	m.rollupLag = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mpmeter_usage_rollup_lag_seconds",
		Help: "Closed usage time (days no call can store usage in any more) that the roller's last round had not rolled up yet: 0 when it is caught up.",
	})
	m.registry.MustRegister(m.rollupDays, m.rollupRecords, m.rollupLag)
	m.faults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mpmeter_faults_injected_total",
		Help: "Faults injected on purpose (fault rules, docs/retries.md) by kind and operation.",
	}, []string{"kind", "operation"})
	m.registry.MustRegister(m.faults)
	// Every reason from the start, so a dashboard sees 0 rather than no
	// series.
	for _, reason := range []string{"queue_full", "write_failed", "closed"} {
		m.auditDropped.WithLabelValues(reason)
	}
	m.registry.MustRegister(m.auditWritten, m.auditDropped, m.auditPurged, m.auditFlush, m.auditStore)
	m.notifyAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mpmeter_notifications_attempts_total",
		Help: "Notification POSTs by channel (sns, eventbridge, fulfillment) and outcome: delivered, retry (failed, will be sent again), failed (given up).",
	}, []string{"channel", "outcome"})
	m.notifySeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mpmeter_notifications_delivery_seconds",
		Help:    "Latency of one notification POST by channel, until the endpoint answered or the timeout.",
		Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 15},
	}, []string{"channel"})
	m.notifyEvents = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mpmeter_notifications_events_total",
		Help: "Notification events written to the outbox (each with one delivery per destination).",
	})
	m.registry.MustRegister(m.notifyAttempts, m.notifySeconds, m.notifyEvents)
	m.registry.MustRegister(m.requests, m.latency, m.records, m.commitBatch, m.commitTime, m.purged,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// ObserveRequest implements middleware.Observer. op is an operation table's
// key or "unknown" (middleware's guarantee); an error name that is not in the
// error table is counted as "unknown" too, so no input makes a new series.
func (m *Metrics) ObserveRequest(op string, errCode mpmeter.ErrorCode, d time.Duration) {
	if op == "" {
		op = "unknown"
	}
	if _, known := mpmeter.LookupErrorCode(errCode); errCode != "" && !known {
		errCode = "unknown"
	}
	m.requests.WithLabelValues(op, string(errCode)).Inc()
	m.latency.WithLabelValues(op).Observe(d.Seconds())
}

// ObserveRecords implements service.Observer.
func (m *Metrics) ObserveRecords(op, outcome string, n int) {
	m.records.WithLabelValues(op, outcome).Add(float64(n))
}

// ObserveCommit is called by the store after each commit.
func (m *Metrics) ObserveCommit(records int, d time.Duration) {
	m.commitBatch.Observe(float64(records))
	m.commitTime.Observe(d.Seconds())
}

// AuditWritten implements audit.Observer.
func (m *Metrics) AuditWritten(events int, d time.Duration) {
	m.auditWritten.Add(float64(events))
	m.auditFlush.Observe(d.Seconds())
}

// AuditDropped implements audit.Observer.
func (m *Metrics) AuditDropped(reason string, events int) {
	m.auditDropped.WithLabelValues(reason).Add(float64(events))
}

// AuditPurged implements audit.Observer.
func (m *Metrics) AuditPurged(events int) { m.auditPurged.Add(float64(events)) }

// ObserveAuditWrite is called by the store after each audit batch
// (sqlstore.WithAuditWriteObserver).
func (m *Metrics) ObserveAuditWrite(events int, d time.Duration) {
	m.auditStore.Observe(d.Seconds())
}

// ObservePurged counts rows the background purge deleted (package purge).
func (m *Metrics) ObservePurged(what string, n int) {
	m.purged.WithLabelValues(what).Add(float64(n))
}

// ObserveUsageRollup implements rollup.Observer.
func (m *Metrics) ObserveUsageRollup(step mpmeter.UsageRollupStep) {
	m.rollupDays.Add(float64(step.Days))
	m.rollupRecords.Add(float64(step.Records))
}

// ObserveUsageRollupLag implements rollup.Observer.
func (m *Metrics) ObserveUsageRollupLag(lag time.Duration) { m.rollupLag.Set(lag.Seconds()) }

// FaultInjected implements faults.Observer. kind is one of
// mpmeter.FaultKinds and operation an operation table's key (the
// injector's guarantee), so the series are a fixed set.
func (m *Metrics) FaultInjected(kind mpmeter.FaultKind, operation string) {
	m.faults.WithLabelValues(string(kind), operation).Inc()
}

// ObserveNotificationAttempt counts one notification POST (notify.Metrics).
func (m *Metrics) ObserveNotificationAttempt(channel, outcome string, d time.Duration) {
	m.notifyAttempts.WithLabelValues(channel, outcome).Inc()
	m.notifySeconds.WithLabelValues(channel).Observe(d.Seconds())
}

// ObserveNotificationEvents counts events written to the outbox.
func (m *Metrics) ObserveNotificationEvents(n int) { m.notifyEvents.Add(float64(n)) }
