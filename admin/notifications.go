package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/notify"
	"github.com/mpmeter/mpmeter/seed"
)

// Notifications is the buyer journey's side of the admin API
// (*notify.Notifier): subscription changes go through it, so that they and
// the notifications they cause are one transaction.
type Notifications interface {
	Subscribe(ctx context.Context, sub mpmeter.Subscription, opts notify.SubscribeOptions) (notify.SubscribeResult, error)
	PutSubscription(ctx context.Context, old, s mpmeter.Subscription) error
	SubscribeEndpoint(ctx context.Context, productCode, topic, protocol, endpoint string) (mpmeter.SNSSubscription, error)
	Unsubscribe(ctx context.Context, arn string) error
	AddTarget(ctx context.Context, accountID, endpoint string) (mpmeter.EventBridgeTarget, error)
	Replay(ctx context.Context, id string) (mpmeter.Delivery, error)
	TopicARN(topic, productCode string) string
	FormPageURL(token string) string
	SigningCertURL() string
}

// NotificationStore is what the notification routes read.
type NotificationStore interface {
	Delivery(ctx context.Context, id string) (mpmeter.Delivery, error)
	Deliveries(ctx context.Context, f mpmeter.DeliveryFilter, p mpmeter.Page) ([]mpmeter.Delivery, error)
	DeliveryAttempts(ctx context.Context, id string) ([]mpmeter.DeliveryAttempt, error)
	SNSSubscriptions(ctx context.Context, productCode, topic string, p mpmeter.Page) ([]mpmeter.SNSSubscription, error)
	EventBridgeTargets(ctx context.Context, accountID string, p mpmeter.Page) ([]mpmeter.EventBridgeTarget, error)
	DeleteEventBridgeTarget(ctx context.Context, id string) error
}

// putSubscription writes a state change of a subscription: with its
// notifications when the server sends them.
func (a *API) putSubscription(ctx context.Context, old, s mpmeter.Subscription) error {
	if a.cfg.Notifications != nil {
		return a.cfg.Notifications.PutSubscription(ctx, old, s)
	}
	return a.cfg.Store.PutSubscription(ctx, s)
}

// Fulfillment is what creating a subscription did in the buyer's browser's
// place.
type Fulfillment struct {
	URL        string    `json:"url" doc:"The product's fulfillment URL the form was POSTed to."`
	DeliveryID string    `json:"delivery_id" doc:"The POST in the delivery log (GET /notifications/deliveries/{id}): the landing page's status and Location."`
	TokenID    string    `json:"registration_token_id"`
	Token      string    `json:"registration_token" doc:"The x-amzn-marketplace-token POSTed; shown only here."`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Delivery is one notification POST and its latest outcome.
type Delivery struct {
	ID             string            `json:"id"`
	EventID        string            `json:"event_id"`
	EventType      string            `json:"event_type" doc:"subscribe-success, unsubscribe-pending, SubscriptionConfirmation, fulfillment, ..."`
	AgreementID    string            `json:"agreement_id,omitempty"`
	Channel        string            `json:"channel" enum:"sns,eventbridge,fulfillment"`
	Destination    string            `json:"destination" doc:"SNS subscription ARN, EventBridge target id, or product code (fulfillment)."`
	Endpoint       string            `json:"endpoint"`
	Status         string            `json:"status" enum:"pending,delivered,failed"`
	Attempts       int               `json:"attempts"`
	MaxAttempts    int               `json:"max_attempts"`
	NextAttemptAt  *time.Time        `json:"next_attempt_at,omitempty" doc:"While pending (wall clock)."`
	CreatedAt      time.Time         `json:"created_at"`
	LastAttemptAt  *time.Time        `json:"last_attempt_at,omitempty"`
	LastStatusCode int               `json:"last_status_code,omitempty"`
	LastError      string            `json:"last_error,omitempty"`
	LastLatencyMS  float64           `json:"last_latency_ms,omitempty"`
	LastLocation   string            `json:"last_location,omitempty" doc:"The Location the endpoint answered (a landing page's redirect)."`
	ReplayOf       string            `json:"replay_of,omitempty"`
	Headers        map[string]string `json:"headers,omitempty" doc:"In the single-delivery answer only."`
	Body           string            `json:"body,omitempty" doc:"The request body, in the single-delivery answer only."`
	AttemptLog     []Attempt         `json:"attempt_log,omitempty" doc:"Every attempt, in the single-delivery answer only."`
}

// Attempt is one POST of a delivery.
type Attempt struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	LatencyMS  float64   `json:"latency_ms"`
	Location   string    `json:"location,omitempty"`
	Node       string    `json:"node"`
}

