// Package notify is the buyer journey's notifications: what AWS tells a
// SaaS seller when a buyer subscribes, cancels or changes a contract, sent
// the way AWS sends it (docs/notifications.md):
//
//   - the fulfillment POST the buyer's browser makes to the product's
//     registration page (x-amzn-marketplace-token);
//   - SNS HTTP/HTTPS deliveries of the product's topics
//     aws-mp-subscription-notification-<code> and
//     aws-mp-entitlement-notification-<code>, signed (SignatureVersion 1 or
//     2) with mpmeter's own certificate, after the SubscriptionConfirmation
//     handshake;
//   - EventBridge events (source aws.agreement-marketplace) POSTed to
//     targets as an API destination would.
//
// Reliability: every notification is a row of the outbox, written in the
// transaction of the change that causes it (mpmeter.NotificationStore), and
// sent by background workers that claim rows with a lease (on PostgreSQL
// FOR UPDATE SKIP LOCKED, so several nodes deliver each row once), with a
// timeout per POST and bounded concurrency, retried by SNS's default HTTP
// delivery policy. Nothing of it runs on an API request's path.
//
// The final metering hour: cancelling writes unsubscribe-pending with a
// follow-up due an hour later (service clock); a worker finds due
// follow-ups and, if the subscription is still cancelled, writes
// unsubscribe-success and License Deprovisioned, once (FinishFollowUp).
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
)

// Store is what notify reads and writes.
type Store interface {
	mpmeter.NotificationStore
	Product(ctx context.Context, code string) (mpmeter.Product, error)
	Subscription(ctx context.Context, licenseArn string) (mpmeter.Subscription, error)
	SubscriptionByAgreement(ctx context.Context, agreementID string) (mpmeter.Subscription, error)
	RegistrationToken(ctx context.Context, token string) (mpmeter.RegistrationToken, error)
}

// Metrics receives one observation per delivery attempt (metrics.Metrics).
// channel is a mpmeter.Channel constant; outcome is "delivered", "retry" or
// "failed".
type Metrics interface {
	ObserveNotificationAttempt(channel, outcome string, d time.Duration)
	ObserveNotificationEvents(n int)
}

// AWSTopicAccount is the account of AWS Marketplace's SNS topics.
const AWSTopicAccount = "287250355862"

// The delivery policy: SNS's default for HTTP/S endpoints, "up to three
// retries with a delay between failed attempts set at 20 seconds" (Amazon
// SNS Developer Guide, "Set the delivery policy for the subscription"):
// numRetries 3, minDelayTarget = maxDelayTarget = 20 s, no immediate
// retries. SNS jitters its retries; so does mpmeter (±10%).
const (
	DefaultMaxAttempts = 4
	DefaultRetryDelay  = 20 * time.Second
	DefaultTimeout     = 15 * time.Second
	DefaultWorkers     = 8
	DefaultPoll        = 500 * time.Millisecond
)

// Config is what a Notifier runs on. Zero values mean the defaults.
type Config struct {
	Store Store
	Clock mpmeter.Clock // the service clock
	// WallClock times retries and leases (real time: an endpoint's outage
	// does not follow the virtual clock); nil means time.Now.
	WallClock func() time.Time
	// BaseURL is mpmeter's own URL as endpoints reach it (SubscribeURL,
	// SigningCertURL, UnsubscribeURL, fulfillment links), without a
	// trailing slash. A func, because a listener on port 0 knows it late.
	BaseURL func() string
	// TopicAccount is the account in the topics' ARNs (AWSTopicAccount).
	TopicAccount string
	// Region of the topics and events (us-east-1).
	Region string
	// SignatureVersion of SNS messages: "1" (SHA1withRSA, SNS's default)
	// or "2" (SHA256withRSA).
	SignatureVersion string
	// Node names this process in leases and the delivery log.
	Node        string
	MaxAttempts int
	RetryDelay  time.Duration
	Timeout     time.Duration // per POST
	Workers     int           // POSTs in flight at most
	Poll        time.Duration // how often the outbox is looked at when nothing woke the workers
	Client      *http.Client  // nil: one with Timeout that never follows redirects
	Metrics     Metrics
	Logger      *slog.Logger
}

// Notifier writes notifications with the changes that cause them and
// delivers them.
type Notifier struct {
	cfg    Config
	signer *signer
	client *http.Client
	wake   chan struct{}

	mu      sync.Mutex
	cancel  context.CancelFunc
	stopped chan struct{}
}

var _ mpmeter.Notifier = (*Notifier)(nil)

