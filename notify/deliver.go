package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Start runs the delivery workers and the follow-up scanner until Stop.
func (n *Notifier) Start() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.stopped = cancel, make(chan struct{})
	go n.run(ctx)
}

// Stop ends the workers; POSTs in flight are cut off (their deliveries stay
// leased until the lease ends and are then sent again, by any node).
func (n *Notifier) Stop() {
	n.mu.Lock()
	cancel, stopped := n.cancel, n.stopped
	n.cancel = nil
	n.mu.Unlock()
	if cancel != nil {
		cancel()
		<-stopped
	}
}

// lease is how long a claimed delivery is this node's: longer than a POST
// may take, so no other node sends it while this one still might.
func (n *Notifier) lease() time.Duration { return 2*n.cfg.Timeout + 5*time.Second }

func (n *Notifier) run(ctx context.Context) {
	defer close(n.stopped)
	sem := make(chan struct{}, n.cfg.Workers)
	done := make(chan struct{}, n.cfg.Workers)
	tick := time.NewTicker(n.cfg.Poll)
	defer tick.Stop()
	inFlight := 0
	for {
		if err := n.followUps(ctx); err != nil && ctx.Err() == nil {
			n.cfg.Logger.Warn("notifications: final-hour follow-ups", "error", err)
		}
		if free := n.cfg.Workers - inFlight; free > 0 {
			ds, err := n.cfg.Store.ClaimDeliveries(ctx, n.cfg.Node, n.cfg.WallClock(), n.lease(), free)
			if err != nil && ctx.Err() == nil {
				n.cfg.Logger.Warn("notifications: claiming deliveries", "error", err)
			}
			for _, d := range ds {
				sem <- struct{}{}
				inFlight++
				go func(d mpmeter.Delivery) {
					defer func() { <-sem; done <- struct{}{} }()
					n.deliver(ctx, d)
				}(d)
			}
			if len(ds) == free {
				continue // more may be due
			}
		}
		select {
		case <-ctx.Done():
			for ; inFlight > 0; inFlight-- {
				<-done
			}
			return
		case <-done:
			inFlight--
		case <-n.wake:
		case <-tick.C:
		}
	}
}

// deliver POSTs d once and records the outcome.
func (n *Notifier) deliver(ctx context.Context, d mpmeter.Delivery) {
	attempt := mpmeter.DeliveryAttempt{DeliveryID: d.ID, Attempt: d.Attempts + 1, At: n.cfg.WallClock().UTC(), Node: n.cfg.Node}
	code, location, err := n.post(ctx, d)
	if ctx.Err() != nil {
		return // stopping: the lease runs out and the delivery is sent again
	}
	attempt.Latency = n.cfg.WallClock().Sub(attempt.At)
	attempt.StatusCode, attempt.Location = code, location
	if err != nil {
		attempt.Error = err.Error()
	}
	r := mpmeter.DeliveryResult{Attempt: attempt, Status: mpmeter.DeliveryDelivered}
	outcome := "delivered"
	switch {
	case err == nil && (code/100 == 2 || (d.Channel == mpmeter.ChannelFulfillment && code/100 == 3)):
		// A landing page answers its form with a page or a redirect.
	case d.Channel == mpmeter.ChannelFulfillment && err == nil:
		r.Status, outcome = mpmeter.DeliveryFailed, "failed" // the browser got an error page: no retry
	case retryable(code, err) && attempt.Attempt < d.MaxAttempts:
		r.Status, outcome = mpmeter.DeliveryPending, "retry"
		jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(n.cfg.RetryDelay))
		r.NextAttemptAt = n.cfg.WallClock().Add(n.cfg.RetryDelay + jitter)
	default:
		r.Status, outcome = mpmeter.DeliveryFailed, "failed"
	}
	if n.cfg.Metrics != nil {
		n.cfg.Metrics.ObserveNotificationAttempt(d.Channel, outcome, attempt.Latency)
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	held, ferr := n.cfg.Store.FinishDeliveryAttempt(fctx, n.cfg.Node, r)
	switch {
	case ferr != nil:
		n.cfg.Logger.Warn("notifications: recording a delivery attempt", "delivery", d.ID, "error", ferr)
	case !held:
		n.cfg.Logger.Warn("notifications: the delivery's lease ran out during the attempt; another node may send it again", "delivery", d.ID)
	}
	if outcome != "delivered" {
		n.cfg.Logger.Info("notifications: delivery attempt failed", "delivery", d.ID, "channel", d.Channel, "endpoint", d.Endpoint,
			"attempt", attempt.Attempt, "status", code, "error", attempt.Error, "next", outcome)
	}
}

// retryable: SNS retries when the endpoint is unavailable: no answer, a
// timeout, 5xx, or 429 Too Many Requests. Other 4xx answers are the
// endpoint's final word.
func retryable(code int, err error) bool {
	return err != nil || code >= 500 || code == http.StatusTooManyRequests
}

func (n *Notifier) post(ctx context.Context, d mpmeter.Delivery) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint, bytes.NewReader(d.Body))
	if err != nil {
		return 0, "", err
	}
	for k, v := range d.Headers {
		req.Header.Set(k, v)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, "", fmt.Errorf("no answer within %s", n.cfg.Timeout)
		}
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header.Get("Location"), nil
}

// Replay sends a delivery again: a new delivery of the same request (same
// body, so the same MessageId and signature, as an SNS redrive), returned.
func (n *Notifier) Replay(ctx context.Context, id string) (mpmeter.Delivery, error) {
	d, err := n.cfg.Store.Delivery(ctx, id)
	if err != nil {
		return d, err
	}
	r := mpmeter.Delivery{ID: newID("dlv-"), EventID: d.EventID, Channel: d.Channel, Destination: d.Destination, Endpoint: d.Endpoint,
		Headers: d.Headers, Body: d.Body, MaxAttempts: d.MaxAttempts, ReplayOf: d.ID, NextAttemptAt: n.cfg.WallClock(), CreatedAt: n.now()}
	if err := n.cfg.Store.PutOutbox(ctx, mpmeter.Outbox{Deliveries: []mpmeter.Delivery{r}}); err != nil {
		return r, err
	}
	n.kick()
	return n.cfg.Store.Delivery(ctx, r.ID)
}
