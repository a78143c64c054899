package ratelimit

import (
	"testing"
	"time"
)

func TestLimiterRefillsAtRate(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(2, 3, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if !l.Allow("a") {
			t.Fatalf("call %d within burst refused", i)
		}
	}
	if l.Allow("a") {
		t.Fatal("call beyond burst allowed")
	}
	if !l.Allow("b") {
		t.Fatal("another key shares a's bucket")
	}
	now = now.Add(500 * time.Millisecond) // 2/s: one token back
	if !l.Allow("a") {
		t.Fatal("token not refilled after 1/rate seconds")
	}
	if l.Allow("a") {
		t.Fatal("refilled more than one token")
	}
	now = now.Add(time.Hour)
	for i := 0; i < 3; i++ {
		if !l.Allow("a") {
			t.Fatalf("bucket did not refill to burst (call %d)", i)
		}
	}
	if l.Allow("a") {
		t.Fatal("bucket refilled beyond burst")
	}
}
