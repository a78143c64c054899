package admin

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/notify"
	"github.com/mpmeter/mpmeter/seed"
)

// --- products ---

// Dimension is a metering dimension of a product.
type Dimension struct {
	Name         string `json:"name"`
	Description  string `json:"description,omitempty"`
	Unit         string `json:"unit,omitempty" doc:"What one unit is: Users, GB, Hrs, ..."`
	PricePerUnit string `json:"price_per_unit,omitempty" doc:"USD per unit, a decimal string." example:"0.05"`
}

// Product is a listing.
type Product struct {
	Code                 string      `json:"code" doc:"The ProductCode."`
	SellerAccountID      string      `json:"seller_account_id"`
	Type                 string      `json:"type" enum:"saas,ami,container"`
	Dimensions           []Dimension `json:"dimensions"`
	ConcurrentAgreements bool        `json:"concurrent_agreements" doc:"SaaS: a buyer may hold several agreements at once; usage names them by account and license ARN."`
	FulfillmentURL       string      `json:"fulfillment_url,omitempty" doc:"SaaS: the seller's registration page, where a new subscription's registration token is POSTed."`
	Version              int64       `json:"version"`
}

func productOut(p mpmeter.Product) Product {
	out := Product{Code: p.Code, SellerAccountID: p.SellerAccountID, Type: p.Type, ConcurrentAgreements: p.ConcurrentAgreements, FulfillmentURL: p.FulfillmentURL, Version: p.Version, Dimensions: []Dimension{}}
	for _, d := range p.DimensionList() {
		out.Dimensions = append(out.Dimensions, Dimension{Name: d.Name, Description: d.Description, Unit: d.Unit, PricePerUnit: d.PricePerUnit})
	}
	return out
}

// dims checks dimensions by the seed's rules and converts them.
func dims(in []Dimension) ([]string, map[string]mpmeter.DimensionDetails, seed.Product) {
	sp := seed.Product{}
	var names []string
	var details map[string]mpmeter.DimensionDetails
	for _, d := range in {
		names = append(names, d.Name)
		det := mpmeter.DimensionDetails{Description: d.Description, Unit: d.Unit, PricePerUnit: d.PricePerUnit}
		if det != (mpmeter.DimensionDetails{}) {
			if details == nil {
				details = map[string]mpmeter.DimensionDetails{}
				sp.DimensionDetails = map[string]seed.DimensionDetails{}
			}
			details[d.Name] = det
			sp.DimensionDetails[d.Name] = seed.DimensionDetails{Description: d.Description, Unit: d.Unit, Price: d.PricePerUnit}
		}
	}
	sp.Dimensions = names
	return names, details, sp
}

type productIn struct {
	Body struct {
		Code                 string      `json:"code"`
		SellerAccountID      string      `json:"seller_account_id"`
		Type                 string      `json:"type" enum:"saas,ami,container"`
		Dimensions           []Dimension `json:"dimensions" minItems:"1"`
		ConcurrentAgreements bool        `json:"concurrent_agreements,omitempty"`
		FulfillmentURL       string      `json:"fulfillment_url,omitempty"`
	}
}

type productPath struct {
	Code string `path:"code"`
}

type productUpdate struct {
	Code string `path:"code"`
	Body struct {
		Dimensions []Dimension `json:"dimensions" minItems:"1" doc:"The new dimensions, replacing the old (usage already stored stays as it is)."`
		Version    int64       `json:"version" minimum:"1"`
		// FulfillmentURL replaces the fulfillment URL when present ("" removes it).
		FulfillmentURL *string `json:"fulfillment_url,omitempty" doc:"Replaces the fulfillment URL when given; an empty string removes it."`
	}
}

type productOutput struct{ Body Product }