// New makes a Notifier and ensures the signing certificate exists (the
// first node to start creates it; the others read it).
func New(ctx context.Context, cfg Config) (*Notifier, error) {
	if cfg.Store == nil || cfg.Clock == nil {
		return nil, errors.New("notify: Config.Store and Config.Clock are required")
	}
	if cfg.WallClock == nil {
		cfg.WallClock = time.Now
	}
	if cfg.BaseURL == nil {
		cfg.BaseURL = func() string { return "http://127.0.0.1:8080" }
	}
	if cfg.TopicAccount == "" {
		cfg.TopicAccount = AWSTopicAccount
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	switch cfg.SignatureVersion {
	case "":
		cfg.SignatureVersion = "1"
	case "1", "2":
	default:
		return nil, fmt.Errorf("notify: SNS SignatureVersion %q is neither 1 nor 2", cfg.SignatureVersion)
	}
	if cfg.Node == "" {
		cfg.Node = "node-" + uuid.NewString()[:8]
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{
			Timeout: cfg.Timeout,
			// SNS and a form POST's recorder report a redirect, they
			// do not follow it: the landing page's answer is the record.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	s, err := loadSigner(ctx, cfg.Store, cfg.WallClock())
	if err != nil {
		return nil, err
	}
	return &Notifier{cfg: cfg, signer: s, client: client, wake: make(chan struct{}, 1)}, nil
}

// SignatureVersion is the SignatureVersion messages are signed with.
func (n *Notifier) SignatureVersion() string { return n.cfg.SignatureVersion }

// Node is the name this Notifier leases deliveries under.
func (n *Notifier) Node() string { return n.cfg.Node }

// kick wakes the workers (a write just added deliveries).
func (n *Notifier) kick() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *Notifier) now() time.Time { return n.cfg.Clock.Now().UTC() }

func newID(prefix string) string {
	u, err := uuid.NewV7()
	if err != nil {
		u = uuid.New()
	}
	return prefix + u.String()
}

// SubscribeOptions say what creating a subscription does besides storing it.
type SubscribeOptions struct {
	// Fulfillment issues a registration token and POSTs it to the
	// product's fulfillment URL, as the buyer's browser does (nothing when
	// the product has no fulfillment URL).
	Fulfillment bool
	// PaymentFailure simulates a failed payment: the subscription is
	// stored expired (it never meters) and subscribe-fail is sent instead
	// of subscribe-success.
	PaymentFailure bool
	// TokenTTL is the issued token's lifetime (4 hours when 0).
	TokenTTL time.Duration
}

// SubscribeResult is what Subscribe did besides storing the subscription.
type SubscribeResult struct {
	// Token is the issued registration token (nil without one).
	Token *mpmeter.RegistrationToken
	// FulfillmentDelivery is the id of the fulfillment POST's delivery
	// (empty without one).
	FulfillmentDelivery string
}

// Subscribe stores a new subscription (sub.Version should be
// mpmeter.CreateOnly) with its token and notifications, in one
// transaction.
func (n *Notifier) Subscribe(ctx context.Context, sub mpmeter.Subscription, opts SubscribeOptions) (SubscribeResult, error) {
	var res SubscribeResult
	p, err := n.cfg.Store.Product(ctx, sub.ProductCode)
	if err != nil {
		return res, err
	}
	now := n.now()
	if opts.PaymentFailure {
		sub.Status, sub.EndedAt = mpmeter.SubscriptionExpired, now
	}
	if sub.AgreementID == "" {
		sub.AgreementID = mpmeter.AgreementIDFor(sub.LicenseArn)
	}
	var out mpmeter.Outbox
	if opts.Fulfillment && p.FulfillmentURL != "" {
		ttl := opts.TokenTTL
		if ttl <= 0 {
			ttl = 4 * time.Hour
		}
		tok := mpmeter.RegistrationToken{Token: NewRegistrationToken(), AccountID: sub.AccountID, ProductCode: sub.ProductCode,
			LicenseArn: sub.LicenseArn, CreatedAt: now, ExpiresAt: now.Add(ttl)}
		tok.ID = mpmeter.RegistrationTokenID(tok.Token)
		res.Token = &tok
		d := n.fulfillment(&out, p, sub, tok.Token, now)
		res.FulfillmentDelivery = d
	}
	action := ActionSubscribeSuccess
	if opts.PaymentFailure {
		action = ActionSubscribeFail
	}
	if err := n.lifecycle(ctx, &out, p, sub, action, now); err != nil {
		return res, err
	}
	if err := n.cfg.Store.PutSubscriptionChange(ctx, sub, res.Token, out); err != nil {
		return res, err
	}
	n.written(out)
	return res, nil
}

// PutSubscription writes a state change of a stored subscription, from old
// to s (a versioned put), with the notifications it causes, in one
// transaction. A change of something else than the status sends nothing.
func (n *Notifier) PutSubscription(ctx context.Context, old, s mpmeter.Subscription) error {
	p, err := n.cfg.Store.Product(ctx, s.ProductCode)
	if err != nil {
		return err
	}
	if s.AgreementID == "" {
		s.AgreementID = old.AgreementID
	}
	now := n.now()
	var out mpmeter.Outbox
	switch {
	case old.Status == s.Status:
	case s.Status == mpmeter.SubscriptionActive:
		err = n.lifecycle(ctx, &out, p, s, ActionSubscribeSuccess, now)
	case s.Status == mpmeter.SubscriptionCancelled:
		err = n.lifecycle(ctx, &out, p, s, ActionUnsubscribePending, now)
	case s.Status == mpmeter.SubscriptionExpired:
		ended := s.EndedAt
		if old.Status == mpmeter.SubscriptionActive {
			// Expired straight from active: the agreement ends now, with
			// no final hour.
			if err = n.lifecycle(ctx, &out, p, s, actionEnded, now); err != nil {
				return err
			}
			ended = now
		}
		err = n.final(ctx, &out, p, s, ended, now)
	}
	if err != nil {
		return err
	}
	if err := n.cfg.Store.PutSubscriptionChange(ctx, s, nil, out); err != nil {
		return err
	}
	n.written(out)
	return nil
}

// EntitlementsUpdated writes entitlement-updated (SNS) and License Updated
// (EventBridge) for s's contract. It is its own transaction, after the
// entitlements' (mpmeter.Notifier).
func (n *Notifier) EntitlementsUpdated(ctx context.Context, s mpmeter.Subscription) error {
	p, err := n.cfg.Store.Product(ctx, s.ProductCode)
	if err != nil {
		return err
	}
	var out mpmeter.Outbox
	if err := n.lifecycle(ctx, &out, p, s, ActionEntitlementUpdated, n.now()); err != nil {
		return err
	}
	if err := n.cfg.Store.PutOutbox(ctx, out); err != nil {
		return err
	}
	n.written(out)
	return nil
}

func (n *Notifier) written(out mpmeter.Outbox) {
	if n.cfg.Metrics != nil && len(out.Events) > 0 {
		n.cfg.Metrics.ObserveNotificationEvents(len(out.Events))
	}
	if len(out.Deliveries) > 0 {
		n.kick()
	}
}

// actionEnded is the EventBridge side of an agreement ending at once
// (expiry): Purchase Agreement Ended; SNS hears of it through final.
const actionEnded = "agreement-ended"

// lifecycle adds the event of action on sub, with its SNS and EventBridge
// deliveries, to out.
func (n *Notifier) lifecycle(ctx context.Context, out *mpmeter.Outbox, p mpmeter.Product, sub mpmeter.Subscription, action string, now time.Time) error {
	ev := mpmeter.NotificationEvent{ID: newID("evt-"), Type: action, AgreementID: sub.AgreementID, ProductCode: sub.ProductCode, CreatedAt: now}
	ev.Key = ev.ID
	if action == ActionUnsubscribePending {
		ended := sub.EndedAt
		if ended.IsZero() {
			ended = now
		}
		ev.EndedAt, ev.FollowUpAt = ended, ended.Add(mpmeter.FinalMeteringWindow)
	}
	out.Events = append(out.Events, ev)
	topic := mpmeter.TopicSubscription
	var types []string
	switch action {
	case ActionSubscribeSuccess:
		types = []string{DetailAgreementCreated, DetailLicenseUpdated}
	case ActionSubscribeFail:
	case ActionUnsubscribePending, actionEnded:
		types = []string{DetailAgreementEnded}
	case ActionUnsubscribeSuccess:
		types = []string{DetailLicenseDeprovisioned}
	case ActionEntitlementUpdated:
		topic = mpmeter.TopicEntitlement
		types = []string{DetailLicenseUpdated}
	}
	if action != actionEnded {
		if err := n.snsDeliveries(ctx, out, ev, p, sub, topic, action, now); err != nil {
			return err
		}
	}
	for _, t := range types {
		if err := n.eventDeliveries(ctx, out, ev, p, sub, t, now); err != nil {
			return err
		}
	}
	return nil
}

// final adds unsubscribe-success and License Deprovisioned for the end at
// ended, keyed so that it happens once however it is reached (the final
// hour passing, or an expiry inside it).
func (n *Notifier) final(ctx context.Context, out *mpmeter.Outbox, p mpmeter.Product, sub mpmeter.Subscription, ended, now time.Time) error {
	before := len(out.Events)
	if err := n.lifecycle(ctx, out, p, sub, ActionUnsubscribeSuccess, now); err != nil {
		return err
	}
	out.Events[before].Key = fmt.Sprintf("final:%s:%d", sub.AgreementID, ended.UnixMilli())
	return nil
}

// followUps finishes the final hours that have ended.
func (n *Notifier) followUps(ctx context.Context) error {
	due, err := n.cfg.Store.DueFollowUps(ctx, n.now(), 100)
	if err != nil {
		return err
	}
	for _, ev := range due {
		var out mpmeter.Outbox
		sub, err := n.cfg.Store.SubscriptionByAgreement(ctx, ev.AgreementID)
		switch {
		case errors.Is(err, mpmeter.ErrNotFound):
		case err != nil:
			return err
		case sub.Status == mpmeter.SubscriptionCancelled && sub.EndedAt.Equal(ev.EndedAt):
			p, err := n.cfg.Store.Product(ctx, sub.ProductCode)
			if err != nil {
				return err
			}
			if err := n.final(ctx, &out, p, sub, sub.EndedAt, n.now()); err != nil {
				return err
			}
		}
		// Otherwise re-subscribed (no unsubscribe-success, as on AWS) or
		// expired (which sent it): just close the follow-up.
		done, err := n.cfg.Store.FinishFollowUp(ctx, ev.ID, out)
		if err != nil {
			return err
		}
		if done {
			n.written(out)
		}
	}
	return nil
}
