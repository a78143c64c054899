package notify

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seed"
)

// Subscription topic actions and the entitlement topic's.
const (
	ActionSubscribeSuccess   = "subscribe-success"
	ActionSubscribeFail      = "subscribe-fail"
	ActionUnsubscribePending = "unsubscribe-pending"
	ActionUnsubscribeSuccess = "unsubscribe-success"
	ActionEntitlementUpdated = "entitlement-updated"
)

// SNS message types.
const (
	TypeNotification             = "Notification"
	TypeSubscriptionConfirmation = "SubscriptionConfirmation"
)

// TopicName is the name of a product's topic ("subscription" or
// "entitlement").
func TopicName(topic, productCode string) string {
	if topic == mpmeter.TopicEntitlement {
		return "aws-mp-entitlement-notification-" + productCode
	}
	return "aws-mp-subscription-notification-" + productCode
}

// TopicARN is the ARN of a product's topic.
func (n *Notifier) TopicARN(topic, productCode string) string {
	return fmt.Sprintf("arn:%s:sns:%s:%s:%s", mpmeter.PartitionOf(n.cfg.Region), n.cfg.Region, n.cfg.TopicAccount, TopicName(topic, productCode))
}

// SubscriptionARN is the ARN SNS gives an endpoint's subscription to a
// topic: the topic's and a UUID, the same for the same endpoint (SNS, too,
// answers the existing subscription when an endpoint subscribes again).
func SubscriptionARN(topicARN, protocol, endpoint string) string {
	sum := sha256.Sum256([]byte(topicARN + "\x00" + protocol + "\x00" + endpoint))
	u, _ := uuid.FromBytes(sum[:16])
	u[6] = (u[6] & 0x0f) | 0x40 // version 4 layout, as SNS's
	u[8] = (u[8] & 0x3f) | 0x80
	return topicARN + ":" + u.String()
}

// snsMessage is the Message of the subscription and entitlement topics, in
// AWS's member order. Concurrent-agreements products name the customer by
// account and license (their agreements have no customer identifier).
type snsMessage struct {
	Action               string `json:"action"`
	CustomerIdentifier   string `json:"customer-identifier,omitempty"`
	CustomerAWSAccountID string `json:"customer-aws-account-id,omitempty"`
	LicenseArn           string `json:"license-arn,omitempty"`
	ProductCode          string `json:"product-code"`
	OfferIdentifier      string `json:"offer-identifier,omitempty"`
	FreeTrial            string `json:"isFreeTrialTermPresent,omitempty"`
}

