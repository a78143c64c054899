package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seal"
)

// The notifications' tables (migration 0010): events and their outbox of
// deliveries, written in the transaction of the change that causes them;
// the delivery log; SNS subscriptions, EventBridge targets and the signing
// certificate. See mpmeter.NotificationStore.

var _ mpmeter.NotificationStore = (*Store)(nil)

// PutSubscriptionChange writes a subscription, a registration token and the
// outbox in one transaction.
func (s *Store) PutSubscriptionChange(ctx context.Context, sub mpmeter.Subscription, tok *mpmeter.RegistrationToken, out mpmeter.Outbox) error {
	return s.write(ctx, "PutSubscriptionChange", func(w *txn) error {
		if err := w.putSubscription(sub); err != nil {
			return err
		}
		if tok != nil {
			if err := w.putRegistrationToken(*tok); err != nil {
				return err
			}
		}
		return w.putOutbox(out)
	})
}

// PutOutbox writes events and deliveries in one transaction.
func (s *Store) PutOutbox(ctx context.Context, out mpmeter.Outbox) error {
	return s.write(ctx, "PutOutbox", func(w *txn) error { return w.putOutbox(out) })
}

// putOutbox inserts out's events (skipping those whose key is taken, with
// their deliveries) and deliveries.
func (w *txn) putOutbox(out mpmeter.Outbox) error {
	skipped := map[string]bool{}
	for _, e := range out.Events {
		res, err := w.exec(`INSERT INTO notification_events (event_id, event_key, type, agreement_id, product_code, created_at_ms, follow_up_at_ms, ended_at_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_key) DO NOTHING`,
			e.ID, e.Key, e.Type, nullable(e.AgreementID), nullable(e.ProductCode), ms(e.CreatedAt), nullTime(e.FollowUpAt), nullTime(e.EndedAt))
		if err != nil {
			return fmt.Errorf("event %s: %w", e.Key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			skipped[e.ID] = true
		}
	}
	for _, d := range out.Deliveries {
		if skipped[d.EventID] {
			continue
		}
		headers, err := json.Marshal(d.Headers)
		if err != nil {
			return err
		}
		status := d.Status
		if status == "" {
			status = mpmeter.DeliveryPending
		}
		if _, err := w.exec(`INSERT INTO notification_deliveries (delivery_id, event_id, channel, destination, endpoint, headers, body,
				max_attempts, replay_of, status, attempts, next_attempt_at_ms, created_at_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
			d.ID, d.EventID, d.Channel, d.Destination, d.Endpoint, string(headers), nonNil(d.Body),
			d.MaxAttempts, nullable(d.ReplayOf), status, ms(d.NextAttemptAt), ms(d.CreatedAt)); err != nil {
			return fmt.Errorf("delivery %s: %w", d.ID, err)
		}
	}
	return nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ms(t)
}

func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

const eventColumns = `event_id, event_key, type, agreement_id, product_code, created_at_ms, follow_up_at_ms, ended_at_ms`

func scanEvent(r scanner) (mpmeter.NotificationEvent, error) {
	var e mpmeter.NotificationEvent
	var agreement, product sql.NullString
	var created int64
	var follow, ended sql.NullInt64
	if err := r.Scan(&e.ID, &e.Key, &e.Type, &agreement, &product, &created, &follow, &ended); err != nil {
		return e, err
	}
	e.AgreementID, e.ProductCode, e.CreatedAt = agreement.String, product.String, fromMS(created)
	e.FollowUpAt, e.EndedAt = fromNullMS(follow), fromNullMS(ended)
	return e, nil
}

// DueFollowUps returns events whose follow-up is due at at, earliest first.
func (s *Store) DueFollowUps(ctx context.Context, at time.Time, limit int) ([]mpmeter.NotificationEvent, error) {
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(`SELECT `+eventColumns+` FROM notification_events
		WHERE follow_up_at_ms IS NOT NULL AND follow_up_at_ms <= ? ORDER BY follow_up_at_ms, event_id LIMIT ?`), ms(at), limitOf(mpmeter.Page{Limit: limit}))
	if err != nil {
		return nil, readErr(ctx, err, "due follow-ups")
	}
	return collect(ctx, rows, "due follow-ups", scanEvent)
}

// FinishFollowUp clears a follow-up and writes out, once.
func (s *Store) FinishFollowUp(ctx context.Context, eventID string, out mpmeter.Outbox) (bool, error) {
	done := false
	err := s.write(ctx, "FinishFollowUp", func(w *txn) error {
		done = false
		res, err := w.exec(`UPDATE notification_events SET follow_up_at_ms = NULL WHERE event_id = ? AND follow_up_at_ms IS NOT NULL`, eventID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		done = true
		return w.putOutbox(out)
	})
	return done, err
}

const deliveryColumns = `d.delivery_id, d.event_id, e.type, e.agreement_id, d.channel, d.destination, d.endpoint, d.headers, d.body,
	d.max_attempts, d.replay_of, d.status, d.attempts, d.next_attempt_at_ms, d.created_at_ms,
	d.last_attempt_at_ms, d.last_status_code, d.last_error, d.last_latency_us, d.last_location`

func scanDelivery(r scanner) (mpmeter.Delivery, error) {
	var d mpmeter.Delivery
	var agreement, replay, lastErr, location sql.NullString
	var headers string
	var next, created int64
	var lastAt, code, latency sql.NullInt64
	if err := r.Scan(&d.ID, &d.EventID, &d.EventType, &agreement, &d.Channel, &d.Destination, &d.Endpoint, &headers, &d.Body,
		&d.MaxAttempts, &replay, &d.Status, &d.Attempts, &next, &created, &lastAt, &code, &lastErr, &latency, &location); err != nil {
		return d, err
	}
	if err := json.Unmarshal([]byte(headers), &d.Headers); err != nil {
		return d, fmt.Errorf("delivery %s headers: %w", d.ID, err)
	}
	d.AgreementID, d.ReplayOf = agreement.String, replay.String
	d.NextAttemptAt, d.CreatedAt, d.LastAttemptAt = fromMS(next), fromMS(created), fromNullMS(lastAt)
	d.LastStatusCode, d.LastError, d.LastLocation = int(code.Int64), lastErr.String, location.String
	d.LastLatency = time.Duration(latency.Int64) * time.Microsecond
	return d, nil
}

// ClaimDeliveries leases due deliveries to owner.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]mpmeter.Delivery, error) {
	lock := ""
	if s.d.name == DialectPostgres {
		lock = ` FOR UPDATE SKIP LOCKED`
	}
	// A read first: most polls find nothing, and must not take the
	// (SQLite: the one) writer for that.
	var one int
	switch err := s.rdb.QueryRowContext(ctx, s.d.rebind(`SELECT 1 FROM notification_deliveries
		WHERE status = 'pending' AND next_attempt_at_ms <= ? AND (lease_until_ms IS NULL OR lease_until_ms <= ?) LIMIT 1`), ms(now), ms(now)).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, readErr(ctx, err, "due deliveries")
	}
	var ids []string
	err := s.write(ctx, "ClaimDeliveries", func(w *txn) error {
		ids = ids[:0]
		rows, err := w.tx.QueryContext(w.ctx, s.d.rebind(`UPDATE notification_deliveries SET lease_owner = ?, lease_until_ms = ?
			WHERE delivery_id IN (SELECT delivery_id FROM notification_deliveries
				WHERE status = 'pending' AND next_attempt_at_ms <= ? AND (lease_until_ms IS NULL OR lease_until_ms <= ?)
				ORDER BY next_attempt_at_ms, delivery_id LIMIT ?`+lock+`)
			RETURNING delivery_id`), owner, ms(now.Add(lease)), ms(now), ms(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	slices.Sort(ids) // RETURNING's order is the database's; ids are time-ordered
	out := make([]mpmeter.Delivery, 0, len(ids))
	for _, id := range ids {
		d, err := s.Delivery(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// FinishDeliveryAttempt records an attempt and the delivery's new state.
func (s *Store) FinishDeliveryAttempt(ctx context.Context, owner string, r mpmeter.DeliveryResult) (bool, error) {
	a := r.Attempt
	held := false
	err := s.write(ctx, "FinishDeliveryAttempt", func(w *txn) error {
		held = false
		if _, err := w.exec(`INSERT INTO notification_attempts (delivery_id, attempt, at_ms, status_code, error, latency_us, location, node)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id, attempt) DO NOTHING`,
			a.DeliveryID, a.Attempt, ms(a.At), a.StatusCode, a.Error, a.Latency.Microseconds(), a.Location, a.Node); err != nil {
			return err
		}
		res, err := w.exec(`UPDATE notification_deliveries SET status = ?, attempts = ?, next_attempt_at_ms = ?,
				last_attempt_at_ms = ?, last_status_code = ?, last_error = ?, last_latency_us = ?, last_location = ?,
				lease_owner = NULL, lease_until_ms = NULL
			WHERE delivery_id = ? AND lease_owner = ?`,
			r.Status, a.Attempt, ms(r.NextAttemptAt), ms(a.At), a.StatusCode, nullable(a.Error), a.Latency.Microseconds(), nullable(a.Location),
			a.DeliveryID, owner)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		held = n == 1
		return err
	})
	return held, err
}

// Delivery returns one delivery.
func (s *Store) Delivery(ctx context.Context, id string) (mpmeter.Delivery, error) {
	d, err := scanDelivery(s.rdb.QueryRowContext(ctx, s.d.rebind(`SELECT `+deliveryColumns+`
		FROM notification_deliveries d JOIN notification_events e ON e.event_id = d.event_id WHERE d.delivery_id = ?`), id))
	if err != nil {
		return d, readErr(ctx, err, "delivery %q", id)
	}
	return d, nil
}

// Deliveries lists deliveries, newest first.
func (s *Store) Deliveries(ctx context.Context, f mpmeter.DeliveryFilter, p mpmeter.Page) ([]mpmeter.Delivery, error) {
	q := `SELECT ` + deliveryColumns + ` FROM notification_deliveries d JOIN notification_events e ON e.event_id = d.event_id WHERE 1 = 1`
	var args []any
	if p.After != "" {
		q += ` AND d.delivery_id < ?`
		args = append(args, p.After)
	}
	for _, c := range []struct{ col, v string }{{"e.agreement_id", f.AgreementID}, {"d.channel", f.Channel}, {"d.status", f.Status}, {"d.event_id", f.EventID}} {
		if c.v != "" {
			q += ` AND ` + c.col + ` = ?`
			args = append(args, c.v)
		}
	}
	q += ` ORDER BY d.delivery_id DESC LIMIT ?`
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(q), append(args, limitOf(p))...)
	if err != nil {
		return nil, readErr(ctx, err, "deliveries")
	}
	return collect(ctx, rows, "deliveries", scanDelivery)
}

// DeliveryAttempts returns a delivery's attempts in order.
func (s *Store) DeliveryAttempts(ctx context.Context, deliveryID string) ([]mpmeter.DeliveryAttempt, error) {
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(`SELECT delivery_id, attempt, at_ms, status_code, error, latency_us, location, node
		FROM notification_attempts WHERE delivery_id = ? ORDER BY attempt`), deliveryID)
	if err != nil {
		return nil, readErr(ctx, err, "attempts of %q", deliveryID)
	}
	return collect(ctx, rows, "delivery attempts", func(r scanner) (mpmeter.DeliveryAttempt, error) {
		var a mpmeter.DeliveryAttempt
		var at, latency int64
		err := r.Scan(&a.DeliveryID, &a.Attempt, &at, &a.StatusCode, &a.Error, &latency, &a.Location, &a.Node)
		a.At, a.Latency = fromMS(at), time.Duration(latency)*time.Microsecond
		return a, err
	})
}

// PutSNSSubscription creates an SNS subscription unless its ARN exists.
func (s *Store) PutSNSSubscription(ctx context.Context, sub mpmeter.SNSSubscription) (bool, error) {
	created := false
	err := s.write(ctx, "PutSNSSubscription", func(w *txn) error {
		res, err := w.exec(`INSERT INTO sns_subscriptions (arn, product_code, topic, protocol, endpoint, created_at_ms, confirmed_at_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (arn) DO NOTHING`,
			sub.ARN, sub.ProductCode, sub.Topic, sub.Protocol, sub.Endpoint, ms(sub.CreatedAt), nullTime(sub.ConfirmedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		created = n == 1
		return err
	})
	return created, err
}

// ConfirmSNSSubscription sets ConfirmedAt once.
func (s *Store) ConfirmSNSSubscription(ctx context.Context, arn string, at time.Time) error {
	return s.write(ctx, "ConfirmSNSSubscription", func(w *txn) error {
		res, err := w.exec(`UPDATE sns_subscriptions SET confirmed_at_ms = COALESCE(confirmed_at_ms, ?) WHERE arn = ?`, ms(at), arn)
		return oneRow(res, err, "SNS subscription %s", arn)
	})
}

// DeleteSNSSubscription removes one.
func (s *Store) DeleteSNSSubscription(ctx context.Context, arn string) error {
	return s.write(ctx, "DeleteSNSSubscription", func(w *txn) error {
		res, err := w.exec(`DELETE FROM sns_subscriptions WHERE arn = ?`, arn)
		return oneRow(res, err, "SNS subscription %s", arn)
	})
}

// oneRow turns "no row affected" into ErrNotFound.
func oneRow(res sql.Result, err error, what string, args ...any) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", fmt.Sprintf(what, args...), mpmeter.ErrNotFound)
	}
	return nil
}

const snsColumns = `arn, product_code, topic, protocol, endpoint, created_at_ms, confirmed_at_ms`

func scanSNS(r scanner) (mpmeter.SNSSubscription, error) {
	var sub mpmeter.SNSSubscription
	var created int64
	var confirmed sql.NullInt64
	err := r.Scan(&sub.ARN, &sub.ProductCode, &sub.Topic, &sub.Protocol, &sub.Endpoint, &created, &confirmed)
	sub.CreatedAt, sub.ConfirmedAt = fromMS(created), fromNullMS(confirmed)
	return sub, err
}

// SNSSubscription returns one.
func (s *Store) SNSSubscription(ctx context.Context, arn string) (mpmeter.SNSSubscription, error) {
	sub, err := scanSNS(s.rdb.QueryRowContext(ctx, s.d.rebind(`SELECT `+snsColumns+` FROM sns_subscriptions WHERE arn = ?`), arn))
	if err != nil {
		return sub, readErr(ctx, err, "SNS subscription %q", arn)
	}
	return sub, nil
}

// SNSSubscriptions lists them by ARN.
func (s *Store) SNSSubscriptions(ctx context.Context, productCode, topic string, p mpmeter.Page) ([]mpmeter.SNSSubscription, error) {
	q := `SELECT ` + snsColumns + ` FROM sns_subscriptions WHERE arn > ?`
	args := []any{p.After}
	if productCode != "" {
		q += ` AND product_code = ?`
		args = append(args, productCode)
	}
	if topic != "" {
		q += ` AND topic = ?`
		args = append(args, topic)
	}
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(q+` ORDER BY arn LIMIT ?`), append(args, limitOf(p))...)
	if err != nil {
		return nil, readErr(ctx, err, "SNS subscriptions")
	}
	return collect(ctx, rows, "SNS subscriptions", scanSNS)
}

// PutEventBridgeTarget creates a target unless its id exists.
func (s *Store) PutEventBridgeTarget(ctx context.Context, t mpmeter.EventBridgeTarget) (bool, error) {
	created := false
	err := s.write(ctx, "PutEventBridgeTarget", func(w *txn) error {
		res, err := w.exec(`INSERT INTO eventbridge_targets (id, account_id, endpoint, created_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			t.ID, t.AccountID, t.Endpoint, ms(t.CreatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		created = n == 1
		return err
	})
	return created, err
}

// DeleteEventBridgeTarget removes one.
func (s *Store) DeleteEventBridgeTarget(ctx context.Context, id string) error {
	return s.write(ctx, "DeleteEventBridgeTarget", func(w *txn) error {
		res, err := w.exec(`DELETE FROM eventbridge_targets WHERE id = ?`, id)
		return oneRow(res, err, "EventBridge target %s", id)
	})
}

// EventBridgeTargets lists targets by id.
func (s *Store) EventBridgeTargets(ctx context.Context, accountID string, p mpmeter.Page) ([]mpmeter.EventBridgeTarget, error) {
	q := `SELECT id, account_id, endpoint, created_at_ms FROM eventbridge_targets WHERE id > ?`
	args := []any{p.After}
	if accountID != "" {
		q += ` AND account_id = ?`
		args = append(args, accountID)
	}
	rows, err := s.rdb.QueryContext(ctx, s.d.rebind(q+` ORDER BY id LIMIT ?`), append(args, limitOf(p))...)
	if err != nil {
		return nil, readErr(ctx, err, "EventBridge targets")
	}
	return collect(ctx, rows, "EventBridge targets", func(r scanner) (mpmeter.EventBridgeTarget, error) {
		var t mpmeter.EventBridgeTarget
		var created int64
		err := r.Scan(&t.ID, &t.AccountID, &t.Endpoint, &created)
		t.CreatedAt = fromMS(created)
		return t, err
	})
}

const notificationCertAAD = "notification_certificates.private_key_pem:1"

// NotificationCertificate returns the signing certificate, its key opened.
func (s *Store) NotificationCertificate(ctx context.Context) (mpmeter.NotificationCertificate, error) {
	var c mpmeter.NotificationCertificate
	var created int64
	err := s.rdb.QueryRowContext(ctx, `SELECT private_key_pem, certificate_pem, created_at_ms FROM notification_certificates WHERE id = 1`).
		Scan(&c.PrivateKeyPEM, &c.CertificatePEM, &created)
	if err != nil {
		return c, readErr(ctx, err, "notification certificate")
	}
	c.CreatedAt = fromMS(created)
	if bytes.HasPrefix(c.PrivateKeyPEM, []byte(seal.Prefix)) {
		if s.sealer == nil {
			return mpmeter.NotificationCertificate{}, fmt.Errorf("sqlstore: the notification signing key is encrypted: %w", ErrKeyEncryptionKeyRequired)
		}
		plain, err := s.sealer.Open(string(c.PrivateKeyPEM), notificationCertAAD)
		if err != nil {
			return mpmeter.NotificationCertificate{}, fmt.Errorf("sqlstore: notification signing key: %w", err)
		}
		c.PrivateKeyPEM = plain
	}
	return c, nil
}

// AddNotificationCertificate stores the certificate, once.
func (s *Store) AddNotificationCertificate(ctx context.Context, c mpmeter.NotificationCertificate) error {
	key := c.PrivateKeyPEM
	if s.sealer != nil {
		key = []byte(s.sealer.Seal(c.PrivateKeyPEM, notificationCertAAD))
	}
	return s.write(ctx, "AddNotificationCertificate", func(w *txn) error {
		res, err := w.exec(`INSERT INTO notification_certificates (id, private_key_pem, certificate_pem, created_at_ms) VALUES (1, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, nonNil(key), nonNil(c.CertificatePEM), ms(c.CreatedAt))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("notification certificate: %w", mpmeter.ErrExists)
		}
		return nil
	})
}

// resealNotificationCertificate seals a key stored in plain text (before a
// key encryption key was set).
func resealNotificationCertificate(w *txn, sealer *seal.Sealer) (int, error) {
	var key []byte
	err := w.tx.QueryRowContext(w.ctx, `SELECT private_key_pem FROM notification_certificates WHERE id = 1`).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && bytes.HasPrefix(key, []byte(seal.Prefix))) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if _, err := w.exec(`UPDATE notification_certificates SET private_key_pem = ? WHERE id = 1`, []byte(sealer.Seal(key, notificationCertAAD))); err != nil {
		return 0, err
	}
	return 1, nil
}