func deliveryOut(d mpmeter.Delivery) Delivery {
	out := Delivery{ID: d.ID, EventID: d.EventID, EventType: d.EventType, AgreementID: d.AgreementID, Channel: d.Channel, Destination: d.Destination,
		Endpoint: d.Endpoint, Status: d.Status, Attempts: d.Attempts, MaxAttempts: d.MaxAttempts, CreatedAt: d.CreatedAt.UTC(),
		LastStatusCode: d.LastStatusCode, LastError: d.LastError, LastLatencyMS: float64(d.LastLatency.Microseconds()) / 1000,
		LastLocation: d.LastLocation, ReplayOf: d.ReplayOf}
	if d.Status == mpmeter.DeliveryPending {
		t := d.NextAttemptAt.UTC()
		out.NextAttemptAt = &t
	}
	if !d.LastAttemptAt.IsZero() {
		t := d.LastAttemptAt.UTC()
		out.LastAttemptAt = &t
	}
	return out
}

// SNSSubscription is an endpoint subscribed to a product's topic.
type SNSSubscription struct {
	ARN         string     `json:"subscription_arn"`
	TopicARN    string     `json:"topic_arn"`
	ProductCode string     `json:"product_code"`
	Topic       string     `json:"topic" enum:"subscription,entitlement"`
	Protocol    string     `json:"protocol" enum:"http,https"`
	Endpoint    string     `json:"endpoint"`
	CreatedAt   time.Time  `json:"created_at"`
	ConfirmedAt *time.Time `json:"confirmed_at,omitempty" doc:"When its SubscribeURL was visited; absent while pending confirmation (nothing is delivered to it then)."`
}

func (a *API) snsOut(s mpmeter.SNSSubscription) SNSSubscription {
	out := SNSSubscription{ARN: s.ARN, TopicARN: a.cfg.Notifications.TopicARN(s.Topic, s.ProductCode), ProductCode: s.ProductCode, Topic: s.Topic,
		Protocol: s.Protocol, Endpoint: s.Endpoint, CreatedAt: s.CreatedAt.UTC()}
	if !s.ConfirmedAt.IsZero() {
		t := s.ConfirmedAt.UTC()
		out.ConfirmedAt = &t
	}
	return out
}

// EventBridgeTarget is an endpoint receiving a seller's events.
type EventBridgeTarget struct {
	ID        string    `json:"id"`
	AccountID string    `json:"account_id"`
	Endpoint  string    `json:"endpoint"`
	CreatedAt time.Time `json:"created_at"`
}

