package storecache

import (
	"context"
	"errors"
	"time"

	"github.com/mpmeter/mpmeter"
)

// The notification methods (mpmeter.NotificationStore) pass by the cache,
// except PutSubscriptionChange, a subscription write, which invalidates it.
// They need the wrapped store to implement mpmeter.NotificationStore.

var _ mpmeter.NotificationStore = (*Store)(nil)

var errNoNotifications = errors.New("storecache: the wrapped store keeps no notifications")

func (s *Store) notifications() (mpmeter.NotificationStore, error) {
	ns, ok := s.under.(mpmeter.NotificationStore)
	if !ok {
		return nil, errNoNotifications
	}
	return ns, nil
}

// PutSubscriptionChange implements mpmeter.NotificationStore.
func (s *Store) PutSubscriptionChange(ctx context.Context, sub mpmeter.Subscription, tok *mpmeter.RegistrationToken, out mpmeter.Outbox) error {
	ns, err := s.notifications()
	if err != nil {
		return err
	}
	defer s.invalidate()
	return ns.PutSubscriptionChange(ctx, sub, tok, out)
}

// PutOutbox implements mpmeter.NotificationStore.
func (s *Store) PutOutbox(ctx context.Context, out mpmeter.Outbox) error {
	ns, err := s.notifications()
	if err != nil {
		return err
	}
	return ns.PutOutbox(ctx, out)
}

// DueFollowUps implements mpmeter.NotificationStore.
func (s *Store) DueFollowUps(ctx context.Context, at time.Time, limit int) ([]mpmeter.NotificationEvent, error) {
	ns, err := s.notifications()
	if err != nil {
		return nil, err
	}
	return ns.DueFollowUps(ctx, at, limit)
}

// FinishFollowUp implements mpmeter.NotificationStore.
func (s *Store) FinishFollowUp(ctx context.Context, eventID string, out mpmeter.Outbox) (bool, error) {
	ns, err := s.notifications()
	if err != nil {
		return false, err
	}
	return ns.FinishFollowUp(ctx, eventID, out)
}

// ClaimDeliveries implements mpmeter.NotificationStore.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]mpmeter.Delivery, error) {
	ns, err := s.notifications()
	if err != nil {
		return nil, err
	}
	return ns.ClaimDeliveries(ctx, owner, now, lease, limit)
}

// FinishDeliveryAttempt implements mpmeter.NotificationStore.
func (s *Store) FinishDeliveryAttempt(ctx context.Context, owner string, r mpmeter.DeliveryResult) (bool, error) {
	ns, err := s.notifications()
	if err != nil {
		return false, err
	}
	return ns.FinishDeliveryAttempt(ctx, owner, r)
}

// Delivery implements mpmeter.NotificationStore.
func (s *Store) Delivery(ctx context.Context, id string) (mpmeter.Delivery, error) {
	ns, err := s.notifications()
	if err != nil {
		return mpmeter.Delivery{}, err
	}
	return ns.Delivery(ctx, id)
}

// Deliveries implements mpmeter.NotificationStore.
func (s *Store) Deliveries(ctx context.Context, f mpmeter.DeliveryFilter, p mpmeter.Page) ([]mpmeter.Delivery, error) {
	ns, err := s.notifications()
	if err != nil {
		return nil, err
	}
	return ns.Deliveries(ctx, f, p)
}

// DeliveryAttempts implements mpmeter.NotificationStore.
func (s *Store) DeliveryAttempts(ctx context.Context, id string) ([]mpmeter.DeliveryAttempt, error) {
	ns, err := s.notifications()
	if err != nil {
		return nil, err
	}
	return ns.DeliveryAttempts(ctx, id)
}

// PutSNSSubscription implements mpmeter.NotificationStore.
func (s *Store) PutSNSSubscription(ctx context.Context, sub mpmeter.SNSSubscription) (bool, error) {
	ns, err := s.notifications()
	if err != nil {
		return false, err
	}
	return ns.PutSNSSubscription(ctx, sub)
}

// ConfirmSNSSubscription implements mpmeter.NotificationStore.
func (s *Store) ConfirmSNSSubscription(ctx context.Context, arn string, at time.Time) error {
	ns, err := s.notifications()
	if err != nil {
		return err
	}
	return ns.ConfirmSNSSubscription(ctx, arn, at)
}

// DeleteSNSSubscription implements mpmeter.NotificationStore.
func (s *Store) DeleteSNSSubscription(ctx context.Context, arn string) error {
	ns, err := s.notifications()
	if err != nil {
		return err
	}
	return ns.DeleteSNSSubscription(ctx, arn)
}

// SNSSubscription implements mpmeter.NotificationStore.
func (s *Store) SNSSubscription(ctx context.Context, arn string) (mpmeter.SNSSubscription, error) {
	ns, err := s.notifications()
	if err != nil {
		return mpmeter.SNSSubscription{}, err
	}
	return ns.SNSSubscription(ctx, arn)
}

// SNSSubscriptions implements mpmeter.NotificationStore.
func (s *Store) SNSSubscriptions(ctx context.Context, productCode, topic string, p mpmeter.Page) ([]mpmeter.SNSSubscription, error) {
	ns, err := s.notifications()
	if err != nil {
		return nil, err
	}
	return ns.SNSSubscriptions(ctx, productCode, topic, p)
}

// PutEventBridgeTarget implements mpmeter.NotificationStore.
func (s *Store) PutEventBridgeTarget(ctx context.Context, t mpmeter.EventBridgeTarget) (bool, error) {
	ns, err := s.notifications()
	if err != nil {
		return false, err
	}
	return ns.PutEventBridgeTarget(ctx, t)
}

// DeleteEventBridgeTarget implements mpmeter.NotificationStore.
func (s *Store) DeleteEventBridgeTarget(ctx context.Context, id string) error {
	ns, err := s.notifications()
	if err != nil {
		return err
	}
	return ns.DeleteEventBridgeTarget(ctx, id)
}

// EventBridgeTargets implements mpmeter.NotificationStore.
func (s *Store) EventBridgeTargets(ctx context.Context, accountID string, p mpmeter.Page) ([]mpmeter.EventBridgeTarget, error) {
	ns, err := s.notifications()
	if err != nil {
		return nil, err
	}
	return ns.EventBridgeTargets(ctx, accountID, p)
}

// NotificationCertificate implements mpmeter.NotificationStore.
func (s *Store) NotificationCertificate(ctx context.Context) (mpmeter.NotificationCertificate, error) {
	ns, err := s.notifications()
	if err != nil {
		return mpmeter.NotificationCertificate{}, err
	}
	return ns.NotificationCertificate(ctx)
}

// AddNotificationCertificate implements mpmeter.NotificationStore.
func (s *Store) AddNotificationCertificate(ctx context.Context, c mpmeter.NotificationCertificate) error {
	ns, err := s.notifications()
	if err != nil {
		return err
	}
	return ns.AddNotificationCertificate(ctx, c)
}