func (a *API) registerProducts(api huma.API) {
	huma.Register(api, created(op("create-product", http.MethodPost, "/products", "Create a product", "products")),
		func(ctx context.Context, in *productIn) (*productOutput, error) {
			b := in.Body
			names, details, sp := dims(b.Dimensions)
			sp.Code, sp.Seller, sp.Type, sp.ConcurrentAgreements, sp.FulfillmentURL = b.Code, b.SellerAccountID, b.Type, b.ConcurrentAgreements, b.FulfillmentURL
			if err := invalidAll("product", append(seed.CheckProductCode(b.Code), seed.CheckProduct(sp)...)); err != nil {
				return nil, err
			}
			if err := a.mustExist(ctx, "seller account", b.SellerAccountID, func() error { _, err := a.cfg.Store.Account(ctx, b.SellerAccountID); return err }); err != nil {
				return nil, err
			}
			what := "product " + b.Code
			p := mpmeter.Product{Code: b.Code, SellerAccountID: b.SellerAccountID, Type: b.Type, Dimensions: names, DimensionDetails: details,
				ConcurrentAgreements: b.ConcurrentAgreements, FulfillmentURL: b.FulfillmentURL, Version: mpmeter.CreateOnly}
			if err := a.storeErr(ctx, what, a.cfg.Store.PutProduct(ctx, p)); err != nil {
				return nil, err
			}
			got, err := a.cfg.Store.Product(ctx, b.Code)
			return &productOutput{productOut(got)}, a.storeErr(ctx, what, err)
		})
	huma.Register(api, op("get-product", http.MethodGet, "/products/{code}", "Get a product", "products"),
		func(ctx context.Context, in *productPath) (*productOutput, error) {
			p, err := a.cfg.Store.Product(ctx, in.Code)
			return &productOutput{productOut(p)}, a.storeErr(ctx, "product "+in.Code, err)
		})
	huma.Register(api, op("list-products", http.MethodGet, "/products", "List products, by code", "products"),
		func(ctx context.Context, in *PageParams) (*struct{ Body List[Product] }, error) {
			pg, err := in.page()
			if err != nil {
				return nil, err
			}
			ps, err := a.cfg.Store.Products(ctx, pg)
			if err != nil {
				return nil, a.storeErr(ctx, "products", err)
			}
			ps, next := cut(ps, pg, func(p mpmeter.Product) string { return p.Code })
			out := &struct{ Body List[Product] }{List[Product]{Items: []Product{}, NextCursor: next}}
			for _, p := range ps {
				out.Body.Items = append(out.Body.Items, productOut(p))
			}
			return out, nil
		})
	huma.Register(api, op("update-product", http.MethodPatch, "/products/{code}", "Replace a product's dimensions", "products"),
		func(ctx context.Context, in *productUpdate) (*productOutput, error) {
			what := "product " + in.Code
			cur, err := a.cfg.Store.Product(ctx, in.Code)
			if err != nil {
				return nil, a.storeErr(ctx, what, err)
			}
			names, details, sp := dims(in.Body.Dimensions)
			sp.Code, sp.Seller, sp.Type, sp.ConcurrentAgreements, sp.FulfillmentURL = cur.Code, cur.SellerAccountID, cur.Type, cur.ConcurrentAgreements, cur.FulfillmentURL
			if in.Body.FulfillmentURL != nil {
				sp.FulfillmentURL, cur.FulfillmentURL = *in.Body.FulfillmentURL, *in.Body.FulfillmentURL
			}
			if err := invalidAll("product", seed.CheckProduct(sp)); err != nil {
				return nil, err
			}
			cur.Dimensions, cur.DimensionDetails, cur.Version = names, details, in.Body.Version
			if err := a.storeErr(ctx, what, a.cfg.Store.PutProduct(ctx, cur)); err != nil {
				return nil, err
			}
			got, err := a.cfg.Store.Product(ctx, in.Code)
			return &productOutput{productOut(got)}, a.storeErr(ctx, what, err)
		})
}

// --- subscriptions ---

