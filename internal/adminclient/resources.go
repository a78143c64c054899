package adminclient

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/mpmeter/mpmeter/admin"
)

// Accounts

// CreateAccount creates the account id (12 digits) named name.
func (c *Client) CreateAccount(ctx context.Context, id, name string) (admin.Account, error) {
	var out admin.Account
	err := c.Do(ctx, http.MethodPost, "/accounts", nil, map[string]string{"id": id, "name": name}, &out)
	return out, err
}

func (c *Client) Account(ctx context.Context, id string) (admin.Account, error) {
	var out admin.Account
	err := c.Do(ctx, http.MethodGet, "/accounts/"+esc(id), nil, nil, &out)
	return out, err
}

func (c *Client) Accounts(ctx context.Context, opts ListOptions) ([]admin.Account, error) {
	return List[admin.Account](ctx, c, "/accounts", nil, opts)
}

// RenameAccount renames the account if it is still at version.
func (c *Client) RenameAccount(ctx context.Context, id, name string, version int64) (admin.Account, error) {
	var out admin.Account
	err := c.Do(ctx, http.MethodPatch, "/accounts/"+esc(id), nil, map[string]any{"name": name, "version": version}, &out)
	return out, err
}

// Access keys

// NewAccessKey is a key to create; ID empty has the server generate one.
type NewAccessKey struct {
	AccountID           string          `json:"account_id"`
	ID                  string          `json:"id,omitempty"`
	Workload            *admin.Workload `json:"workload,omitempty"`
	CredentialsEndpoint bool            `json:"credentials_endpoint,omitempty"`
}

// CreateAccessKey answers the key with its secret, shown only this once.
func (c *Client) CreateAccessKey(ctx context.Context, k NewAccessKey) (admin.NewAccessKey, error) {
	var out admin.NewAccessKey
	err := c.Do(ctx, http.MethodPost, "/access-keys", nil, k, &out)
	return out, err
}

func (c *Client) AccessKey(ctx context.Context, id string) (admin.AccessKey, error) {
	var out admin.AccessKey
	err := c.Do(ctx, http.MethodGet, "/access-keys/"+esc(id), nil, nil, &out)
	return out, err
}

// AccessKeyFilter narrows a list of keys; empty fields match all.
type AccessKeyFilter struct{ AccountID, WorkloadID string }

func (c *Client) AccessKeys(ctx context.Context, f AccessKeyFilter, opts ListOptions) ([]admin.AccessKey, error) {
	return List[admin.AccessKey](ctx, c, "/access-keys", url.Values{"account_id": {f.AccountID}, "workload_id": {f.WorkloadID}}, opts)
}

// RevokeAccessKey revokes the key (conditional on version unless 0).
func (c *Client) RevokeAccessKey(ctx context.Context, id string, version int64) (admin.AccessKey, error) {
	var out admin.AccessKey
	err := c.Do(ctx, http.MethodPost, "/access-keys/"+esc(id)+"/revoke", nil, versioned(version), &out)
	return out, err
}

// Products

// NewProduct is a product to create.
type NewProduct struct {
	Code                 string            `json:"code"`
	SellerAccountID      string            `json:"seller_account_id"`
	Type                 string            `json:"type"`
	Dimensions           []admin.Dimension `json:"dimensions"`
	ConcurrentAgreements bool              `json:"concurrent_agreements,omitempty"`
	FulfillmentURL       string            `json:"fulfillment_url,omitempty"`
}

func (c *Client) CreateProduct(ctx context.Context, p NewProduct) (admin.Product, error) {
	var out admin.Product
	err := c.Do(ctx, http.MethodPost, "/products", nil, p, &out)
	return out, err
}

func (c *Client) Product(ctx context.Context, code string) (admin.Product, error) {
	var out admin.Product
	err := c.Do(ctx, http.MethodGet, "/products/"+esc(code), nil, nil, &out)
	return out, err
}

func (c *Client) Products(ctx context.Context, opts ListOptions) ([]admin.Product, error) {
	return List[admin.Product](ctx, c, "/products", nil, opts)
}

// SetProductDimensions replaces the product's dimensions if it is still at
// version.
func (c *Client) SetProductDimensions(ctx context.Context, code string, dims []admin.Dimension, version int64) (admin.Product, error) {
	var out admin.Product
	err := c.Do(ctx, http.MethodPatch, "/products/"+esc(code), nil, map[string]any{"dimensions": dims, "version": version}, &out)
	return out, err
}

// Subscriptions

// NewSubscription subscribes an account to a product; the empty fields are
// derived by the server.
type NewSubscription struct {
	AccountID          string `json:"account_id"`
	ProductCode        string `json:"product_code"`
	CustomerIdentifier string `json:"customer_identifier,omitempty"`
	LicenseArn         string `json:"license_arn,omitempty"`
	OfferID            string `json:"offer_id,omitempty"`
	FreeTrial          bool   `json:"free_trial,omitempty"`
	// Fulfillment false skips the fulfillment POST (nil: the server's
	// default, POST when the product has a fulfillment URL).
	Fulfillment *bool `json:"fulfillment,omitempty"`
	// Simulate "payment-failure": the payment fails (subscribe-fail).
	Simulate string `json:"simulate,omitempty"`
}

