package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

// Notifications: the outbox written with a subscription change, claims
// with leases, attempts, follow-ups and the destinations. Stores that
// implement mpmeter.NotificationStore run them; others skip.

func notifications(t *testing.T, s mpmeter.Store) mpmeter.NotificationStore {
	t.Helper()
	ns, ok := s.(mpmeter.NotificationStore)
	if !ok {
		t.Skip("the store keeps no notifications")
	}
	seed(t, s)
	return ns
}

func outboxOf(eventID, key string, deliveries int, due time.Time) mpmeter.Outbox {
	out := mpmeter.Outbox{Events: []mpmeter.NotificationEvent{{ID: eventID, Key: key, Type: "subscribe-success", AgreementID: mpmeter.AgreementIDFor(license),
		ProductCode: product, CreatedAt: t0}}}
	for i := range deliveries {
		out.Deliveries = append(out.Deliveries, mpmeter.Delivery{ID: fmt.Sprintf("dlv-%s-%d", eventID, i), EventID: eventID, Channel: mpmeter.ChannelSNS,
			Destination: "arn:sub", Endpoint: "http://127.0.0.1:1/sns", Headers: map[string]string{"x-amz-sns-message-type": "Notification"},
			Body: []byte(`{"Type" : "Notification"}`), MaxAttempts: 4, NextAttemptAt: due, CreatedAt: t0})
	}
	return out
}

func testOutboxWithSubscription(t *testing.T, s mpmeter.Store) {
	ns := notifications(t, s)
	ctx := t.Context()
	sub, err := s.Subscription(ctx, license)
	must(t, err)
	sub.Status, sub.EndedAt = mpmeter.SubscriptionCancelled, t0
	tok := mpmeter.RegistrationToken{Token: "tok-outbox", AccountID: buyer, ProductCode: product, LicenseArn: license, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	must(t, ns.PutSubscriptionChange(ctx, sub, &tok, outboxOf("evt-1", "k-1", 2, t0)))
	got, err := s.Subscription(ctx, license)
	must(t, err)
	if got.Status != mpmeter.SubscriptionCancelled || got.Version != sub.Version+1 {
		t.Fatalf("subscription after the change: %+v", got)
	}
	if _, err := s.RegistrationToken(ctx, "tok-outbox"); err != nil {
		t.Fatalf("the change's token: %v", err)
	}
	ds, err := ns.Deliveries(ctx, mpmeter.DeliveryFilter{AgreementID: sub.AgreementID}, mpmeter.Page{})
	must(t, err)
	if len(ds) != 2 || ds[0].EventType != "subscribe-success" || ds[0].Status != mpmeter.DeliveryPending || ds[0].Headers["x-amz-sns-message-type"] != "Notification" {
		t.Fatalf("deliveries %+v", ds)
	}
	// A stale version writes nothing: neither the subscription nor its outbox.
	err = ns.PutSubscriptionChange(ctx, sub, nil, outboxOf("evt-2", "k-2", 1, t0))
	wantErr(t, "a stale version", err, mpmeter.ErrConflict)
	if ds, _ := ns.Deliveries(ctx, mpmeter.DeliveryFilter{EventID: "evt-2"}, mpmeter.Page{}); len(ds) != 0 {
		t.Fatalf("a failed change left deliveries: %+v", ds)
	}
	// An event key written already is skipped with its deliveries.
	must(t, ns.PutOutbox(ctx, outboxOf("evt-3", "k-1", 1, t0)))
	if ds, _ := ns.Deliveries(ctx, mpmeter.DeliveryFilter{EventID: "evt-3"}, mpmeter.Page{}); len(ds) != 0 {
		t.Fatalf("an event with a taken key was written: %+v", ds)
	}
}

func testClaimLeaseAndAttempts(t *testing.T, s mpmeter.Store) {
	ns := notifications(t, s)
	ctx := t.Context()
	must(t, ns.PutOutbox(ctx, outboxOf("evt-a", "k-a", 3, t0)))
	must(t, ns.PutOutbox(ctx, outboxOf("evt-later", "k-later", 1, t0.Add(time.Hour))))
	got, err := ns.ClaimDeliveries(ctx, "node-a", t0, time.Minute, 2)
	must(t, err)
	if len(got) != 2 {
		t.Fatalf("claimed %d, want 2", len(got))
	}
	rest, err := ns.ClaimDeliveries(ctx, "node-b", t0, time.Minute, 10)
	must(t, err)
	if len(rest) != 1 || rest[0].ID == got[0].ID || rest[0].ID == got[1].ID {
		t.Fatalf("node-b claimed %+v (node-a holds %s, %s; the later one is not due)", rest, got[0].ID, got[1].ID)
	}
	// The lease runs out: another node may take it.
	again, err := ns.ClaimDeliveries(ctx, "node-c", t0.Add(2*time.Minute), time.Minute, 10)
	must(t, err)
	if len(again) != 3 {
		t.Fatalf("after the leases ended, claimed %d, want 3", len(again))
	}
	// node-a lost its lease: its result is recorded as an attempt but does
	// not change the delivery.
	held, err := ns.FinishDeliveryAttempt(ctx, "node-a", mpmeter.DeliveryResult{
		Attempt: mpmeter.DeliveryAttempt{DeliveryID: got[0].ID, Attempt: 1, At: t0, StatusCode: 500, Latency: 3 * time.Millisecond, Node: "node-a"},
		Status:  mpmeter.DeliveryDelivered})
	must(t, err)
	if held {
		t.Fatal("a node without the lease changed the delivery")
	}
	held, err = ns.FinishDeliveryAttempt(ctx, "node-c", mpmeter.DeliveryResult{
		Attempt: mpmeter.DeliveryAttempt{DeliveryID: got[0].ID, Attempt: 2, At: t0.Add(2 * time.Minute), StatusCode: 503, Error: "", Latency: 7 * time.Millisecond, Node: "node-c"},
		Status:  mpmeter.DeliveryPending, NextAttemptAt: t0.Add(3 * time.Minute)})
	must(t, err)
	if !held {
		t.Fatal("the lease holder could not record its attempt")
	}
	d, err := ns.Delivery(ctx, got[0].ID)
	must(t, err)
	if d.Status != mpmeter.DeliveryPending || d.Attempts != 2 || d.LastStatusCode != 503 || d.LastLatency != 7*time.Millisecond || !d.NextAttemptAt.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("after a retryable attempt: %+v", d)
	}
	atts, err := ns.DeliveryAttempts(ctx, got[0].ID)
	must(t, err)
	if len(atts) != 2 || atts[0].Node != "node-a" || atts[1].StatusCode != 503 {
		t.Fatalf("attempts %+v", atts)
	}
	// Not due again before NextAttemptAt, even with its lease cleared.
	if early, _ := ns.ClaimDeliveries(ctx, "node-d", t0.Add(150*time.Second), time.Minute, 10); containsDelivery(early, d.ID) {
		t.Fatal("claimed before its next attempt")
	}
	// Delivered rows are never claimed again.
	var others []mpmeter.Delivery
	for _, x := range again {
		if x.ID != d.ID {
			others = append(others, x)
		}
	}
	for _, x := range others {
		if _, err := ns.FinishDeliveryAttempt(ctx, "node-c", mpmeter.DeliveryResult{Attempt: mpmeter.DeliveryAttempt{DeliveryID: x.ID, Attempt: 1, At: t0, StatusCode: 200},
			Status: mpmeter.DeliveryDelivered}); err != nil {
			t.Fatal(err)
		}
	}
	late, err := ns.ClaimDeliveries(ctx, "node-e", t0.Add(time.Hour+time.Minute), time.Minute, 10)
	must(t, err)
	for _, x := range others {
		if containsDelivery(late, x.ID) {
			t.Fatalf("a delivered row was claimed: %s", x.ID)
		}
	}
	if !containsDelivery(late, d.ID) || !containsDelivery(late, "dlv-evt-later-0") {
		t.Fatalf("due rows not claimed: %+v", late)
	}
	list, err := ns.Deliveries(ctx, mpmeter.DeliveryFilter{Status: mpmeter.DeliveryDelivered}, mpmeter.Page{})
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("delivered list %d", len(list))
	}
}