// Subscription is a buyer's agreement for a product.
type Subscription struct {
	AgreementID        string     `json:"agreement_id" doc:"agmt-..., stable for the agreement's life."`
	AccountID          string     `json:"account_id" doc:"The buyer (CustomerAWSAccountId)."`
	ProductCode        string     `json:"product_code"`
	CustomerIdentifier string     `json:"customer_identifier,omitempty" doc:"What ResolveCustomer answers and BatchMeterUsage names; none for concurrent-agreements products."`
	LicenseArn         string     `json:"license_arn"`
	OfferID            string     `json:"offer_id,omitempty"`
	FreeTrial          bool       `json:"free_trial"`
	Status             string     `json:"status" enum:"active,cancelled,expired"`
	StartTime          time.Time  `json:"start_time" doc:"When the agreement began (service clock)."`
	EndTime            *time.Time `json:"end_time,omitempty" doc:"When it was cancelled or expired; absent while active."`
	Version            int64      `json:"version"`
	// Fulfillment is set in a create's answer when the token was POSTed.
	Fulfillment *Fulfillment `json:"fulfillment,omitempty" doc:"In a create's answer: the fulfillment POST made in the buyer's browser's place."`
}

func subscriptionOut(s mpmeter.Subscription) Subscription {
	out := Subscription{AgreementID: s.AgreementID, AccountID: s.AccountID, ProductCode: s.ProductCode, CustomerIdentifier: s.CustomerIdentifier,
		LicenseArn: s.LicenseArn, OfferID: s.OfferID, FreeTrial: s.FreeTrial, Status: s.Status, StartTime: s.CreatedAt.UTC(), Version: s.Version}
	if !s.EndedAt.IsZero() {
		e := s.EndedAt.UTC()
		out.EndTime = &e
	}
	return out
}

type subscriptionIn struct {
	Body struct {
		AccountID          string `json:"account_id"`
		ProductCode        string `json:"product_code"`
		CustomerIdentifier string `json:"customer_identifier,omitempty" doc:"Derived from account and product when absent (none for concurrent-agreements products)."`
		LicenseArn         string `json:"license_arn,omitempty" doc:"Derived from account and product when absent (random for concurrent-agreements products, one per agreement)."`
		OfferID            string `json:"offer_id,omitempty"`
		FreeTrial          bool   `json:"free_trial,omitempty"`
		Fulfillment        *bool  `json:"fulfillment,omitempty" doc:"Do what the buyer's browser does: issue a registration token and POST it to the product's fulfillment URL (default true when the product has one)."`
		Simulate           string `json:"simulate,omitempty" enum:"payment-failure" doc:"payment-failure: the payment fails; subscribe-fail is sent and the subscription is stored expired."`
	}
}

type agreementPath struct {
	AgreementID string `path:"agreement_id"`
}

type subscriptionList struct {
	PageParams
	AccountID   string `query:"account_id"`
	ProductCode string `query:"product_code"`
	Status      string `query:"status" enum:"active,cancelled,expired,"`
}

type stateIn struct {
	AgreementID string     `path:"agreement_id"`
	Body        *versionIn `required:"false"`
}

type subscriptionOutput struct{ Body Subscription }

// transitions: which statuses each state change leaves from, and where to.
var transitions = map[string]struct {
	from []string
	to   string
}{
	"cancel":     {[]string{mpmeter.SubscriptionActive}, mpmeter.SubscriptionCancelled},
	"expire":     {[]string{mpmeter.SubscriptionActive, mpmeter.SubscriptionCancelled}, mpmeter.SubscriptionExpired},
	"reactivate": {[]string{mpmeter.SubscriptionCancelled, mpmeter.SubscriptionExpired}, mpmeter.SubscriptionActive},
}