func (c *Client) CreateSubscription(ctx context.Context, s NewSubscription) (admin.Subscription, error) {
	var out admin.Subscription
	err := c.Do(ctx, http.MethodPost, "/subscriptions", nil, s, &out)
	return out, err
}

func (c *Client) Subscription(ctx context.Context, agreementID string) (admin.Subscription, error) {
	var out admin.Subscription
	err := c.Do(ctx, http.MethodGet, "/subscriptions/"+esc(agreementID), nil, nil, &out)
	return out, err
}

// SubscriptionFilter narrows a list of subscriptions; empty fields match all.
type SubscriptionFilter struct{ AccountID, ProductCode, Status string }

func (c *Client) Subscriptions(ctx context.Context, f SubscriptionFilter, opts ListOptions) ([]admin.Subscription, error) {
	return List[admin.Subscription](ctx, c, "/subscriptions",
		url.Values{"account_id": {f.AccountID}, "product_code": {f.ProductCode}, "status": {f.Status}}, opts)
}

// The state changes of a subscription.
const (
	Cancel     = "cancel"
	Expire     = "expire"
	Reactivate = "reactivate"
)

// ChangeSubscription applies change (Cancel, Expire, Reactivate),
// conditional on version unless 0.
func (c *Client) ChangeSubscription(ctx context.Context, agreementID, change string, version int64) (admin.Subscription, error) {
	var out admin.Subscription
	err := c.Do(ctx, http.MethodPost, "/subscriptions/"+esc(agreementID)+"/"+esc(change), nil, versioned(version), &out)
	return out, err
}

// Registration tokens

// NewToken is a registration token to issue for an agreement: expiring in
// ExpiresIn (a Go duration) or at ExpiresAt, else after the server's
// default lifetime.
type NewToken struct {
	AgreementID string     `json:"agreement_id"`
	ExpiresIn   string     `json:"expires_in,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
}

// IssueToken answers the token with its value, shown only this once.
func (c *Client) IssueToken(ctx context.Context, t NewToken) (admin.IssuedToken, error) {
	var out admin.IssuedToken
	err := c.Do(ctx, http.MethodPost, "/registration-tokens", nil, t, &out)
	return out, err
}

func (c *Client) Token(ctx context.Context, id string) (admin.RegistrationToken, error) {
	var out admin.RegistrationToken
	err := c.Do(ctx, http.MethodGet, "/registration-tokens/"+esc(id), nil, nil, &out)
	return out, err
}

func (c *Client) Tokens(ctx context.Context, opts ListOptions) ([]admin.RegistrationToken, error) {
	return List[admin.RegistrationToken](ctx, c, "/registration-tokens", nil, opts)
}

func (c *Client) ExpireToken(ctx context.Context, id string) (admin.RegistrationToken, error) {
	var out admin.RegistrationToken
	err := c.Do(ctx, http.MethodPost, "/registration-tokens/"+esc(id)+"/expire", nil, nil, &out)
	return out, err
}

// Signing keys

func (c *Client) SigningKeys(ctx context.Context) ([]admin.SigningKey, error) {
	return List[admin.SigningKey](ctx, c, "/signing-keys", nil, ListOptions{})
}

func (c *Client) RotateSigningKey(ctx context.Context) (admin.SigningKey, error) {
	var out admin.SigningKey
	err := c.Do(ctx, http.MethodPost, "/signing-keys/rotate", nil, nil, &out)
	return out, err
}

// The service clock

func (c *Client) Clock(ctx context.Context) (admin.Clock, error) {
	var out admin.Clock
	err := c.Do(ctx, http.MethodGet, "/clock", nil, nil, &out)
	return out, err
}

func (c *Client) SetClock(ctx context.Context, now time.Time) (admin.Clock, error) {
	var out admin.Clock
	err := c.Do(ctx, http.MethodPut, "/clock", nil, map[string]time.Time{"now": now}, &out)
	return out, err
}

// AdvanceClock moves the clock by a Go duration ("5h", "-30m").
func (c *Client) AdvanceClock(ctx context.Context, by string) (admin.Clock, error) {
	var out admin.Clock
	err := c.Do(ctx, http.MethodPost, "/clock/advance", nil, map[string]string{"by": by}, &out)
	return out, err
}

func (c *Client) ResetClock(ctx context.Context) (admin.Clock, error) {
	var out admin.Clock
	err := c.Do(ctx, http.MethodPost, "/clock/reset", nil, nil, &out)
	return out, err
}

// The seed export

// ExportSeed copies the marketplace as a seed file (YAML, secrets
// included) to w.
func (c *Client) ExportSeed(ctx context.Context, w io.Writer) error {
	body, err := c.Stream(ctx, "/seed", nil)
	if err != nil {
		return err
	}
	defer body.Close()
	if _, err := io.Copy(w, body); err != nil {
		return c.unreachable(err)
	}
	return nil
}
