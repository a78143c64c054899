// Package ratelimit throttles API calls the way AWS applies its request
// quotas (ThrottlingException): a token bucket per account, region and
// operation, each operation at its own rate. AWS's Metering quotas (AWSQuotas)
// are 10 BatchMeterUsage, 10 MeterUsage and 5 RegisterUsage calls per second
// per account in a region.
//
// A Limiter keeps its buckets in memory (one process: exact), or, with
// Config.Shared, in the database every node shares (PostgreSQL), so a fleet
// of nodes behind a load balancer grants what one bucket would. A shared
// bucket costs one statement per granted call; calls refused while the
// bucket is certainly empty cost none (see Limiter.allowShared).
package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Rate is a token bucket: PerSecond tokens added each second, at most Burst
// held. PerSecond 0 means no limit.
type Rate struct {
	PerSecond float64
	Burst     float64
}

func (r Rate) String() string {
	return strconv.FormatFloat(r.PerSecond, 'g', -1, 64) + ":" + strconv.FormatFloat(r.Burst, 'g', -1, 64)
}

// Quotas are the rates of operations by name (mpmeter.Op...).
type Quotas map[string]Rate

// AWSQuotas returns AWS's request quotas for the Metering API ("Service
// quotas for AWS Marketplace Metering API": per AWS account, in the current
// region). AWS does not publish burst sizes; one second's worth is assumed.
// ResolveCustomer has no published quota and is not limited.
func AWSQuotas() Quotas {
	return Quotas{
		mpmeter.OpBatchMeterUsage: {PerSecond: 10, Burst: 10},
		mpmeter.OpMeterUsage:      {PerSecond: 10, Burst: 10},
		mpmeter.OpRegisterUsage:   {PerSecond: 5, Burst: 5},
	}
}

// ParseQuotas reads "Operation=rate[:burst]" entries separated by commas (the
// --quota flag); a missing burst is max(1, rate). Operations must be the
// API's.
func ParseQuotas(spec string) (Quotas, error) {
	q := Quotas{}
	for _, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		op, rate, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("quota %q: want Operation=rate[:burst]", entry)
		}
		switch op {
		case mpmeter.OpBatchMeterUsage, mpmeter.OpMeterUsage, mpmeter.OpRegisterUsage, mpmeter.OpResolveCustomer:
		default:
			return nil, fmt.Errorf("quota %q: unknown operation %q", entry, op)
		}
		perSecond, burst, hasBurst := strings.Cut(rate, ":")
		r := Rate{}
		var err error
		if r.PerSecond, err = strconv.ParseFloat(perSecond, 64); err != nil || r.PerSecond < 0 || math.IsInf(r.PerSecond, 0) {
			return nil, fmt.Errorf("quota %q: the rate must be a non-negative number of calls per second", entry)
		}
		r.Burst = max(1, r.PerSecond)
		if hasBurst {
			if r.Burst, err = strconv.ParseFloat(burst, 64); err != nil || r.Burst < 1 || math.IsInf(r.Burst, 0) {
				return nil, fmt.Errorf("quota %q: the burst must be a number of at least 1", entry)
			}
		}
		q[op] = r
	}
	return q, nil
}