func (a *API) registerNotifications(api huma.API) {
	n, st := a.cfg.Notifications, a.cfg.NotificationStore
	if n == nil || st == nil {
		return
	}
	type deliveryList struct {
		PageParams
		AgreementID string `query:"agreement_id"`
		Channel     string `query:"channel" enum:"sns,eventbridge,fulfillment,"`
		Status      string `query:"status" enum:"pending,delivered,failed,"`
	}
	huma.Register(api, op("list-deliveries", http.MethodGet, "/notifications/deliveries", "List notification deliveries, newest first", "notifications"),
		func(ctx context.Context, in *deliveryList) (*struct{ Body List[Delivery] }, error) {
			pg, err := in.page()
			if err != nil {
				return nil, err
			}
			ds, err := st.Deliveries(ctx, mpmeter.DeliveryFilter{AgreementID: in.AgreementID, Channel: in.Channel, Status: in.Status}, pg)
			if err != nil {
				return nil, a.storeErr(ctx, "deliveries", err)
			}
			ds, next := cut(ds, pg, func(d mpmeter.Delivery) string { return d.ID })
			out := &struct{ Body List[Delivery] }{List[Delivery]{Items: []Delivery{}, NextCursor: next}}
			for _, d := range ds {
				out.Body.Items = append(out.Body.Items, deliveryOut(d))
			}
			return out, nil
		})
	type deliveryPath struct {
		ID string `path:"id"`
	}
	huma.Register(api, op("get-delivery", http.MethodGet, "/notifications/deliveries/{id}", "Get a delivery with its request and every attempt", "notifications"),
		func(ctx context.Context, in *deliveryPath) (*struct{ Body Delivery }, error) {
			d, err := st.Delivery(ctx, in.ID)
			if err != nil {
				return nil, a.storeErr(ctx, "delivery "+in.ID, err)
			}
			atts, err := st.DeliveryAttempts(ctx, in.ID)
			if err != nil {
				return nil, a.storeErr(ctx, "delivery "+in.ID, err)
			}
			out := deliveryOut(d)
			out.Headers, out.Body, out.AttemptLog = d.Headers, string(d.Body), []Attempt{}
			for _, at := range atts {
				out.AttemptLog = append(out.AttemptLog, Attempt{Attempt: at.Attempt, At: at.At.UTC(), StatusCode: at.StatusCode, Error: at.Error,
					LatencyMS: float64(at.Latency.Microseconds()) / 1000, Location: at.Location, Node: at.Node})
			}
			return &struct{ Body Delivery }{out}, nil
		})
	huma.Register(api, created(op("replay-delivery", http.MethodPost, "/notifications/deliveries/{id}/replay", "Send a delivery again (the same request, as a new delivery)", "notifications")),
		func(ctx context.Context, in *deliveryPath) (*struct{ Body Delivery }, error) {
			d, err := n.Replay(ctx, in.ID)
			if err != nil {
				return nil, a.storeErr(ctx, "delivery "+in.ID, err)
			}
			return &struct{ Body Delivery }{deliveryOut(d)}, nil
		})

	type snsIn struct {
		Body struct {
			ProductCode string `json:"product_code"`
			Topic       string `json:"topic" enum:"subscription,entitlement"`
			Protocol    string `json:"protocol" enum:"http,https"`
			Endpoint    string `json:"endpoint"`
		}
	}
	huma.Register(api, created(op("create-sns-subscription", http.MethodPost, "/sns-subscriptions", "Subscribe an HTTP(S) endpoint to a product's SNS topic (it is sent a SubscriptionConfirmation)", "notifications")),
		func(ctx context.Context, in *snsIn) (*struct{ Body SNSSubscription }, error) {
			b := in.Body
			if err := invalidAll("SNS subscription", seed.CheckSNSSubscription(b.Topic, b.Protocol, b.Endpoint)); err != nil {
				return nil, err
			}
			if err := a.mustExist(ctx, "product", b.ProductCode, func() error { _, err := a.cfg.Store.Product(ctx, b.ProductCode); return err }); err != nil {
				return nil, err
			}
			s, err := n.SubscribeEndpoint(ctx, b.ProductCode, b.Topic, b.Protocol, b.Endpoint)
			if err != nil {
				if s.ARN == "" {
					return nil, invalid("%v", err)
				}
				return nil, a.storeErr(ctx, "SNS subscription", err)
			}
			return &struct{ Body SNSSubscription }{a.snsOut(s)}, nil
		})
	type snsList struct {
		PageParams
		ProductCode string `query:"product_code"`
		Topic       string `query:"topic" enum:"subscription,entitlement,"`
	}
	huma.Register(api, op("list-sns-subscriptions", http.MethodGet, "/sns-subscriptions", "List SNS subscriptions, by ARN", "notifications"),
		func(ctx context.Context, in *snsList) (*struct{ Body List[SNSSubscription] }, error) {
			pg, err := in.page()
			if err != nil {
				return nil, err
			}
			subs, err := st.SNSSubscriptions(ctx, in.ProductCode, in.Topic, pg)
			if err != nil {
				return nil, a.storeErr(ctx, "SNS subscriptions", err)
			}
			subs, next := cut(subs, pg, func(s mpmeter.SNSSubscription) string { return s.ARN })
			out := &struct{ Body List[SNSSubscription] }{List[SNSSubscription]{Items: []SNSSubscription{}, NextCursor: next}}
			for _, s := range subs {
				out.Body.Items = append(out.Body.Items, a.snsOut(s))
			}
			return out, nil
		})
	type arnPath struct {
		ARN string `path:"arn"`
	}
	huma.Register(api, op("delete-sns-subscription", http.MethodDelete, "/sns-subscriptions/{arn}", "Unsubscribe an endpoint", "notifications"),
		func(ctx context.Context, in *arnPath) (*struct{}, error) {
			return nil, a.storeErr(ctx, "SNS subscription "+in.ARN, n.Unsubscribe(ctx, in.ARN))
		})

	type targetIn struct {
		Body struct {
			AccountID string `json:"account_id" doc:"The seller account whose events the target receives."`
			Endpoint  string `json:"endpoint"`
		}
	}
	huma.Register(api, created(op("create-eventbridge-target", http.MethodPost, "/eventbridge-targets", "Send a seller's aws.agreement-marketplace events to an HTTP(S) endpoint", "notifications")),
		func(ctx context.Context, in *targetIn) (*struct{ Body EventBridgeTarget }, error) {
			b := in.Body
			if err := invalidAll("EventBridge target", seed.CheckEndpointURL(b.Endpoint)); err != nil {
				return nil, err
			}
			if err := a.mustExist(ctx, "account", b.AccountID, func() error { _, err := a.cfg.Store.Account(ctx, b.AccountID); return err }); err != nil {
				return nil, err
			}
			t, err := n.AddTarget(ctx, b.AccountID, b.Endpoint)
			if err != nil {
				if t.ID == "" {
					return nil, invalid("%v", err)
				}
				return nil, a.storeErr(ctx, "EventBridge target", err)
			}
			return &struct{ Body EventBridgeTarget }{EventBridgeTarget{ID: t.ID, AccountID: t.AccountID, Endpoint: t.Endpoint, CreatedAt: t.CreatedAt.UTC()}}, nil
		})
	type targetList struct {
		PageParams
		AccountID string `query:"account_id"`
	}
	huma.Register(api, op("list-eventbridge-targets", http.MethodGet, "/eventbridge-targets", "List EventBridge targets, by id", "notifications"),
		func(ctx context.Context, in *targetList) (*struct{ Body List[EventBridgeTarget] }, error) {
			pg, err := in.page()
			if err != nil {
				return nil, err
			}
			ts, err := st.EventBridgeTargets(ctx, in.AccountID, pg)
			if err != nil {
				return nil, a.storeErr(ctx, "EventBridge targets", err)
			}
			ts, next := cut(ts, pg, func(t mpmeter.EventBridgeTarget) string { return t.ID })
			out := &struct{ Body List[EventBridgeTarget] }{List[EventBridgeTarget]{Items: []EventBridgeTarget{}, NextCursor: next}}
			for _, t := range ts {
				out.Body.Items = append(out.Body.Items, EventBridgeTarget{ID: t.ID, AccountID: t.AccountID, Endpoint: t.Endpoint, CreatedAt: t.CreatedAt.UTC()})
			}
			return out, nil
		})
	type targetPath struct {
		ID string `path:"id"`
	}
	huma.Register(api, op("delete-eventbridge-target", http.MethodDelete, "/eventbridge-targets/{id}", "Remove an EventBridge target", "notifications"),
		func(ctx context.Context, in *targetPath) (*struct{}, error) {
			return nil, a.storeErr(ctx, "EventBridge target "+in.ID, st.DeleteEventBridgeTarget(ctx, in.ID))
		})

	type linkOut struct {
		Body struct {
			URL       string    `json:"url" doc:"Open it in a browser: the page POSTs the form to the fulfillment URL, as AWS's page does after a purchase. It carries a new registration token; anyone with the link can use it until it expires."`
			TokenID   string    `json:"registration_token_id"`
			ExpiresAt time.Time `json:"expires_at"`
		}
	}
	huma.Register(api, created(op("create-fulfillment-link", http.MethodPost, "/subscriptions/{agreement_id}/fulfillment-link", "Issue a registration token and a browser link that submits it to the fulfillment URL", "subscriptions")),
		func(ctx context.Context, in *agreementPath) (*linkOut, error) {
			sub, err := a.cfg.Store.SubscriptionByAgreement(ctx, in.AgreementID)
			if err != nil {
				return nil, a.storeErr(ctx, "subscription "+in.AgreementID, err)
			}
			p, err := a.cfg.Store.Product(ctx, sub.ProductCode)
			if err != nil {
				return nil, a.storeErr(ctx, "product "+sub.ProductCode, err)
			}
			if p.FulfillmentURL == "" {
				return nil, conflict("product %s has no fulfillment_url", p.Code)
			}
			now := a.now()
			t := mpmeter.RegistrationToken{Token: notify.NewRegistrationToken(), AccountID: sub.AccountID, ProductCode: sub.ProductCode,
				LicenseArn: sub.LicenseArn, CreatedAt: now, ExpiresAt: now.Add(a.cfg.TokenTTL)}
			if err := a.storeErr(ctx, "registration token", a.cfg.Store.PutRegistrationToken(ctx, t)); err != nil {
				return nil, err
			}
			out := &linkOut{}
			out.Body.URL, out.Body.TokenID, out.Body.ExpiresAt = n.FormPageURL(t.Token), mpmeter.RegistrationTokenID(t.Token), t.ExpiresAt.UTC()
			return out, nil
		})
}
