package mpmeter

import (
	"context"
	"time"
)

// FinalMeteringWindow is how long a cancelled SaaS subscription still
// accepts usage: AWS sends unsubscribe-pending, then about an hour later
// unsubscribe-success, and records sent in between are accepted.
const FinalMeteringWindow = time.Hour

// MetersAt reports whether s accepts usage at now: while active, and for
// FinalMeteringWindow after it was cancelled (an expired subscription has
// no final window).
func (s Subscription) MetersAt(now time.Time) bool {
	if s.Active() {
		return true
	}
	return s.Status == SubscriptionCancelled && !s.EndedAt.IsZero() && now.Sub(s.EndedAt) < FinalMeteringWindow
}

// Notifier is told of marketplace changes sellers hear about through SNS and
// EventBridge (package notify implements it). A caller that changed a
// contract's entitlements (Store.PutEntitlements) calls EntitlementsUpdated
// afterwards: it writes the entitlement-updated and License Updated
// notifications to the outbox.
type Notifier interface {
	EntitlementsUpdated(ctx context.Context, s Subscription) error
}

// Notification delivery channels.
const (
	ChannelSNS         = "sns"
	ChannelEventBridge = "eventbridge"
	ChannelFulfillment = "fulfillment"
)

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// NotificationEvent is one thing that happened which sellers are told about
// (subscribe-success of an agreement, a SubscriptionConfirmation, ...).
// Its deliveries, one per destination, are in the outbox beside it.
type NotificationEvent struct {
	ID string
	// Key makes the event happen once: an event whose Key is stored already
	// is skipped with its deliveries (two nodes noticing the same final hour
	// end emit one unsubscribe-success).
	Key         string
	Type        string // subscribe-success, unsubscribe-pending, SubscriptionConfirmation, ...
	AgreementID string // "" when it concerns no agreement
	ProductCode string
	CreatedAt   time.Time // service clock
	// FollowUpAt, when set, is when (service clock) something must follow
	// this event unless the state changed: an unsubscribe-pending's final
	// window ends. Store.DueFollowUps finds it.
	FollowUpAt time.Time
	// EndedAt is the subscription end the event is about (follow-ups check
	// the subscription still ended then).
	EndedAt time.Time
}

// Delivery is one HTTP POST of the outbox: rendered in full when its event
// was written, sent by a background worker, retried by its channel's policy.
type Delivery struct {
	ID          string // dlv-... (time-ordered)
	EventID     string
	EventType   string // the event's Type (filled in on read)
	AgreementID string // the event's (filled in on read)
	Channel     string // ChannelSNS, ChannelEventBridge, ChannelFulfillment
	// Destination is what is delivered to: an SNS subscription ARN, an
	// EventBridge target id, or a product code (fulfillment).
	Destination string
	Endpoint    string // the URL POSTed to
	Headers     map[string]string
	Body        []byte
	MaxAttempts int
	ReplayOf    string // the delivery this one replays, if any

	Status        string // DeliveryPending, DeliveryDelivered, DeliveryFailed
	Attempts      int
	NextAttemptAt time.Time // wall clock: retries follow real time
	CreatedAt     time.Time // service clock
	// The last attempt's outcome.
	LastAttemptAt  time.Time
	LastStatusCode int
	LastError      string
	LastLatency    time.Duration
	LastLocation   string // the Location header answered, if any
}

// DeliveryAttempt is one POST of a delivery and what came of it.
type DeliveryAttempt struct {
	DeliveryID string
	Attempt    int // 1, 2, ...
	At         time.Time
	StatusCode int // 0: no answer (Error says why)
	Error      string
	Latency    time.Duration
	Location   string
	Node       string // who sent it
}

// DeliveryResult is what a worker reports after an attempt: the attempt
// and the delivery's new state.
type DeliveryResult struct {
	Attempt       DeliveryAttempt
	Status        string    // DeliveryPending (retry at NextAttemptAt), DeliveryDelivered, DeliveryFailed
	NextAttemptAt time.Time // for DeliveryPending
}

// Outbox is what one change sends: its events and their deliveries
// (Delivery.EventID names one of Events).
type Outbox struct {
	Events     []NotificationEvent
	Deliveries []Delivery
}

// DeliveryFilter selects deliveries. Zero fields do not filter.
type DeliveryFilter struct {
	AgreementID string
	Channel     string
	Status      string
	EventID     string
}

// SNS topics of a product.
const (
	TopicSubscription = "subscription"
	TopicEntitlement  = "entitlement"
)

// SNSSubscription is an HTTP or HTTPS endpoint subscribed to one of a
// product's SNS topics.
type SNSSubscription struct {
	ARN         string // the topic's ARN and ":<uuid>"
	ProductCode string
	Topic       string // TopicSubscription or TopicEntitlement
	Protocol    string // http or https
	Endpoint    string
	CreatedAt   time.Time
	// ConfirmedAt is when its SubscribeURL was visited; zero while pending
	// (nothing but the SubscriptionConfirmation is delivered then).
	ConfirmedAt time.Time
}

