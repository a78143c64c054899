package notify

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seed"
)

// EventBridge detail-types mpmeter sends. The seller of a product is its
// manufacturer and (for public offers) the proposer; AWS then sends the
// Proposer purchase events only.
const (
	EventSource                = "aws.agreement-marketplace"
	DetailAgreementCreated     = "Purchase Agreement Created - Proposer"
	DetailAgreementAmended     = "Purchase Agreement Amended - Proposer"
	DetailAgreementEnded       = "Purchase Agreement Ended - Proposer"
	DetailLicenseUpdated       = "License Updated - Manufacturer"
	DetailLicenseDeprovisioned = "License Deprovisioned - Manufacturer"
)

// Event is AWS's EventBridge envelope.
type Event struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	Detail     any      `json:"detail"`
}

type idOnly struct {
	ID string `json:"id"`
}

type account struct {
	AccountID string `json:"accountId"`
}

type agreementDetail struct {
	ID             string `json:"id"`
	Intent         string `json:"intent,omitempty"`
	Status         string `json:"status,omitempty"`
	AcceptanceTime string `json:"acceptanceTime,omitempty"`
	StartTime      string `json:"startTime,omitempty"`
	EndTime        string `json:"endTime,omitempty"`
}

type productDetail struct {
	ID    string `json:"id"`
	Code  string `json:"code,omitempty"`
	Title string `json:"title,omitempty"`
}

type purchaseDetail struct {
	RequestID string          `json:"requestId"`
	Catalog   string          `json:"catalog"`
	Agreement agreementDetail `json:"agreement"`
	Acceptor  account         `json:"acceptor"`
	Proposer  account         `json:"proposer"`
	Offer     *idOnly         `json:"offer,omitempty"`
	Product   productDetail   `json:"product"`
}

type licenseDetail struct {
	RequestID string          `json:"requestId"`
	Catalog   string          `json:"catalog"`
	Agreement agreementDetail `json:"agreement"`
	Product   productDetail   `json:"product"`
	License   struct {
		Arn string `json:"arn"`
	} `json:"license"`
	Acceptor account `json:"acceptor"`
	Proposer account `json:"proposer"`
	Offer    *idOnly `json:"offer,omitempty"`
}

var productIDEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// ProductID is the product's catalog id (prod-...), derived from its code.
func ProductID(code string) string {
	sum := sha256.Sum256([]byte("mpmeter/product\x00" + code))
	return "prod-" + productIDEncoding.EncodeToString(sum[:])[:13]
}

func eventTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// event renders one detail-type for sub.
func (n *Notifier) event(p mpmeter.Product, sub mpmeter.Subscription, detailType string, now time.Time) Event {
	partition := mpmeter.ARNPartition(sub.LicenseArn)
	if partition == "" {
		partition = "aws"
	}
	ev := Event{Version: "0", ID: uuid.NewString(), DetailType: detailType, Source: EventSource, Account: p.SellerAccountID,
		Time: eventTime(now), Region: n.cfg.Region,
		Resources: []string{"arn:" + partition + ":aws-marketplace::aws:agreement:" + sub.AgreementID}}
	var offer *idOnly
	if sub.OfferID != "" {
		offer = &idOnly{sub.OfferID}
	}
	prod := productDetail{ID: ProductID(p.Code)}
	switch detailType {
	case DetailAgreementCreated, DetailAgreementEnded, DetailAgreementAmended:
		d := purchaseDetail{RequestID: uuid.NewString(), Catalog: "AWSMarketplace", Acceptor: account{sub.AccountID},
			Proposer: account{p.SellerAccountID}, Offer: offer, Product: productDetail{ID: prod.ID, Title: p.Code}}
		d.Agreement = agreementDetail{ID: sub.AgreementID, Intent: "NEW", Status: "ACTIVE",
			AcceptanceTime: eventTime(sub.CreatedAt), StartTime: eventTime(sub.CreatedAt)}
		if detailType == DetailAgreementEnded {
			d.Agreement = agreementDetail{ID: sub.AgreementID, Status: "CANCELLED"}
			if !sub.EndedAt.IsZero() {
				d.Agreement.EndTime = eventTime(sub.EndedAt)
			}
		}
		ev.Detail = d
	default:
		d := licenseDetail{RequestID: uuid.NewString(), Catalog: "AWSMarketplace", Agreement: agreementDetail{ID: sub.AgreementID},
			Product: productDetail{ID: prod.ID, Code: p.Code}, Acceptor: account{sub.AccountID}, Proposer: account{p.SellerAccountID}, Offer: offer}
		d.License.Arn = sub.LicenseArn
		ev.Detail = d
	}
	return ev
}