// String lists q as ParseQuotas reads it, by operation name.
func (q Quotas) String() string {
	ops := make([]string, 0, len(q))
	for op := range q {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for i, op := range ops {
		ops[i] = op + "=" + q[op].String()
	}
	return strings.Join(ops, ",")
}

// SharedBuckets keeps token buckets where every node sees them (package
// sqlstore on PostgreSQL: one row per bucket, updated by one statement).
type SharedBuckets interface {
	// TakeToken refills key's bucket at rate up to burst by the database's
	// clock, takes one token if there is one, and reports whether it did
	// and how many tokens are left.
	TakeToken(ctx context.Context, key string, rate, burst float64) (granted bool, tokens float64, err error)
}

// Config configures a Limiter.
type Config struct {
	// Quotas are the operations' rates; an operation without one gets
	// Default.
	Quotas Quotas
	// Default applies to operations Quotas does not name; PerSecond 0
	// means they are not limited.
	Default Rate
	// Shared keeps the buckets in the database for every node; nil keeps
	// them in this process.
	Shared SharedBuckets
	// Now is the clock of in-memory buckets (and of the shared ones'
	// local short cut); nil means time.Now.
	Now func() time.Time
	// Logger hears about shared buckets the database failed to answer for
	// (the call is let through: a quota is no reason to fail a request).
	Logger *slog.Logger
}

// Limiter decides whether a call may proceed. Safe for concurrent use.
type Limiter struct {
	quotas Quotas
	def    Rate
	shared SharedBuckets
	now    func() time.Time
	logger *slog.Logger

	mu      sync.Mutex
	buckets map[string]*bucket
	warned  time.Time // when a shared-bucket failure was last logged
}

// bucket is an in-memory bucket, or for a shared one what this node last
// learnt of it: tokens left at last (an upper bound of what it holds then,
// since other nodes only take).
type bucket struct {
	tokens float64
	last   time.Time
	rate   Rate
}

// maxKeys bounds memory: past it, full buckets are dropped (a full bucket
// is the same as no bucket).
const maxKeys = 100_000

// New returns a Limiter. Rates with a Burst below 1 get 1.
func New(cfg Config) *Limiter {
	l := &Limiter{quotas: Quotas{}, def: fixBurst(cfg.Default), shared: cfg.Shared, now: cfg.Now, logger: cfg.Logger, buckets: map[string]*bucket{}}
	for op, r := range cfg.Quotas {
		l.quotas[op] = fixBurst(r)
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	return l
}

func fixBurst(r Rate) Rate {
	r.Burst = max(1, r.Burst)
	return r
}

// Limits reports whether any call is limited at all.
func (l *Limiter) Limits() bool {
	if l.def.PerSecond > 0 {
		return true
	}
	for _, r := range l.quotas {
		if r.PerSecond > 0 {
			return true
		}
	}
	return false
}

// RateOf returns the rate an operation is limited to (PerSecond 0: none).
func (l *Limiter) RateOf(op string) Rate {
	if r, ok := l.quotas[op]; ok {
		return r
	}
	return l.def
}

// Allow takes a token from the bucket of account, region and operation and
// reports whether there was one.
func (l *Limiter) Allow(ctx context.Context, account, region, op string) bool {
	r := l.RateOf(op)
	if r.PerSecond <= 0 {
		return true
	}
	key := account + "|" + region + "|" + op
	if l.shared != nil {
		return l.allowShared(ctx, key, r)
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketOf(key, r, now)
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = min(r.Burst, b.tokens+elapsed*r.PerSecond)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// bucketOf returns key's bucket, creating a full one; l.mu is held.
func (l *Limiter) bucketOf(key string, r Rate, now time.Time) *bucket {
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxKeys {
			l.prune(now)
		}
		b = &bucket{tokens: r.Burst, last: now, rate: r}
		l.buckets[key] = b
	}
	return b
}

// allowShared asks the database, unless what this node last heard of the
// bucket proves it holds less than one token now: the tokens left then,
// plus what the rate added since the question was sent, bound what it
// holds (other nodes only take), so such a refusal is one the database
// would give too. Everything granted is granted by the database, so the
// fleet together is held to one bucket.
func (l *Limiter) allowShared(ctx context.Context, key string, r Rate) bool {
	sent := l.now()
	l.mu.Lock()
	if b := l.buckets[key]; b != nil && b.tokens+sent.Sub(b.last).Seconds()*r.PerSecond < 1 {
		l.mu.Unlock()
		return false
	}
	l.mu.Unlock()
	granted, tokens, err := l.shared.TakeToken(ctx, key, r.PerSecond, r.Burst)
	if err != nil {
		l.mu.Lock()
		if sent.Sub(l.warned) > 10*time.Second {
			l.warned = sent
			l.logger.Warn("quota: the shared bucket did not answer; letting calls through", "err", err)
		}
		l.mu.Unlock()
		return true
	}
	l.mu.Lock()
	b := l.bucketOf(key, r, sent)
	b.tokens, b.last = tokens, sent
	l.mu.Unlock()
	return granted
}

func (l *Limiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*b.rate.PerSecond >= b.rate.Burst {
			delete(l.buckets, k)
		}
	}
}