func (a *API) registerSubscriptions(api huma.API) {
	huma.Register(api, created(op("create-subscription", http.MethodPost, "/subscriptions", "Subscribe a buyer to a product (an agreement)", "subscriptions")),
		func(ctx context.Context, in *subscriptionIn) (*subscriptionOutput, error) {
			sub, err := a.newSubscription(ctx, in)
			if err != nil {
				return nil, err
			}
			what := "subscription of " + sub.AccountID + " to " + sub.ProductCode
			var fulfillment *Fulfillment
			if a.cfg.Notifications != nil {
				opts := notify.SubscribeOptions{Fulfillment: in.Body.Fulfillment == nil || *in.Body.Fulfillment,
					PaymentFailure: in.Body.Simulate == "payment-failure", TokenTTL: a.cfg.TokenTTL}
				res, err := a.cfg.Notifications.Subscribe(ctx, sub, opts)
				if err := a.storeErr(ctx, what, err); err != nil {
					return nil, err
				}
				if res.Token != nil {
					p, _ := a.cfg.Store.Product(ctx, sub.ProductCode)
					fulfillment = &Fulfillment{URL: p.FulfillmentURL, DeliveryID: res.FulfillmentDelivery, TokenID: res.Token.ID,
						Token: res.Token.Token, ExpiresAt: res.Token.ExpiresAt.UTC()}
				}
			} else if in.Body.Simulate != "" {
				return nil, invalid("simulate needs the server's notifications")
			} else if err := a.storeErr(ctx, what, a.cfg.Store.PutSubscription(ctx, sub)); err != nil {
				return nil, err
			}
			got, err := a.cfg.Store.SubscriptionByAgreement(ctx, sub.AgreementID)
			out := subscriptionOut(got)
			out.Fulfillment = fulfillment
			return &subscriptionOutput{out}, a.storeErr(ctx, what, err)
		})
	huma.Register(api, op("get-subscription", http.MethodGet, "/subscriptions/{agreement_id}", "Get a subscription by agreement id", "subscriptions"),
		func(ctx context.Context, in *agreementPath) (*subscriptionOutput, error) {
			s, err := a.cfg.Store.SubscriptionByAgreement(ctx, in.AgreementID)
			return &subscriptionOutput{subscriptionOut(s)}, a.storeErr(ctx, "subscription "+in.AgreementID, err)
		})
	huma.Register(api, op("list-subscriptions", http.MethodGet, "/subscriptions", "List subscriptions, by agreement id", "subscriptions"),
		func(ctx context.Context, in *subscriptionList) (*struct{ Body List[Subscription] }, error) {
			pg, err := in.page()
			if err != nil {
				return nil, err
			}
			subs, err := a.cfg.Store.Subscriptions(ctx, mpmeter.SubscriptionFilter{AccountID: in.AccountID, ProductCode: in.ProductCode, Status: in.Status}, pg)
			if err != nil {
				return nil, a.storeErr(ctx, "subscriptions", err)
			}
			subs, next := cut(subs, pg, func(s mpmeter.Subscription) string { return s.AgreementID })
			out := &struct{ Body List[Subscription] }{List[Subscription]{Items: []Subscription{}, NextCursor: next}}
			for _, s := range subs {
				out.Body.Items = append(out.Body.Items, subscriptionOut(s))
			}
			return out, nil
		})
	for _, name := range []string{"cancel", "expire", "reactivate"} {
		tr := transitions[name]
		huma.Register(api, op(name+"-subscription", http.MethodPost, "/subscriptions/{agreement_id}/"+name,
			fmt.Sprintf("%s a subscription (from %v to %s)", name, tr.from, tr.to), "subscriptions"),
			func(ctx context.Context, in *stateIn) (*subscriptionOutput, error) {
				what := "subscription " + in.AgreementID
				var want int64
				if in.Body != nil {
					want = in.Body.Version
				}
				s, err := update(ctx, a, what, want,
					func() (mpmeter.Subscription, error) { return a.cfg.Store.SubscriptionByAgreement(ctx, in.AgreementID) },
					func(s mpmeter.Subscription) int64 { return s.Version },
					func(s mpmeter.Subscription) error {
						if s.Status == tr.to {
							return nil // there already
						}
						ok := false
						for _, f := range tr.from {
							ok = ok || s.Status == f
						}
						if !ok {
							return conflict("%s: the subscription is %s and cannot %s", what, s.Status, name)
						}
						old := s
						s.Status = tr.to
						if tr.to == mpmeter.SubscriptionActive {
							s.EndedAt = time.Time{}
						} else if s.EndedAt.IsZero() {
							s.EndedAt = a.now()
						}
						return a.putSubscription(ctx, old, s)
					})
				return &subscriptionOutput{subscriptionOut(s)}, err
			})
	}
}