// EventBridgeTarget receives a seller account's aws.agreement-marketplace
// events as HTTP POSTs (an API destination).
type EventBridgeTarget struct {
	ID        string // ebt-...
	AccountID string // the seller's
	Endpoint  string
	CreatedAt time.Time
}

// NotificationCertificate is the key and X.509 certificate mpmeter signs
// SNS messages with (served at the SigningCertURL).
type NotificationCertificate struct {
	// PrivateKeyPEM is the PKCS#8 key; stores seal it at rest.
	PrivateKeyPEM  []byte
	CertificatePEM []byte
	CreatedAt      time.Time
}

// NotificationStore is the part of a store the notifications live in
// (sqlstore implements it beside Store).
//
// Outbox writes insert events and their deliveries; an event whose Key is
// stored already is skipped with its deliveries, silently.
type NotificationStore interface {
	// PutSubscriptionChange writes s (a versioned put, exactly as
	// Store.PutSubscription), tok when non-nil (as PutRegistrationToken)
	// and out, in one transaction: all of it or nothing.
	PutSubscriptionChange(ctx context.Context, s Subscription, tok *RegistrationToken, out Outbox) error
	// PutOutbox writes out in one transaction.
	PutOutbox(ctx context.Context, out Outbox) error
	// DueFollowUps returns up to limit events whose FollowUpAt is set and
	// not after at, earliest first.
	DueFollowUps(ctx context.Context, at time.Time, limit int) ([]NotificationEvent, error)
	// FinishFollowUp clears the event's FollowUpAt and writes out, in one
	// transaction, if FollowUpAt was still set; it reports whether it was
	// (false: another node finished it, and nothing was written).
	FinishFollowUp(ctx context.Context, eventID string, out Outbox) (bool, error)

	// ClaimDeliveries leases up to limit pending deliveries due at now
	// (NextAttemptAt not after it) whose lease is free or expired, to owner
	// until now+lease, oldest first. On PostgreSQL claims of several nodes
	// never overlap (FOR UPDATE SKIP LOCKED).
	ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// FinishDeliveryAttempt stores the attempt and, if owner still holds
	// the delivery's lease, its new state (clearing the lease); it reports
	// whether it did.
	FinishDeliveryAttempt(ctx context.Context, owner string, r DeliveryResult) (bool, error)
	// Delivery returns the delivery with this id.
	Delivery(ctx context.Context, id string) (Delivery, error)
	// Deliveries lists deliveries matching f, newest first (p.After is a
	// delivery id: the ones before it).
	Deliveries(ctx context.Context, f DeliveryFilter, p Page) ([]Delivery, error)
	// DeliveryAttempts returns a delivery's attempts, first first.
	DeliveryAttempts(ctx context.Context, deliveryID string) ([]DeliveryAttempt, error)

	// PutSNSSubscription creates s unless its ARN exists (then nothing
	// changes); it reports whether it created it.
	PutSNSSubscription(ctx context.Context, s SNSSubscription) (bool, error)
	// ConfirmSNSSubscription sets the subscription's ConfirmedAt (once).
	ConfirmSNSSubscription(ctx context.Context, arn string, at time.Time) error
	// DeleteSNSSubscription removes it (ErrNotFound when absent).
	DeleteSNSSubscription(ctx context.Context, arn string) error
	// SNSSubscription returns the subscription with this ARN.
	SNSSubscription(ctx context.Context, arn string) (SNSSubscription, error)
	// SNSSubscriptions lists subscriptions by ARN; productCode and topic
	// filter when not empty.
	SNSSubscriptions(ctx context.Context, productCode, topic string, p Page) ([]SNSSubscription, error)

	// PutEventBridgeTarget creates t unless its ID exists; it reports
	// whether it created it.
	PutEventBridgeTarget(ctx context.Context, t EventBridgeTarget) (bool, error)
	// DeleteEventBridgeTarget removes it (ErrNotFound when absent).
	DeleteEventBridgeTarget(ctx context.Context, id string) error
	// EventBridgeTargets lists targets by id; accountID filters when set.
	EventBridgeTargets(ctx context.Context, accountID string, p Page) ([]EventBridgeTarget, error)

	// NotificationCertificate returns the signing certificate
	// (ErrNotFound before one was added).
	NotificationCertificate(ctx context.Context) (NotificationCertificate, error)
	// AddNotificationCertificate stores the signing certificate; when one
	// exists already the call fails with an error wrapping ErrExists (use
	// the stored one).
	AddNotificationCertificate(ctx context.Context, c NotificationCertificate) error
}