// eventDeliveries adds the event to every target of the product's seller.
func (n *Notifier) eventDeliveries(ctx context.Context, out *mpmeter.Outbox, ev mpmeter.NotificationEvent, p mpmeter.Product, sub mpmeter.Subscription, detailType string, now time.Time) error {
	targets, err := n.cfg.Store.EventBridgeTargets(ctx, p.SellerAccountID, mpmeter.Page{Limit: 1000})
	if err != nil || len(targets) == 0 {
		return err
	}
	body, err := json.Marshal(n.event(p, sub, detailType, now))
	if err != nil {
		return err
	}
	for _, t := range targets {
		out.Deliveries = append(out.Deliveries, mpmeter.Delivery{ID: newID("dlv-"), EventID: ev.ID, Channel: mpmeter.ChannelEventBridge,
			Destination: t.ID, Endpoint: t.Endpoint,
			Headers: map[string]string{"Content-Type": "application/json; charset=utf-8", "User-Agent": "Amazon/EventBridge/ApiDestinations"},
			Body:    body, MaxAttempts: n.cfg.MaxAttempts, NextAttemptAt: n.cfg.WallClock(), CreatedAt: now})
	}
	return nil
}

// TargetID is an EventBridge target's id, derived from account and
// endpoint (adding the same target again is a no-op).
func TargetID(accountID, endpoint string) string {
	sum := sha256.Sum256([]byte(accountID + "\x00" + endpoint))
	return "ebt-" + hex.EncodeToString(sum[:8])
}

// AddTarget adds an EventBridge target for a seller account (adding it
// again changes nothing). The endpoint is checked by seed.CheckEndpointURL,
// the rule the seed file and the admin API share.
func (n *Notifier) AddTarget(ctx context.Context, accountID, endpoint string) (mpmeter.EventBridgeTarget, error) {
	if problems := seed.CheckEndpointURL(endpoint); len(problems) > 0 {
		return mpmeter.EventBridgeTarget{}, errors.New(strings.Join(problems, "; "))
	}
	t := mpmeter.EventBridgeTarget{ID: TargetID(accountID, endpoint), AccountID: accountID, Endpoint: endpoint, CreatedAt: n.now()}
	_, err := n.cfg.Store.PutEventBridgeTarget(ctx, t)
	return t, err
}

// --- fulfillment ---

// FormFields is the fulfillment POST's form: x-amzn-marketplace-token and,
// for a free trial, x-amzn-marketplace-offer-type=free-trial.
func FormFields(token string, freeTrial bool) url.Values {
	v := url.Values{"x-amzn-marketplace-token": {token}}
	if freeTrial {
		v.Set("x-amzn-marketplace-offer-type", "free-trial")
	}
	return v
}

// formBody is the form as a browser encodes it: fields in the form's order
// (the token first).
func formBody(token string, freeTrial bool) string {
	b := "x-amzn-marketplace-token=" + url.QueryEscape(token)
	if freeTrial {
		b += "&x-amzn-marketplace-offer-type=free-trial"
	}
	return b
}

// fulfillment adds the browser's form POST of token to the product's
// fulfillment URL. A browser posts once: one attempt, except when no
// answer came at all (then the buyer would press reload).
func (n *Notifier) fulfillment(out *mpmeter.Outbox, p mpmeter.Product, sub mpmeter.Subscription, token string, now time.Time) string {
	ev := mpmeter.NotificationEvent{ID: newID("evt-"), Type: "fulfillment", AgreementID: sub.AgreementID, ProductCode: p.Code, CreatedAt: now}
	ev.Key = ev.ID
	d := mpmeter.Delivery{ID: newID("dlv-"), EventID: ev.ID, Channel: mpmeter.ChannelFulfillment, Destination: p.Code, Endpoint: p.FulfillmentURL,
		Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded",
			"User-Agent": "Mozilla/5.0 (compatible; mpmeter buyer browser)", "Origin": "https://aws.amazon.com", "Referer": "https://aws.amazon.com/marketplace/"},
		Body: []byte(formBody(token, sub.FreeTrial)), MaxAttempts: 3, NextAttemptAt: n.cfg.WallClock(), CreatedAt: now}
	out.Events = append(out.Events, ev)
	out.Deliveries = append(out.Deliveries, d)
	return d.ID
}

// NewRegistrationToken draws a registration token value.
func NewRegistrationToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return strings.TrimRight(base32.StdEncoding.EncodeToString(b), "=")
}

var formPage = template.Must(template.New("form").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AWS Marketplace: set up your account</title></head>
<body onload="document.forms[0].submit()">
<p>Taking you to the seller's registration page for {{.Product}}&hellip;</p>
<form method="post" action="{{.Action}}" enctype="application/x-www-form-urlencoded">
{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">
{{end}}<noscript><button type="submit">Set up your account</button></noscript>
</form>
</body></html>
`))

// FormPage renders the page a browser opens: it submits the fulfillment
// form to the product's registration page at once.
func FormPage(fulfillmentURL, product, token string, freeTrial bool) ([]byte, error) {
	var b strings.Builder
	err := formPage.Execute(&b, struct {
		Action, Product string
		Fields          url.Values
	}{fulfillmentURL, product, FormFields(token, freeTrial)})
	return []byte(b.String()), err
}