func messageFor(p mpmeter.Product, sub mpmeter.Subscription, action string) string {
	m := snsMessage{Action: action, ProductCode: sub.ProductCode}
	if p.ConcurrentAgreements {
		m.CustomerAWSAccountID, m.LicenseArn = sub.AccountID, sub.LicenseArn
	} else {
		m.CustomerIdentifier = sub.CustomerIdentifier
	}
	if action != ActionEntitlementUpdated {
		m.OfferIdentifier = sub.OfferID
		m.FreeTrial = fmt.Sprint(sub.FreeTrial) // the string "true" or "false", as AWS sends it
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(m)
	return strings.TrimSuffix(b.String(), "\n")
}

// jsonString is s as a JSON string the way SNS writes it: &, < and > as
// they are (encoding/json would write \u0026).
func jsonString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// envelope is an SNS HTTP message body's members.
type envelope struct {
	Type, MessageID, Token, TopicARN, Subject, Message, SubscribeURL, Timestamp string
	SignatureVersion, Signature, SigningCertURL, UnsubscribeURL                 string
}

// StringToSign is SNS's: "Name\nValue\n" for each signed member present, in
// byte order of the names; Notification signs Message, MessageId, Subject
// (when present), Timestamp, TopicArn, Type; the confirmations sign
// Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type.
func StringToSign(m map[string]string) string {
	var keys []string
	if m["Type"] == TypeNotification {
		keys = []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	} else {
		keys = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	}
	var b strings.Builder
	for _, k := range keys {
		v, ok := m[k]
		if !ok || (k == "Subject" && v == "") {
			continue
		}
		b.WriteString(k + "\n" + v + "\n")
	}
	return b.String()
}

// render writes e as SNS writes an HTTP body: pretty-printed with " : ",
// members in SNS's order.
func (e envelope) render() []byte {
	type kv struct{ k, v string }
	var members []kv
	add := func(k, v string, always bool) {
		if v != "" || always {
			members = append(members, kv{k, v})
		}
	}
	add("Type", e.Type, true)
	add("MessageId", e.MessageID, true)
	add("Token", e.Token, false)
	add("TopicArn", e.TopicARN, true)
	add("Subject", e.Subject, false)
	add("Message", e.Message, true)
	add("SubscribeURL", e.SubscribeURL, false)
	add("Timestamp", e.Timestamp, true)
	add("SignatureVersion", e.SignatureVersion, true)
	add("Signature", e.Signature, true)
	add("SigningCertURL", e.SigningCertURL, true)
	add("UnsubscribeURL", e.UnsubscribeURL, false)
	var b strings.Builder
	b.WriteString("{\n")
	for i, m := range members {
		fmt.Fprintf(&b, "  %q : %s", m.k, jsonString(m.v))
		if i < len(members)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}")
	return []byte(b.String())
}

func (e envelope) signed() map[string]string {
	m := map[string]string{"Type": e.Type, "MessageId": e.MessageID, "TopicArn": e.TopicARN, "Message": e.Message, "Timestamp": e.Timestamp}
	if e.Subject != "" {
		m["Subject"] = e.Subject
	}
	if e.Type != TypeNotification {
		m["SubscribeURL"], m["Token"] = e.SubscribeURL, e.Token
	}
	return m
}

// snsTimestamp is SNS's Timestamp: ISO 8601 with milliseconds, in UTC.
func snsTimestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// snsDeliveries adds one delivery per confirmed subscription of the
// product's topic: the same message (one MessageId, one signature) to each,
// as SNS fans a publication out.
func (n *Notifier) snsDeliveries(ctx context.Context, out *mpmeter.Outbox, ev mpmeter.NotificationEvent, p mpmeter.Product, sub mpmeter.Subscription, topic, action string, now time.Time) error {
	subs, err := n.confirmedSubscriptions(ctx, p.Code, topic)
	if err != nil || len(subs) == 0 {
		return err
	}
	e := envelope{Type: TypeNotification, MessageID: uuid.NewString(), TopicARN: n.TopicARN(topic, p.Code),
		Message: messageFor(p, sub, action), Timestamp: snsTimestamp(now)}
	if err := n.sign(&e); err != nil {
		return err
	}
	for _, s := range subs {
		e.UnsubscribeURL = n.cfg.BaseURL() + SNSPath + "?Action=Unsubscribe&SubscriptionArn=" + url.QueryEscape(s.ARN)
		out.Deliveries = append(out.Deliveries, n.snsDelivery(ev, s, e, now))
	}
	return nil
}

func (n *Notifier) snsDelivery(ev mpmeter.NotificationEvent, s mpmeter.SNSSubscription, e envelope, now time.Time) mpmeter.Delivery {
	h := map[string]string{
		"Content-Type":           "text/plain; charset=UTF-8",
		"User-Agent":             "Amazon Simple Notification Service Agent",
		"x-amz-sns-message-type": e.Type,
		"x-amz-sns-message-id":   e.MessageID,
		"x-amz-sns-topic-arn":    e.TopicARN,
	}
	if e.Type == TypeNotification {
		h["x-amz-sns-subscription-arn"] = s.ARN
	}
	return mpmeter.Delivery{ID: newID("dlv-"), EventID: ev.ID, Channel: mpmeter.ChannelSNS, Destination: s.ARN, Endpoint: s.Endpoint,
		Headers: h, Body: e.render(), MaxAttempts: n.cfg.MaxAttempts, NextAttemptAt: n.cfg.WallClock(), CreatedAt: now}
}

func (n *Notifier) confirmedSubscriptions(ctx context.Context, product, topic string) ([]mpmeter.SNSSubscription, error) {
	var out []mpmeter.SNSSubscription
	page := mpmeter.Page{Limit: 500}
	for {
		subs, err := n.cfg.Store.SNSSubscriptions(ctx, product, topic, page)
		if err != nil {
			return nil, err
		}
		for _, s := range subs {
			if !s.ConfirmedAt.IsZero() {
				out = append(out, s)
			}
		}
		if len(subs) < page.Limit {
			return out, nil
		}
		page.After = subs[len(subs)-1].ARN
	}
}

// SubscribeEndpoint adds an HTTP or HTTPS endpoint to a product's topic and
// sends it the SubscriptionConfirmation (once: subscribing the same endpoint
// again answers the same subscription and sends nothing). Topic, protocol
// and endpoint are checked by seed.CheckSNSSubscription, the rule the seed
// file and the admin API share.
func (n *Notifier) SubscribeEndpoint(ctx context.Context, productCode, topic, protocol, endpoint string) (mpmeter.SNSSubscription, error) {
	return n.SubscribeConfirmedEndpoint(ctx, productCode, topic, protocol, endpoint, time.Time{})
}

// SubscribeConfirmedEndpoint is SubscribeEndpoint for a subscription
// confirmed at confirmedAt (a seed file's, exported from a server where the
// endpoint visited its SubscribeURL): it is stored confirmed, or confirmed
// if stored pending, and sent no SubscriptionConfirmation. A zero
// confirmedAt is SubscribeEndpoint. A stored confirmation is kept.
func (n *Notifier) SubscribeConfirmedEndpoint(ctx context.Context, productCode, topic, protocol, endpoint string, confirmedAt time.Time) (mpmeter.SNSSubscription, error) {
	if problems := seed.CheckSNSSubscription(topic, protocol, endpoint); len(problems) > 0 {
		return mpmeter.SNSSubscription{}, errors.New(strings.Join(problems, "; "))
	}
	now := n.now()
	topicARN := n.TopicARN(topic, productCode)
	s := mpmeter.SNSSubscription{ARN: SubscriptionARN(topicARN, protocol, endpoint), ProductCode: productCode, Topic: topic,
		Protocol: protocol, Endpoint: endpoint, CreatedAt: now, ConfirmedAt: confirmedAt}
	created, err := n.cfg.Store.PutSNSSubscription(ctx, s)
	if err != nil {
		return s, err
	}
	if !created && !confirmedAt.IsZero() {
		if err := n.cfg.Store.ConfirmSNSSubscription(ctx, s.ARN, confirmedAt); err != nil {
			return s, err
		}
	}
	stored, err := n.cfg.Store.SNSSubscription(ctx, s.ARN)
	if err != nil {
		return s, err
	}
	if stored.ConfirmedAt.IsZero() {
		if err := n.sendConfirmation(ctx, stored, now); err != nil {
			return stored, err
		}
	}
	return stored, nil
}

// sendConfirmation writes the subscription's SubscriptionConfirmation, once
// per subscription (its event key).
func (n *Notifier) sendConfirmation(ctx context.Context, s mpmeter.SNSSubscription, now time.Time) error {
	topicARN := strings.TrimSuffix(s.ARN, s.ARN[strings.LastIndexByte(s.ARN, ':'):])
	token := n.signer.confirmToken(s.ARN)
	e := envelope{Type: TypeSubscriptionConfirmation, MessageID: uuid.NewString(), Token: token, TopicARN: topicARN,
		Message:      "You have chosen to subscribe to the topic " + topicARN + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		SubscribeURL: n.cfg.BaseURL() + SNSPath + "?Action=ConfirmSubscription&TopicArn=" + url.QueryEscape(topicARN) + "&Token=" + token,
		Timestamp:    snsTimestamp(now)}
	if err := n.sign(&e); err != nil {
		return err
	}
	ev := mpmeter.NotificationEvent{ID: newID("evt-"), Key: "confirm:" + s.ARN, Type: TypeSubscriptionConfirmation, ProductCode: s.ProductCode, CreatedAt: now}
	out := mpmeter.Outbox{Events: []mpmeter.NotificationEvent{ev}, Deliveries: []mpmeter.Delivery{n.snsDelivery(ev, s, e, now)}}
	if err := n.cfg.Store.PutOutbox(ctx, out); err != nil {
		return err
	}
	n.written(out)
	return nil
}

// ConfirmSubscription is what visiting a SubscribeURL does: the token must
// be the one sent for a subscription of the topic.
func (n *Notifier) ConfirmSubscription(ctx context.Context, topicARN, token string) (mpmeter.SNSSubscription, error) {
	i := strings.LastIndex(topicARN, ":")
	name := topicARN[i+1:]
	var product, topic string
	switch {
	case strings.HasPrefix(name, "aws-mp-subscription-notification-"):
		product, topic = strings.TrimPrefix(name, "aws-mp-subscription-notification-"), mpmeter.TopicSubscription
	case strings.HasPrefix(name, "aws-mp-entitlement-notification-"):
		product, topic = strings.TrimPrefix(name, "aws-mp-entitlement-notification-"), mpmeter.TopicEntitlement
	default:
		return mpmeter.SNSSubscription{}, mpmeter.ErrNotFound
	}
	subs, err := n.cfg.Store.SNSSubscriptions(ctx, product, topic, mpmeter.Page{})
	if err != nil {
		return mpmeter.SNSSubscription{}, err
	}
	for _, s := range subs {
		if hmac.Equal([]byte(n.signer.confirmToken(s.ARN)), []byte(token)) && strings.HasPrefix(s.ARN, topicARN+":") {
			if err := n.cfg.Store.ConfirmSNSSubscription(ctx, s.ARN, n.now()); err != nil {
				return s, err
			}
			return n.cfg.Store.SNSSubscription(ctx, s.ARN)
		}
	}
	return mpmeter.SNSSubscription{}, mpmeter.ErrNotFound
}

// Unsubscribe removes a subscription (its UnsubscribeURL).
func (n *Notifier) Unsubscribe(ctx context.Context, arn string) error {
	return n.cfg.Store.DeleteSNSSubscription(ctx, arn)
}

// --- signing ---

// signer holds the key and certificate SNS messages are signed with.
type signer struct {
	key     *rsa.PrivateKey
	certPEM []byte
	certID  string // 32 hex digits: the certificate file's name
	hmacKey []byte // for confirmation tokens
}

// loadSigner reads the certificate, creating it when there is none (a
// node that loses the race reads the winner's).
func loadSigner(ctx context.Context, st Store, now time.Time) (*signer, error) {
	c, err := st.NotificationCertificate(ctx)
	if errors.Is(err, mpmeter.ErrNotFound) {
		nc, gerr := newCertificate(now)
		if gerr != nil {
			return nil, gerr
		}
		if aerr := st.AddNotificationCertificate(ctx, nc); aerr != nil && !errors.Is(aerr, mpmeter.ErrExists) {
			return nil, fmt.Errorf("notify: storing the signing certificate: %w", aerr)
		}
		c, err = st.NotificationCertificate(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("notify: the signing certificate: %w", err)
	}
	block, _ := pem.Decode(c.PrivateKeyPEM)
	if block == nil {
		return nil, errors.New("notify: the stored signing key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("notify: the stored signing key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("notify: the stored signing key is not RSA")
	}
	sum := sha256.Sum256(c.CertificatePEM)
	mac := sha256.Sum256(append([]byte("mpmeter/sns-confirm\x00"), block.Bytes...))
	return &signer{key: rk, certPEM: c.CertificatePEM, certID: hex.EncodeToString(sum[:16]), hmacKey: mac[:]}, nil
}

// newCertificate makes an RSA-2048 key and a self-signed certificate for
// it, valid ten years, like the one SNS publishes for a region.
func newCertificate(now time.Time) (mpmeter.NotificationCertificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return mpmeter.NotificationCertificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return mpmeter.NotificationCertificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "sns.mpmeter.local", Organization: []string{"mpmeter"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return mpmeter.NotificationCertificate{}, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return mpmeter.NotificationCertificate{}, err
	}
	return mpmeter.NotificationCertificate{
		PrivateKeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		CertificatePEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		CreatedAt:      now,
	}, nil
}

func (s *signer) confirmToken(arn string) string {
	m := hmac.New(sha256.New, s.hmacKey)
	m.Write([]byte(arn))
	a := m.Sum(nil)
	m.Write([]byte("2"))
	return hex.EncodeToString(append(a, m.Sum(nil)...))
}

// sign fills in e's SignatureVersion, SigningCertURL and Signature.
func (n *Notifier) sign(e *envelope) error {
	e.SignatureVersion = n.cfg.SignatureVersion
	e.SigningCertURL = n.SigningCertURL()
	sts := []byte(StringToSign(e.signed()))
	var sig []byte
	var err error
	if e.SignatureVersion == "2" {
		d := sha256.Sum256(sts)
		sig, err = rsa.SignPKCS1v15(rand.Reader, n.signer.key, crypto.SHA256, d[:])
	} else {
		d := sha1.Sum(sts)
		sig, err = rsa.SignPKCS1v15(rand.Reader, n.signer.key, crypto.SHA1, d[:])
	}
	if err != nil {
		return err
	}
	e.Signature = base64.StdEncoding.EncodeToString(sig)
	return nil
}

// SigningCertURL is where the certificate is served: SNS's file name
// shape, SimpleNotificationService-<32 hex digits>.pem.
func (n *Notifier) SigningCertURL() string {
	return n.cfg.BaseURL() + SNSPath + "SimpleNotificationService-" + n.signer.certID + ".pem"
}

// CertificatePEM is the signing certificate.
func (n *Notifier) CertificatePEM() []byte { return n.signer.certPEM }

// VerifyMessage checks an SNS HTTP body's signature against cert (PEM), as
// a seller's validator does: the signed members by type and
// SignatureVersion 1 (SHA1withRSA) or 2 (SHA256withRSA).
func VerifyMessage(body []byte, certPEM []byte) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, errors.New("the certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("the certificate's key is not RSA")
	}
	sig, err := base64.StdEncoding.DecodeString(m["Signature"])
	if err != nil {
		return nil, err
	}
	sts := []byte(StringToSign(m))
	switch m["SignatureVersion"] {
	case "1":
		d := sha1.Sum(sts)
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA1, d[:], sig)
	case "2":
		d := sha256.Sum256(sts)
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig)
	default:
		err = fmt.Errorf("SignatureVersion %q", m["SignatureVersion"])
	}
	return m, err
}
