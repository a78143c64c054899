package multinode

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter/mpmetertest"
)

// Three nodes on one database deliver every notification exactly once:
// the outbox rows are claimed with FOR UPDATE SKIP LOCKED and a lease, so
// no two nodes POST the same one, and every node's workers take part.
func TestNotificationsExactlyOnceAcrossNodes(t *testing.T) {
	db := freshDatabase(t)
	var mu sync.Mutex
	sns := map[string]int{}    // MessageId -> deliveries
	events := map[string]int{} // EventBridge event id -> deliveries
	snsSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &m)
		if m["Type"] == "SubscriptionConfirmation" {
			go http.Get(m["SubscribeURL"])
			return
		}
		mu.Lock()
		sns[m["MessageId"]]++
		mu.Unlock()
	}))
	defer snsSrv.Close()
	ebSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			ID string `json:"id"`
		}
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		events[ev.ID]++
		mu.Unlock()
	}))
	defer ebSrv.Close()

	nodes := startNodes(t, 3, db.String(), "--admin-token", adminToken, "--notification-retry-delay", "200ms")
	adminCall(t, nodes[0].URL, http.MethodPost, "/sns-subscriptions", map[string]any{"product_code": mpmetertest.SaaSProduct, "topic": "subscription",
		"protocol": "http", "endpoint": snsSrv.URL + "/sns"}, nil)
	adminCall(t, nodes[1].URL, http.MethodPost, "/eventbridge-targets", map[string]any{"account_id": mpmetertest.SellerAccount, "endpoint": ebSrv.URL + "/events"}, nil)
	waitUntil(t, "the SNS subscription's confirmation", func() bool {
		var list struct {
			Items []struct {
				ConfirmedAt *time.Time `json:"confirmed_at"`
			} `json:"items"`
		}
		adminCall(t, nodes[2].URL, http.MethodGet, "/sns-subscriptions", nil, &list)
		return len(list.Items) == 1 && list.Items[0].ConfirmedAt != nil
	})

	const buyers = 30
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := nodes[i%3].URL
			account := fmt.Sprintf("5000000000%02d", i)
			adminCall(t, base, http.MethodPost, "/accounts", map[string]any{"id": account}, nil)
			adminCall(t, base, http.MethodPost, "/subscriptions", map[string]any{"account_id": account, "product_code": mpmetertest.SaaSProduct}, nil)
		}()
	}
	wg.Wait()
	waitUntil(t, "every notification", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(sns) == buyers && len(events) == 2*buyers
	})
	time.Sleep(time.Second) // a second for any duplicate to show up
	mu.Lock()
	defer mu.Unlock()
	for id, n := range sns {
		if n != 1 {
			t.Errorf("SNS message %s delivered %d times", id, n)
		}
	}
	for id, n := range events {
		if n != 1 {
			t.Errorf("EventBridge event %s delivered %d times", id, n)
		}
	}
	if len(sns) != buyers || len(events) != 2*buyers {
		t.Errorf("%d SNS messages and %d events, want %d and %d", len(sns), len(events), buyers, 2*buyers)
	}
	// The delivery log says which node sent each; more than one took part.
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	adminCall(t, nodes[0].URL, http.MethodGet, "/notifications/deliveries?channel=sns&limit=1000", nil, &list)
	senders := map[string]bool{}
	for _, d := range list.Items {
		var one struct {
			AttemptLog []struct {
				Node string `json:"node"`
			} `json:"attempt_log"`
		}
		adminCall(t, nodes[0].URL, http.MethodGet, "/notifications/deliveries/"+d.ID, nil, &one)
		if len(one.AttemptLog) != 1 {
			t.Errorf("delivery %s has %d attempts, want 1", d.ID, len(one.AttemptLog))
		}
		for _, a := range one.AttemptLog {
			senders[a.Node] = true
		}
	}
	t.Logf("SNS deliveries sent by %d nodes", len(senders))
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The outbox survives kill -9: events written with a subscription while
// their endpoint is down are delivered, once each, by the next process on
// the same (SQLite) database.
func TestNotificationsSurviveKill9(t *testing.T) {
	// A port nobody listens on yet: the endpoint is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	db := filepath.Join(t.TempDir(), "mpmeter.db")
	nd, err := startNode(t, db, "--admin-token", adminToken, "--notification-retry-delay", "1s")
	if err != nil {
		t.Fatal(err)
	}
	adminCall(t, nd.URL, http.MethodPost, "/eventbridge-targets", map[string]any{"account_id": mpmetertest.SellerAccount, "endpoint": "http://" + addr + "/events"}, nil)
	adminCall(t, nd.URL, http.MethodPost, "/accounts", map[string]any{"id": "210987654321"}, nil)
	adminCall(t, nd.URL, http.MethodPost, "/subscriptions", map[string]any{"account_id": "210987654321", "product_code": mpmetertest.SaaSProduct}, nil)
	if err := nd.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	nd.cmd.Wait()

	var mu sync.Mutex
	got := map[string]int{}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ep := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			ID         string `json:"id"`
			DetailType string `json:"detail-type"`
		}
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		got[ev.DetailType]++
		mu.Unlock()
	})}
	go ep.Serve(ln)
	defer ep.Close()
	if _, err := startNode(t, db, "--admin-token", adminToken, "--notification-retry-delay", "1s"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the events written before the kill", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	})
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	if got["Purchase Agreement Created - Proposer"] != 1 || got["License Updated - Manufacturer"] != 1 {
		t.Fatalf("delivered %v, want each event once", got)
	}
}
