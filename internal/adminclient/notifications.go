package adminclient

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/mpmeter/mpmeter/admin"
)

// Products' fulfillment URL

// ProductUpdate is a PATCH of a product: the dimensions (all of them) and,
// when FulfillmentURL is not nil, a new fulfillment URL ("" removes it).
type ProductUpdate struct {
	Dimensions     []admin.Dimension `json:"dimensions"`
	Version        int64             `json:"version"`
	FulfillmentURL *string           `json:"fulfillment_url,omitempty"`
}

// UpdateProduct applies u to the product if it is still at u.Version.
func (c *Client) UpdateProduct(ctx context.Context, code string, u ProductUpdate) (admin.Product, error) {
	var out admin.Product
	err := c.Do(ctx, http.MethodPatch, "/products/"+esc(code), nil, u, &out)
	return out, err
}

// The fulfillment link

// FulfillmentLink is a browser link that POSTs a new registration token to
// the product's fulfillment URL.
type FulfillmentLink struct {
	URL       string    `json:"url"`
	TokenID   string    `json:"registration_token_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (c *Client) CreateFulfillmentLink(ctx context.Context, agreementID string) (FulfillmentLink, error) {
	var out FulfillmentLink
	err := c.Do(ctx, http.MethodPost, "/subscriptions/"+esc(agreementID)+"/fulfillment-link", nil, nil, &out)
	return out, err
}

// Entitlements

func (c *Client) Entitlements(ctx context.Context, agreementID string) (admin.Entitlements, error) {
	var out admin.Entitlements
	err := c.Do(ctx, http.MethodGet, "/subscriptions/"+esc(agreementID)+"/entitlements", nil, nil, &out)
	return out, err
}

// PutEntitlements replaces the subscription's entitlements with ents (none
// removes every one).
func (c *Client) PutEntitlements(ctx context.Context, agreementID string, ents []admin.Entitlement) (admin.Entitlements, error) {
	if ents == nil {
		ents = []admin.Entitlement{}
	}
	var out admin.Entitlements
	err := c.Do(ctx, http.MethodPut, "/subscriptions/"+esc(agreementID)+"/entitlements", nil, map[string]any{"entitlements": ents}, &out)
	return out, err
}

// SNS subscriptions

// NewSNSSubscription subscribes an HTTP(S) endpoint to a product's topic
// ("subscription" or "entitlement").
type NewSNSSubscription struct {
	ProductCode string `json:"product_code"`
	Topic       string `json:"topic"`
	Protocol    string `json:"protocol"`
	Endpoint    string `json:"endpoint"`
}

func (c *Client) CreateSNSSubscription(ctx context.Context, s NewSNSSubscription) (admin.SNSSubscription, error) {
	var out admin.SNSSubscription
	err := c.Do(ctx, http.MethodPost, "/sns-subscriptions", nil, s, &out)
	return out, err
}

// SNSSubscriptions lists subscriptions; empty productCode or topic match all.
func (c *Client) SNSSubscriptions(ctx context.Context, productCode, topic string, opts ListOptions) ([]admin.SNSSubscription, error) {
	return List[admin.SNSSubscription](ctx, c, "/sns-subscriptions", url.Values{"product_code": {productCode}, "topic": {topic}}, opts)
}

func (c *Client) DeleteSNSSubscription(ctx context.Context, arn string) error {
	return c.Do(ctx, http.MethodDelete, "/sns-subscriptions/"+esc(arn), nil, nil, nil)
}

// EventBridge targets

func (c *Client) CreateEventBridgeTarget(ctx context.Context, accountID, endpoint string) (admin.EventBridgeTarget, error) {
	var out admin.EventBridgeTarget
	err := c.Do(ctx, http.MethodPost, "/eventbridge-targets", nil, map[string]string{"account_id": accountID, "endpoint": endpoint}, &out)
	return out, err
}

// EventBridgeTargets lists targets; an empty accountID matches all.
func (c *Client) EventBridgeTargets(ctx context.Context, accountID string, opts ListOptions) ([]admin.EventBridgeTarget, error) {
	return List[admin.EventBridgeTarget](ctx, c, "/eventbridge-targets", url.Values{"account_id": {accountID}}, opts)
}

func (c *Client) DeleteEventBridgeTarget(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/eventbridge-targets/"+esc(id), nil, nil, nil)
}

// Deliveries

// DeliveryFilter narrows a list of deliveries; empty fields match all.
type DeliveryFilter struct{ AgreementID, Channel, Status string }

// Deliveries lists deliveries, newest first.
func (c *Client) Deliveries(ctx context.Context, f DeliveryFilter, opts ListOptions) ([]admin.Delivery, error) {
	return List[admin.Delivery](ctx, c, "/notifications/deliveries",
		url.Values{"agreement_id": {f.AgreementID}, "channel": {f.Channel}, "status": {f.Status}}, opts)
}

// Delivery is one delivery with its request and every attempt.
func (c *Client) Delivery(ctx context.Context, id string) (admin.Delivery, error) {
	var out admin.Delivery
	err := c.Do(ctx, http.MethodGet, "/notifications/deliveries/"+esc(id), nil, nil, &out)
	return out, err
}

// ReplayDelivery sends the delivery again as a new one, which it answers.
func (c *Client) ReplayDelivery(ctx context.Context, id string) (admin.Delivery, error) {
	var out admin.Delivery
	err := c.Do(ctx, http.MethodPost, "/notifications/deliveries/"+esc(id)+"/replay", nil, nil, &out)
	return out, err
}