// newSubscription validates a create request by the seed's rules and fills
// in what it leaves out as the seed would.
func (a *API) newSubscription(ctx context.Context, in *subscriptionIn) (mpmeter.Subscription, error) {
	b := in.Body
	var zero mpmeter.Subscription
	if err := a.mustExist(ctx, "account", b.AccountID, func() error { _, err := a.cfg.Store.Account(ctx, b.AccountID); return err }); err != nil {
		return zero, err
	}
	p, err := a.cfg.Store.Product(ctx, b.ProductCode)
	if err != nil {
		return zero, a.mustExist(ctx, "product", b.ProductCode, func() error { return err })
	}
	ss := seed.Subscription{Account: b.AccountID, Product: b.ProductCode, CustomerIdentifier: b.CustomerIdentifier, LicenseArn: b.LicenseArn, OfferID: b.OfferID}
	if err := invalidAll("subscription", seed.CheckSubscription(ss, p.ConcurrentAgreements)); err != nil {
		return zero, err
	}
	partition, err := a.partitionOf(ctx, b.AccountID)
	if err != nil {
		return zero, err
	}
	sub := mpmeter.Subscription{AccountID: b.AccountID, ProductCode: b.ProductCode, CustomerIdentifier: b.CustomerIdentifier, LicenseArn: b.LicenseArn,
		OfferID: b.OfferID, FreeTrial: b.FreeTrial, Status: mpmeter.SubscriptionActive, CreatedAt: a.now(), Version: mpmeter.CreateOnly}
	switch {
	case sub.LicenseArn != "":
		if err := invalidAll("subscription", seed.CheckLicenseArnPartition(sub.LicenseArn, b.AccountID, partition)); err != nil {
			return zero, err
		}
	case p.ConcurrentAgreements:
		// One license per agreement, and a buyer may hold several.
		sub.LicenseArn = "arn:" + cmp.Or(partition, "aws") + ":license-manager::" + b.AccountID + ":license/l-" + hex.EncodeToString(random(16))
	default:
		sub.LicenseArn = seed.LicenseArnInPartition(cmp.Or(partition, "aws"), b.AccountID, b.ProductCode)
	}
	if sub.CustomerIdentifier == "" && !p.ConcurrentAgreements {
		sub.CustomerIdentifier = seed.CustomerIdentifierFor(b.AccountID, b.ProductCode)
	}
	sub.AgreementID = mpmeter.AgreementIDFor(sub.LicenseArn)
	return sub, nil
}

// partitionOf is the account's partition as its workloads' regions say
// ("" when it has none).
func (a *API) partitionOf(ctx context.Context, accountID string) (string, error) {
	keys, err := a.cfg.Store.AccessKeys(ctx, mpmeter.AccessKeyFilter{AccountID: accountID}, mpmeter.Page{Limit: 100})
	if err != nil {
		return "", a.storeErr(ctx, "access keys of "+accountID, err)
	}
	for _, k := range keys {
		if k.Workload != nil && mpmeter.ValidRegionName(k.Workload.Region) {
			return mpmeter.PartitionOf(k.Workload.Region), nil
		}
	}
	return "", nil
}

// --- registration tokens ---