func containsDelivery(ds []mpmeter.Delivery, id string) bool {
	for _, d := range ds {
		if d.ID == id {
			return true
		}
	}
	return false
}

// Concurrent claimers never get the same delivery.
func testConcurrentClaims(t *testing.T, s mpmeter.Store) {
	ns := notifications(t, s)
	ctx := t.Context()
	for i := range 10 {
		must(t, ns.PutOutbox(ctx, outboxOf(fmt.Sprintf("evt-%d", i), fmt.Sprintf("k-%d", i), 5, t0)))
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("node-%d", w)
			for {
				ds, err := ns.ClaimDeliveries(ctx, owner, t0, time.Hour, 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					if prev, ok := seen[d.ID]; ok {
						t.Errorf("%s claimed by %s and %s", d.ID, prev, owner)
					}
					seen[d.ID] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 50 {
		t.Fatalf("claimed %d of 50", len(seen))
	}
}

func testFollowUps(t *testing.T, s mpmeter.Store) {
	ns := notifications(t, s)
	ctx := t.Context()
	out := outboxOf("evt-p", "k-p", 0, t0)
	out.Events[0].Type, out.Events[0].EndedAt, out.Events[0].FollowUpAt = "unsubscribe-pending", t0, t0.Add(time.Hour)
	must(t, ns.PutOutbox(ctx, out))
	if due, _ := ns.DueFollowUps(ctx, t0.Add(59*time.Minute), 10); len(due) != 0 {
		t.Fatalf("due early: %+v", due)
	}
	due, err := ns.DueFollowUps(ctx, t0.Add(time.Hour), 10)
	must(t, err)
	if len(due) != 1 || due[0].ID != "evt-p" || !due[0].EndedAt.Equal(t0) {
		t.Fatalf("due %+v", due)
	}
	done, err := ns.FinishFollowUp(ctx, "evt-p", outboxOf("evt-final", "final:x", 1, t0))
	must(t, err)
	again, err := ns.FinishFollowUp(ctx, "evt-p", outboxOf("evt-final-2", "final:y", 1, t0))
	must(t, err)
	if !done || again {
		t.Fatalf("finish: %v then %v; want true then false", done, again)
	}
	if ds, _ := ns.Deliveries(ctx, mpmeter.DeliveryFilter{EventID: "evt-final-2"}, mpmeter.Page{}); len(ds) != 0 {
		t.Fatal("a second finish wrote its outbox")
	}
	if due, _ := ns.DueFollowUps(ctx, t0.Add(2*time.Hour), 10); len(due) != 0 {
		t.Fatalf("finished but still due: %+v", due)
	}
}

func testNotificationDestinations(t *testing.T, s mpmeter.Store) {
	ns := notifications(t, s)
	ctx := t.Context()
	sub := mpmeter.SNSSubscription{ARN: "arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-" + product + ":u1", ProductCode: product,
		Topic: mpmeter.TopicSubscription, Protocol: "http", Endpoint: "http://127.0.0.1:1/sns", CreatedAt: t0}
	created, err := ns.PutSNSSubscription(ctx, sub)
	must(t, err)
	again, err := ns.PutSNSSubscription(ctx, sub)
	must(t, err)
	if !created || again {
		t.Fatalf("created %v, again %v", created, again)
	}
	must(t, ns.ConfirmSNSSubscription(ctx, sub.ARN, t0.Add(time.Minute)))
	must(t, ns.ConfirmSNSSubscription(ctx, sub.ARN, t0.Add(time.Hour))) // once
	got, err := ns.SNSSubscription(ctx, sub.ARN)
	must(t, err)
	if !got.ConfirmedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("confirmed at %v", got.ConfirmedAt)
	}
	list, err := ns.SNSSubscriptions(ctx, product, mpmeter.TopicEntitlement, mpmeter.Page{})
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("entitlement topic lists %+v", list)
	}
	must(t, ns.DeleteSNSSubscription(ctx, sub.ARN))
	wantErr(t, "deleting twice", ns.DeleteSNSSubscription(ctx, sub.ARN), mpmeter.ErrNotFound)

	tg := mpmeter.EventBridgeTarget{ID: "ebt-1", AccountID: seller, Endpoint: "http://127.0.0.1:1/events", CreatedAt: t0}
	_, err = ns.PutEventBridgeTarget(ctx, tg)
	must(t, err)
	ts, err := ns.EventBridgeTargets(ctx, seller, mpmeter.Page{})
	must(t, err)
	if len(ts) != 1 || ts[0].Endpoint != tg.Endpoint {
		t.Fatalf("targets %+v", ts)
	}
	if ts, _ := ns.EventBridgeTargets(ctx, seller2, mpmeter.Page{}); len(ts) != 0 {
		t.Fatalf("seller2's targets %+v", ts)
	}
	must(t, ns.DeleteEventBridgeTarget(ctx, "ebt-1"))

	_, err = ns.NotificationCertificate(ctx)
	wantErr(t, "no certificate yet", err, mpmeter.ErrNotFound)
	c := mpmeter.NotificationCertificate{PrivateKeyPEM: []byte("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"), CertificatePEM: []byte("cert"), CreatedAt: t0}
	must(t, ns.AddNotificationCertificate(ctx, c))
	err = ns.AddNotificationCertificate(ctx, c)
	if !errors.Is(err, mpmeter.ErrExists) {
		t.Fatalf("a second certificate: %v", err)
	}
	gc, err := ns.NotificationCertificate(ctx)
	must(t, err)
	if string(gc.PrivateKeyPEM) != string(c.PrivateKeyPEM) || string(gc.CertificatePEM) != "cert" {
		t.Fatalf("certificate read back %+v", gc)
	}
}

func testProductFulfillmentURL(t *testing.T, s mpmeter.Store) {
	seed(t, s)
	ctx := t.Context()
	p, err := s.Product(ctx, product)
	must(t, err)
	p.FulfillmentURL, p.Version = "https://seller.example/register", 0
	must(t, s.PutProduct(ctx, p))
	got, err := s.Product(ctx, product)
	must(t, err)
	if got.FulfillmentURL != p.FulfillmentURL || got.Version != 2 {
		t.Fatalf("product %+v", got)
	}
	must(t, s.PutProduct(ctx, p)) // the same again: no new version
	if got, _ := s.Product(ctx, product); got.Version != 2 {
		t.Fatalf("an unchanged put bumped the version to %d", got.Version)
	}
}
