// Package vclock is the service clock of a running mpmeter: wall time moved
// by an offset that lives in the database, so that every node on one database
// reads the same virtual time, and a test or an operator can set or advance it
// (mpmeter clock ...) without touching the machines' clocks. SigV4 never reads
// it: clients sign with their real clocks.
package vclock

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// OffsetStore keeps the offset (mpmeter.Store does).
type OffsetStore interface {
	ClockOffset(ctx context.Context) (time.Duration, error)
	SetClockOffset(ctx context.Context, d time.Duration) error
}

// DefaultRefresh is how often a node rereads the offset: a change made on one
// node (or by the CLI) is seen by all within this time.
const DefaultRefresh = time.Second

// Clock implements mpmeter.Clock. Safe for concurrent use.
type Clock struct {
	store   OffsetStore
	refresh time.Duration
	wall    func() time.Time

	offset     atomic.Int64 // nanoseconds
	fetchedAt  atomic.Int64 // wall unix nanoseconds of the last successful read
	refreshing sync.Mutex   // one reader of the store at a time
}

// New returns a clock reading its offset from store; it reads it once now,
// so the first Now is right. refresh <= 0 means DefaultRefresh.
func New(ctx context.Context, store OffsetStore, refresh time.Duration) (*Clock, error) {
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	c := &Clock{store: store, refresh: refresh, wall: time.Now}
	if err := c.reload(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Now returns wall time plus the offset. When the offset is older than the
// refresh interval one caller rereads it while the others use the last one;
// when the database cannot be read, the last offset stays in force.
func (c *Clock) Now() time.Time {
	wall := c.wall()
	if wall.UnixNano()-c.fetchedAt.Load() >= int64(c.refresh) && c.refreshing.TryLock() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = c.reload(ctx) // on failure: keep the last offset, retry next call
		cancel()
		c.refreshing.Unlock()
	}
	return wall.Add(time.Duration(c.offset.Load()))
}

func (c *Clock) reload(ctx context.Context) error {
	d, err := c.store.ClockOffset(ctx)
	if err != nil {
		return err
	}
	c.offset.Store(int64(d))
	c.fetchedAt.Store(c.wall().UnixNano())
	return nil
}

// Offset returns the offset in force.
func (c *Clock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// Set makes the virtual clock read t now, for every node.
func (c *Clock) Set(ctx context.Context, t time.Time) error {
	return c.setOffset(ctx, t.Sub(c.wall()))
}

// Advance moves the virtual clock by d (backwards when negative).
func (c *Clock) Advance(ctx context.Context, d time.Duration) error {
	if err := c.reload(ctx); err != nil {
		return err
	}
	return c.setOffset(ctx, c.Offset()+d)
}

// Reset makes the virtual clock wall time again.
func (c *Clock) Reset(ctx context.Context) error { return c.setOffset(ctx, 0) }

func (c *Clock) setOffset(ctx context.Context, d time.Duration) error {
	if err := c.store.SetClockOffset(ctx, d); err != nil {
		return err
	}
	c.offset.Store(int64(d))
	c.fetchedAt.Store(c.wall().UnixNano())
	return nil
}