// RegistrationToken is a token ResolveCustomer accepts; its value is shown
// only when it is issued.
type RegistrationToken struct {
	ID          string    `json:"id" doc:"rt-..., names the token without revealing it."`
	AccountID   string    `json:"account_id"`
	ProductCode string    `json:"product_code"`
	LicenseArn  string    `json:"license_arn,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// IssuedToken is an issued token with its value.
type IssuedToken struct {
	RegistrationToken
	Token string `json:"token" doc:"The x-amzn-marketplace-token value; shown only in this answer."`
}

func tokenOut(t mpmeter.RegistrationToken) RegistrationToken {
	return RegistrationToken{ID: t.ID, AccountID: t.AccountID, ProductCode: t.ProductCode, LicenseArn: t.LicenseArn,
		CreatedAt: t.CreatedAt.UTC(), ExpiresAt: t.ExpiresAt.UTC()}
}

type tokenIn struct {
	Body struct {
		AgreementID string     `json:"agreement_id" doc:"The subscription the token resolves to."`
		ExpiresIn   string     `json:"expires_in,omitempty" doc:"Lifetime as a Go duration (4h, 30m); the server's default when absent." example:"4h"`
		ExpiresAt   *time.Time `json:"expires_at,omitempty" doc:"Expiry (RFC 3339, service clock); instead of expires_in."`
	}
}

type tokenPath struct {
	ID string `path:"id"`
}

type tokenOutput struct{ Body RegistrationToken }

func (a *API) registerTokens(api huma.API) {
	huma.Register(api, created(op("issue-registration-token", http.MethodPost, "/registration-tokens", "Issue a registration token for a subscription (its value is shown once)", "registration tokens")),
		func(ctx context.Context, in *tokenIn) (*struct{ Body IssuedToken }, error) {
			b := in.Body
			now := a.now()
			expires := now.Add(a.cfg.TokenTTL)
			switch {
			case b.ExpiresIn != "" && b.ExpiresAt != nil:
				return nil, invalid("give expires_in or expires_at, not both")
			case b.ExpiresIn != "":
				d, err := time.ParseDuration(b.ExpiresIn)
				if err != nil || d <= 0 {
					return nil, invalid("expires_in %q is not a positive duration such as 4h", b.ExpiresIn)
				}
				expires = now.Add(d)
			case b.ExpiresAt != nil:
				expires = b.ExpiresAt.UTC()
			}
			sub, err := a.cfg.Store.SubscriptionByAgreement(ctx, b.AgreementID)
			if err != nil {
				return nil, a.mustExist(ctx, "subscription", b.AgreementID, func() error { return err })
			}
			t := mpmeter.RegistrationToken{Token: newToken(), AccountID: sub.AccountID, ProductCode: sub.ProductCode, CreatedAt: now, ExpiresAt: expires}
			t.LicenseArn = sub.LicenseArn // the token names this agreement, of however many the buyer holds
			if err := a.storeErr(ctx, "registration token", a.cfg.Store.PutRegistrationToken(ctx, t)); err != nil {
				return nil, err
			}
			t.ID = mpmeter.RegistrationTokenID(t.Token)
			return &struct{ Body IssuedToken }{IssuedToken{RegistrationToken: tokenOut(t), Token: t.Token}}, nil
		})
	huma.Register(api, op("get-registration-token", http.MethodGet, "/registration-tokens/{id}", "Get a registration token (without its value)", "registration tokens"),
		func(ctx context.Context, in *tokenPath) (*tokenOutput, error) {
			t, err := a.cfg.Store.RegistrationTokenByID(ctx, in.ID)
			return &tokenOutput{tokenOut(t)}, a.storeErr(ctx, "registration token "+in.ID, err)
		})
	huma.Register(api, op("list-registration-tokens", http.MethodGet, "/registration-tokens", "List registration tokens, by id", "registration tokens"),
		func(ctx context.Context, in *PageParams) (*struct{ Body List[RegistrationToken] }, error) {
			pg, err := in.page()
			if err != nil {
				return nil, err
			}
			ts, err := a.cfg.Store.RegistrationTokens(ctx, pg)
			if err != nil {
				return nil, a.storeErr(ctx, "registration tokens", err)
			}
			ts, next := cut(ts, pg, func(t mpmeter.RegistrationToken) string { return t.ID })
			out := &struct{ Body List[RegistrationToken] }{List[RegistrationToken]{Items: []RegistrationToken{}, NextCursor: next}}
			for _, t := range ts {
				out.Body.Items = append(out.Body.Items, tokenOut(t))
			}
			return out, nil
		})
	huma.Register(api, op("expire-registration-token", http.MethodPost, "/registration-tokens/{id}/expire", "Expire a registration token now", "registration tokens"),
		func(ctx context.Context, in *tokenPath) (*tokenOutput, error) {
			what := "registration token " + in.ID
			t, err := a.cfg.Store.RegistrationTokenByID(ctx, in.ID)
			if err != nil {
				return nil, a.storeErr(ctx, what, err)
			}
			if now := a.now(); t.ExpiresAt.After(now) {
				t.ExpiresAt = now
				if t.CreatedAt.After(now) {
					t.CreatedAt = now
				}
				if err := a.storeErr(ctx, what, a.cfg.Store.PutRegistrationToken(ctx, t)); err != nil {
					return nil, err
				}
			}
			return &tokenOutput{tokenOut(t)}, nil
		})
}
