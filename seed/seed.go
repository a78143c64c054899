// Package seed reads, checks, writes and applies mpmeter's seed file: the YAML
// description of a marketplace (accounts and their access keys, products,
// subscriptions with their entitlements, registration tokens, notification
// endpoints, fault rules) that a Store starts from.
//
// A seed file looks like this (demo.yaml, returned by Demo, is a fuller,
// commented example):
//
//	accounts:
//	  - id: "111122223333"
//	    name: Example Seller
//	    access_keys:
//	      - {id: AKIAEXAMPLESELLER001, secret: seller-secret}
//	  - id: "444455556666"
//	    name: Example Buyer
//	    access_keys:
//	      - id: AKIAEXAMPLEBUYER0001
//	        secret: buyer-secret
//	        workload: {id: i-0123456789abcdef0, platform: ec2, region: us-east-1}
//	products:
//	  - code: exampleprod1
//	    seller: "111122223333"
//	    type: saas
//	    dimensions: [users, gigabytes]
//	subscriptions:
//	  - account: "444455556666"
//	    product: exampleprod1
//	    customer_identifier: cust-example-1   # optional: generated
//	    license_arn: arn:aws:license-manager::444455556666:license/l-0123456789abcdef  # optional: generated
//	    status: active                        # optional: active (default), cancelled, expired
//	registration_tokens:
//	  - {token: demo-token-1, account: "444455556666", product: exampleprod1}  # optional: license_arn, expires_at
//
// Applying a seed is idempotent: the values the file leaves out (a
// subscription's customer identifier and license ARN) are derived from the
// subscription's account and product (the license ARN in the account's
// partition: arn:aws-eusc:... for an account in eusc-de-east-1), never drawn
// at random, and a
// registration token already in the store keeps its creation and expiry
// times.
package seed

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mpmeter/mpmeter"
)

// File is a seed file.
type File struct {
	Accounts           []Account           `yaml:"accounts,omitempty"`
	Products           []Product           `yaml:"products,omitempty"`
	Subscriptions      []Subscription      `yaml:"subscriptions,omitempty"`
	RegistrationTokens []RegistrationToken `yaml:"registration_tokens,omitempty"`
	// Faults are fault rules (faults.go, docs/retries.md).
	Faults []Fault `yaml:"faults,omitempty"`
	// SNSSubscriptions and EventBridgeTargets are where notifications go
	// (package notify applies them: server.New, after Apply).
	SNSSubscriptions   []SNSSubscription   `yaml:"sns_subscriptions,omitempty"`
	EventBridgeTargets []EventBridgeTarget `yaml:"eventbridge_targets,omitempty"`
}

// SNSSubscription subscribes an HTTP(S) endpoint to one of a product's
// SNS topics; it delivers once its SubscriptionConfirmation's SubscribeURL
// was visited.
type SNSSubscription struct {
	Product  string `yaml:"product"`
	Topic    string `yaml:"topic"`    // subscription or entitlement
	Protocol string `yaml:"protocol"` // http or https
	Endpoint string `yaml:"endpoint"`
	// ConfirmedAt is when the endpoint visited its SubscribeURL (service
	// clock; what an export writes for a confirmed subscription): applying
	// stores the subscription confirmed and sends no
	// SubscriptionConfirmation. Nil: pending until the endpoint confirms
	// (a stored confirmation is kept).
	ConfirmedAt *time.Time `yaml:"confirmed_at,omitempty"`
}

// EventBridgeTarget receives a seller account's aws.agreement-marketplace
// events as HTTP POSTs.
type EventBridgeTarget struct {
	Account  string `yaml:"account"`
	Endpoint string `yaml:"endpoint"`
}

// Account is an AWS account and the access keys it signs requests with.
type Account struct {
	ID   string `yaml:"id"` // 12 digits
	Name string `yaml:"name,omitempty"`
	// Partition is the AWS partition the account lives in (aws, aws-cn,
	// aws-us-gov, aws-eusc, ...): the prefix of its generated license ARNs.
	// Empty means the partition of its workloads' region (they must agree),
	// or aws when it has none.
	Partition  string      `yaml:"partition,omitempty"`
	AccessKeys []AccessKey `yaml:"access_keys,omitempty"`
}

// AccessKey is a credential of the account it is listed under.
type AccessKey struct {
	ID     string `yaml:"id"` // 16-128 characters, A-Z and 0-9
	Secret string `yaml:"secret"`
	// Workload is set when the key belongs to a buyer's running software
	// (MeterUsage and RegisterUsage need one).
	Workload *Workload `yaml:"workload,omitempty"`
	// SessionToken makes the key temporary credentials (an ASIA... key):
	// requests must carry it as X-Amz-Security-Token.
	SessionToken string `yaml:"session_token,omitempty"`
	// ExpiresAt is when temporary credentials expire (service clock); nil
	// means never. Only with SessionToken.
	ExpiresAt *time.Time `yaml:"expires_at,omitempty"`
	// CredentialsToken lets the key's workload fetch temporary credentials
	// from the container credentials endpoint with this Authorization
	// header. Only on a workload's long-term key.
	CredentialsToken string `yaml:"credentials_token,omitempty"`
	// RevokedAt is when the key was revoked (service clock); nil means it
	// works. Revocation is final: applying a file without it leaves a
	// revoked key revoked.
	RevokedAt *time.Time `yaml:"revoked_at,omitempty"`
}

// Workload is a buyer's running software.
type Workload struct {
	ID       string `yaml:"id"`
	Platform string `yaml:"platform"` // ec2, ecs, eks, fargate or agentcore
	Region   string `yaml:"region"`
}

// Product is a listing. In the file, each dimension is either its name or
// a mapping with the name and optional description, unit and price:
//
//	dimensions: [users, gigabytes]
//	dimensions:
//	  - {name: users, description: Active users, unit: Users, price: "0.05"}
//	  - gigabytes
type Product struct {
	Code   string `yaml:"code"`
	Seller string `yaml:"seller"` // an account id of the file
	Type   string `yaml:"type"`   // saas, ami or container
	// Dimensions are the dimension names, in order.
	Dimensions []string `yaml:"-"`
	// DimensionDetails holds the optional details of Dimensions, by name;
	// a dimension without any has no entry.
	DimensionDetails map[string]DimensionDetails `yaml:"-"`
	// ConcurrentAgreements (SaaS only) lets a buyer hold several agreements
	// for the product at once; its subscriptions have no customer
	// identifier and are metered by account id and license ARN.
	ConcurrentAgreements bool `yaml:"concurrent_agreements,omitempty"`
	// FulfillmentURL (SaaS) is the seller's registration page, where a new
	// subscription's token is POSTed.
	FulfillmentURL string `yaml:"fulfillment_url,omitempty"`
}

// DimensionDetails is what a listing says about a dimension beyond its
// name; every field is optional.
type DimensionDetails struct {
	Description string `yaml:"description,omitempty"`
	Unit        string `yaml:"unit,omitempty"` // Users, GB, Hrs, ...
	// Price is the price per unit in USD, a decimal string ("0.05").
	Price string `yaml:"price,omitempty"`
}

// Subscription is a buyer's agreement for a product.
type Subscription struct {
	Account string `yaml:"account"`
	Product string `yaml:"product"`
	// CustomerIdentifier is derived from Account and Product when empty
	// (CustomerIdentifierFor), except for a product with concurrent
	// agreements, whose subscriptions have none.
	CustomerIdentifier string `yaml:"customer_identifier,omitempty"`
	// LicenseArn is derived from Account and Product when empty
	// (LicenseArnFor).
	LicenseArn string `yaml:"license_arn,omitempty"`
	// Status is active (the default), cancelled or expired.
	Status string `yaml:"status,omitempty"`
	// Entitlements are the contract's, one per dimension of the product at
	// most. Absent leaves the stored ones as they are; a list (even empty)
	// replaces them.
	Entitlements []Entitlement `yaml:"entitlements,omitempty"`
	// AgreementID is the agreement's id (agmt-...); derived from the
	// license ARN when empty (mpmeter.AgreementIDFor). A stored
	// subscription keeps its first agreement id.
	AgreementID string `yaml:"agreement_id,omitempty"`
	// OfferID is the offer the buyer accepted (offer-...); optional.
	OfferID string `yaml:"offer_id,omitempty"`
	// FreeTrial marks an agreement under a free-trial offer.
	FreeTrial bool `yaml:"free_trial,omitempty"`
}

// RegistrationToken is a token ResolveCustomer accepts.
type RegistrationToken struct {
	Token   string `yaml:"token"`
	Account string `yaml:"account"`
	Product string `yaml:"product"`
	// LicenseArn picks one of the account's subscriptions to the product;
	// empty means its only (or first) one. A token of a product with
	// concurrent agreements names one agreement: Resolved fills in the
	// account's only one, and an account with several needs it.
	LicenseArn string `yaml:"license_arn,omitempty"`
	// ExpiresAt is when the token stops resolving; nil means tokenTTL after
	// the token is first applied.
	ExpiresAt *time.Time `yaml:"expires_at,omitempty"`
}

// Summary counts what Apply put into the store.
type Summary struct {
	Accounts, AccessKeys, Products, Subscriptions, Tokens int
	// Entitlements counts the entitlements put (of the subscriptions that
	// list them).
	Entitlements int
	// Faults counts the fault rules the file lists.
	Faults int
	// SNSSubscriptions and EventBridgeTargets count what
	// ApplyNotifications subscribed and added (Apply leaves them 0).
	SNSSubscriptions, EventBridgeTargets int
}

//go:embed demo.yaml
var demoYAML []byte

// Demo returns the built-in demo marketplace (demo.yaml), a new copy on each
// call.
func Demo() *File {
	f, err := Parse(demoYAML)
	if err != nil {
		panic("seed: demo.yaml: " + err.Error())
	}
	return f
}

// Parse reads a seed file. It is strict: unknown fields, duplicate keys and
// more than one YAML document are errors. Errors name the line when YAML
// gives it. An empty document is an empty seed. Parse does not validate
// (see Validate).
func Parse(data []byte) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	f := new(File)
	if err := dec.Decode(f); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if line, key := badTimeLine(data); line > 0 {
			// time.Time's own parse error does not say where it is.
			return nil, fmt.Errorf("seed: line %d: %s: %w", line, key, err)
		}
		return nil, fmt.Errorf("seed: %w", err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, fmt.Errorf("seed: %w", err)
	default:
		return nil, fmt.Errorf("seed: line %d: a seed file is one YAML document", extra.Line)
	}
	return f, nil
}

// timeFields are the time-valued keys of a file's items, by list
// ("subscriptions.entitlements" is the entitlements of each subscription).
var timeFields = []struct{ list, key string }{
	{"registration_tokens", "expires_at"},
	{"subscriptions.entitlements", "expires_at"},
	{"accounts.access_keys", "expires_at"},
	{"accounts.access_keys", "revoked_at"},
	{"faults", "expires_at"},
	{"sns_subscriptions", "confirmed_at"},
}

// badTimeLine returns the line and key of the first time-valued field
// (timeFields) that is not a time, or 0.
func badTimeLine(data []byte) (int, string) {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return 0, ""
	}
	for _, tf := range timeFields {
		items := []*yaml.Node{doc.Content[0]}
		for _, name := range strings.Split(tf.list, ".") {
			var next []*yaml.Node
			for _, it := range items {
				if l := mapValue(it, name); l != nil && l.Kind == yaml.SequenceNode {
					next = append(next, l.Content...)
				}
			}
			items = next
		}
		for _, it := range items {
			if e := mapValue(it, tf.key); e != nil {
				var tm time.Time
				if e.Decode(&tm) != nil {
					return e.Line, tf.key
				}
			}
		}
	}
	return 0, ""
}

// mapValue returns the value of key in mapping node n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// Load reads and parses the seed file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Marshal returns f as YAML that Parse reads back to an equal File.
func (f *File) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	return buf.Bytes(), nil
}

// LicenseArnFor is the license ARN a subscription of account (in the aws
// partition) to product gets when the seed gives none:
// arn:aws:license-manager::<account>:license/l-<32 hex digits>, the digits
// taken from a SHA-256 of account and product.
func LicenseArnFor(account, product string) string {
	return LicenseArnInPartition("aws", account, product)
}

// LicenseArnInPartition is LicenseArnFor for an account in partition:
// arn:<partition>:license-manager::..., as License Manager's ARNs are in
// the account's partition (arn:aws-eusc:... in eusc-de-east-1).
func LicenseArnInPartition(partition, account, product string) string {
	sum := sha256.Sum256([]byte("mpmeter/license\x00" + account + "\x00" + product))
	return "arn:" + partition + ":license-manager::" + account + ":license/l-" + hex.EncodeToString(sum[:16])
}

// customerIDLen is the length of generated customer identifiers.
const customerIDLen = 13

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// CustomerIdentifierFor is the customer identifier a subscription of account
// to product gets when the seed gives none: 13 lowercase letters and digits
// taken from a SHA-256 of account and product, opaque like AWS's.
func CustomerIdentifierFor(account, product string) string {
	sum := sha256.Sum256([]byte("mpmeter/customer\x00" + account + "\x00" + product))
	return lowerBase32.EncodeToString(sum[:])[:customerIDLen]
}

// Validate checks f and returns every problem it finds, joined with
// errors.Join; each names the item, such as
// `products[0] (exampleprod1): seller "999" is not an account in the seed`.
func (f *File) Validate() error {
	_, err := f.resolve()
	return err
}

// Resolved returns a copy of f with the values it leaves out filled in as
// Apply fills them: generated customer identifiers and license ARNs, and
// subscription statuses (active). Token expiry times stay as they are (Apply
// takes them from the store or the clock). It fails as Validate does.
func (f *File) Resolved() (*File, error) {
	return f.resolve()
}

// problems collects validation errors.
type problems []error

func (p *problems) add(item, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", item, fmt.Sprintf(format, args...)))
}

// itemName names the i-th element of a list for an error message.
func itemName(list string, i int, id string) string {
	if id == "" {
		return fmt.Sprintf("%s[%d]", list, i)
	}
	return fmt.Sprintf("%s[%d] (%s)", list, i, id)
}

// resolver validates a seed file one entity at a time and remembers what
// the later entities refer to.
type resolver struct {
	errs        problems
	accounts    map[string]string          // account id -> item name
	keys        map[string]string          // access key id -> item name
	products    map[string]string          // product code -> item name
	concurrent  map[string]bool            // product codes with concurrent agreements
	dimensions  map[string]map[string]bool // product code -> its dimensions
	partitionOf map[string]string          // account id -> partition (explicit or its workloads')
	arns        map[string]string          // license ARN -> item name
	agreements  map[string]string          // agreement id -> item name
	customers   map[subKey]string          // (product, customer id) -> item name
	subsOf      map[subKey][]string
	tokens      map[string]string // token -> item name
}

// subKey is a pair of names: (account, product) in subsOf, (product,
// customer identifier) in customers.
type subKey struct{ a, b string }

func (f *File) resolve() (*File, error) {
	rv := &resolver{
		accounts:    map[string]string{},
		keys:        map[string]string{},
		products:    map[string]string{},
		concurrent:  map[string]bool{},
		dimensions:  map[string]map[string]bool{},
		partitionOf: map[string]string{},
		arns:        map[string]string{},
		agreements:  map[string]string{},
		customers:   map[subKey]string{},
		subsOf:      map[subKey][]string{},
		tokens:      map[string]string{},
	}
	r := &File{}
	for i, a := range f.Accounts {
		r.Accounts = append(r.Accounts, rv.account(i, a))
	}
	for i, p := range f.Products {
		r.Products = append(r.Products, rv.product(i, p))
	}
	for i, s := range f.Subscriptions {
		r.Subscriptions = append(r.Subscriptions, rv.subscription(i, s))
	}
	for i, t := range f.RegistrationTokens {
		r.RegistrationTokens = append(r.RegistrationTokens, rv.token(i, t))
	}
	faultIDs := map[string]string{}
	for i, ft := range f.Faults {
		r.Faults = append(r.Faults, rv.fault(i, ft, faultIDs))
	}
	if len(f.Faults) > mpmeter.MaxFaultRules {
		rv.errs = append(rv.errs, fmt.Errorf("faults: %d rules, but at most %d may exist at once", len(f.Faults), mpmeter.MaxFaultRules))
	}
	for i, ss := range f.SNSSubscriptions {
		item := itemName("sns_subscriptions", i, ss.Endpoint)
		if rv.products[ss.Product] == "" {
			rv.errs.add(item, "product %q is not a product in the seed", ss.Product)
		}
		rv.errs.addAll(item, CheckSNSSubscription(ss.Topic, ss.Protocol, ss.Endpoint))
		if ss.ConfirmedAt != nil {
			c := ss.ConfirmedAt.UTC()
			ss.ConfirmedAt = &c
		}
		r.SNSSubscriptions = append(r.SNSSubscriptions, ss)
	}
	for i, t := range f.EventBridgeTargets {
		item := itemName("eventbridge_targets", i, t.Endpoint)
		if rv.accounts[t.Account] == "" {
			rv.errs.add(item, "account %q is not an account in the seed", t.Account)
		}
		rv.errs.addAll(item, CheckEndpointURL(t.Endpoint))
		r.EventBridgeTargets = append(r.EventBridgeTargets, t)
	}
	if len(rv.errs) > 0 {
		return nil, errors.Join(rv.errs...)
	}
	return r, nil
}

// addAll records each of problems under item.
func (p *problems) addAll(item string, msgs []string) {
	for _, m := range msgs {
		*p = append(*p, fmt.Errorf("%s: %s", item, m))
	}
}

// account checks the i-th account and its access keys.
func (rv *resolver) account(i int, a Account) Account {
	item := itemName("accounts", i, a.ID)
	switch idProblems := CheckAccountID(a.ID); {
	case idProblems != nil:
		rv.errs.addAll(item, idProblems)
	case rv.accounts[a.ID] != "":
		rv.errs.add(item, "id %q is also the id of %s", a.ID, rv.accounts[a.ID])
	default:
		rv.accounts[a.ID] = item
	}
	ra := Account{ID: a.ID, Name: a.Name, Partition: a.Partition}
	rv.errs.addAll(item, CheckAccount(a))
	partition := a.Partition
	for j, k := range a.AccessKeys {
		kitem := itemName(fmt.Sprintf("accounts[%d].access_keys", i), j, k.ID)
		ra.AccessKeys = append(ra.AccessKeys, rv.accessKey(kitem, k))
		// An account lives in one partition: its workloads' regions say
		// which when the file does not.
		if w := k.Workload; w != nil && mpmeter.ValidRegionName(w.Region) {
			if p := mpmeter.PartitionOf(w.Region); partition == "" {
				partition = p
			} else if p != partition {
				rv.errs.add(kitem, "workload region %q is in partition %s, account %s in %s: an account lives in one partition", w.Region, p, a.ID, partition)
			}
		}
	}
	if a.ID != "" {
		rv.partitionOf[a.ID] = partition
	}
	return ra
}

// accessKey checks one access key, named item in errors.
func (rv *resolver) accessKey(item string, k AccessKey) AccessKey {
	switch idProblems := CheckAccessKeyID(k.ID); {
	case idProblems != nil:
		rv.errs.addAll(item, idProblems)
	case rv.keys[k.ID] != "":
		rv.errs.add(item, "id %q is also the id of %s", k.ID, rv.keys[k.ID])
	default:
		rv.keys[k.ID] = item
	}
	rv.errs.addAll(item, CheckAccessKey(k))
	rk := k
	if k.ExpiresAt != nil {
		e := *k.ExpiresAt
		rk.ExpiresAt = &e
	}
	if k.RevokedAt != nil {
		r := *k.RevokedAt
		rk.RevokedAt = &r
	}
	if w := k.Workload; w != nil {
		wc := *w
		rk.Workload = &wc
	}
	return rk
}

// product checks the i-th product; its seller must be an account already
// seen.
func (rv *resolver) product(i int, p Product) Product {
	item := itemName("products", i, p.Code)
	switch codeProblems := CheckProductCode(p.Code); {
	case codeProblems != nil:
		rv.errs.addAll(item, codeProblems)
	case rv.products[p.Code] != "":
		rv.errs.add(item, "code %q is also the code of %s", p.Code, rv.products[p.Code])
	default:
		rv.products[p.Code] = item
	}
	switch {
	case p.Seller == "":
		rv.errs.add(item, "seller is missing")
	case rv.accounts[p.Seller] == "":
		rv.errs.add(item, "seller %q is not an account in the seed", p.Seller)
	}
	rv.errs.addAll(item, CheckProduct(p))
	if rv.dimensions[p.Code] == nil {
		dims := make(map[string]bool, len(p.Dimensions))
		for _, d := range p.Dimensions {
			dims[d] = true
		}
		rv.dimensions[p.Code] = dims
	}
	if p.ConcurrentAgreements {
		rv.concurrent[p.Code] = true
	}
	rp := p
	rp.Dimensions = append([]string(nil), p.Dimensions...)
	rp.DimensionDetails = nil
	for name, d := range p.DimensionDetails {
		if d == (DimensionDetails{}) {
			continue
		}
		if rp.DimensionDetails == nil {
			rp.DimensionDetails = map[string]DimensionDetails{}
		}
		rp.DimensionDetails[name] = d
	}
	return rp
}

// subscription checks the i-th subscription and fills in its generated
// values; its account and product must have been seen.
func (rv *resolver) subscription(i int, s Subscription) Subscription {
	item := itemName("subscriptions", i, s.Account+"/"+s.Product)
	if s.Account == "" && s.Product == "" {
		item = itemName("subscriptions", i, "")
	}
	switch {
	case s.Account == "":
		rv.errs.add(item, "account is missing")
	case rv.accounts[s.Account] == "":
		rv.errs.add(item, "account %q is not an account in the seed", s.Account)
	}
	switch {
	case s.Product == "":
		rv.errs.add(item, "product is missing")
	case rv.products[s.Product] == "":
		rv.errs.add(item, "product %q is not a product in the seed", s.Product)
	}
	rv.errs.addAll(item, CheckSubscription(s, rv.concurrent[s.Product]))
	rs := s
	rs.Entitlements = rv.entitlements(item, s.Product, s.Entitlements)
	if rs.Status == "" {
		rs.Status = mpmeter.SubscriptionActive
	}
	generatedArn := rs.LicenseArn == ""
	partition := cmp.Or(rv.partitionOf[s.Account], "aws")
	if generatedArn {
		rs.LicenseArn = LicenseArnInPartition(partition, s.Account, s.Product)
	} else {
		rv.errs.addAll(item, CheckLicenseArnPartition(rs.LicenseArn, s.Account, rv.partitionOf[s.Account]))
	}
	if rs.AgreementID == "" {
		rs.AgreementID = mpmeter.AgreementIDFor(rs.LicenseArn)
	}
	if other := rv.agreements[rs.AgreementID]; other != "" {
		rv.errs.add(item, "agreement_id %q is also the agreement id of %s", rs.AgreementID, other)
	} else {
		rv.agreements[rs.AgreementID] = item
	}
	if other := rv.arns[rs.LicenseArn]; other != "" {
		if generatedArn {
			rv.errs.add(item, "subscribes the same account to the same product as %s; give them distinct license_arn values", other)
		} else {
			rv.errs.add(item, "license_arn %q is also the license ARN of %s", rs.LicenseArn, other)
		}
	} else {
		rv.arns[rs.LicenseArn] = item
	}
	if rv.concurrent[s.Product] {
		// Identified by account and license ARN only.
		sk := subKey{s.Account, s.Product}
		rv.subsOf[sk] = append(rv.subsOf[sk], rs.LicenseArn)
		return rs
	}
	generatedCustomer := rs.CustomerIdentifier == ""
	if generatedCustomer {
		rs.CustomerIdentifier = CustomerIdentifierFor(s.Account, s.Product)
	}
	ck := subKey{s.Product, rs.CustomerIdentifier}
	if other := rv.customers[ck]; other != "" {
		if generatedCustomer {
			rv.errs.add(item, "its generated customer_identifier %q is also the customer identifier of %s; give one of them a customer_identifier", rs.CustomerIdentifier, other)
		} else {
			rv.errs.add(item, "customer_identifier %q is also the customer identifier of %s for product %q", rs.CustomerIdentifier, other, s.Product)
		}
	} else {
		rv.customers[ck] = item
	}
	sk := subKey{s.Account, s.Product}
	rv.subsOf[sk] = append(rv.subsOf[sk], rs.LicenseArn)
	return rs
}

// token checks the i-th registration token; its account must subscribe to
// its product in the file.
func (rv *resolver) token(i int, t RegistrationToken) RegistrationToken {
	item := itemName("registration_tokens", i, t.Token)
	switch tokenProblems := CheckRegistrationTokenValue(t.Token); {
	case tokenProblems != nil:
		rv.errs.addAll(item, tokenProblems)
	case rv.tokens[t.Token] != "":
		rv.errs.add(item, "token %q is also the token of %s", t.Token, rv.tokens[t.Token])
	default:
		rv.tokens[t.Token] = item
	}
	okAccount, okProduct := false, false
	switch {
	case t.Account == "":
		rv.errs.add(item, "account is missing")
	case rv.accounts[t.Account] == "":
		rv.errs.add(item, "account %q is not an account in the seed", t.Account)
	default:
		okAccount = true
	}
	switch {
	case t.Product == "":
		rv.errs.add(item, "product is missing")
	case rv.products[t.Product] == "":
		rv.errs.add(item, "product %q is not a product in the seed", t.Product)
	default:
		okProduct = true
	}
	rt := t
	if okAccount && okProduct {
		subs := rv.subsOf[subKey{t.Account, t.Product}]
		switch {
		case len(subs) == 0:
			rv.errs.add(item, "account %q has no subscription to product %q in the seed", t.Account, t.Product)
		case t.LicenseArn != "" && !oneOf(t.LicenseArn, subs):
			rv.errs.add(item, "license_arn %q is not one of account %q's subscriptions to product %q", t.LicenseArn, t.Account, t.Product)
		case t.LicenseArn == "" && rv.concurrent[t.Product] && len(subs) > 1:
			rv.errs.add(item, "license_arn is missing: account %q holds %d concurrent agreements for product %q and a token names one", t.Account, len(subs), t.Product)
		case t.LicenseArn == "" && rv.concurrent[t.Product]:
			rt.LicenseArn = subs[0] // the token names the one agreement
		}
	}
	if t.ExpiresAt != nil {
		e := *t.ExpiresAt
		rt.ExpiresAt = &e
	}
	return rt
}

// Target is the part of an mpmeter.Store that Apply writes to: the Put
// methods, and RegistrationToken to keep a stored token's times.
type Target interface {
	PutAccount(ctx context.Context, a mpmeter.Account) error
	PutAccessKey(ctx context.Context, k mpmeter.AccessKey) error
	PutProduct(ctx context.Context, p mpmeter.Product) error
	PutSubscription(ctx context.Context, s mpmeter.Subscription) error
	PutEntitlements(ctx context.Context, licenseArn string, ents []mpmeter.Entitlement) error
	RegistrationToken(ctx context.Context, token string) (mpmeter.RegistrationToken, error)
	PutRegistrationToken(ctx context.Context, t mpmeter.RegistrationToken) error
}

// Apply validates f and puts everything it describes into st, in dependency
// order: accounts, access keys, products, subscriptions (each with its
// entitlements, when it lists them), registration tokens.
// It is idempotent: applying the same file again, at any later time, changes
// nothing. Subscriptions get now as their creation time (a store keeps the
// first put's). A registration token new to the store is created at now and,
// unless the file gives expires_at, expires tokenTTL later; a token already in
// the store keeps its times, except that an explicit expires_at replaces its
// expiry. Summary counts the items put.
func (f *File) Apply(ctx context.Context, st Target, now time.Time, tokenTTL time.Duration) (Summary, error) {
	return f.ApplyConcurrently(ctx, st, now, tokenTTL, 1)
}

// ApplyConcurrently is Apply with up to workers puts in flight at once
// within each kind of item; the kinds still go in dependency order, and the
// result is the same. A store that commits concurrent puts at once (the
// PostgreSQL store) takes a large seed many times faster so; the benchmark
// seeds its generated marketplaces this way. After an error, puts already
// in flight finish and the rest are not made.
func (f *File) ApplyConcurrently(ctx context.Context, st Target, now time.Time, tokenTTL time.Duration, workers int) (Summary, error) {
	var sum Summary
	r, err := f.resolve()
	if err != nil {
		return sum, err
	}
	if tokenTTL <= 0 {
		for i, t := range r.RegistrationTokens {
			if t.ExpiresAt == nil {
				return sum, fmt.Errorf("seed: %s: no expires_at and the token TTL is %v", itemName("registration_tokens", i, t.Token), tokenTTL)
			}
		}
	}
	type accountKey struct {
		account string
		key     AccessKey
	}
	var keys []accountKey
	for _, a := range r.Accounts {
		for _, k := range a.AccessKeys {
			keys = append(keys, accountKey{a.ID, k})
		}
	}

	err = forEach(ctx, workers, len(r.Accounts), func(ctx context.Context, i int) error {
		a := r.Accounts[i]
		if err := st.PutAccount(ctx, mpmeter.Account{ID: a.ID, Name: a.Name}); err != nil {
			return fmt.Errorf("seed: account %s: %w", a.ID, err)
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	sum.Accounts = len(r.Accounts)
	err = forEach(ctx, workers, len(keys), func(ctx context.Context, i int) error {
		k := keys[i].key
		key := mpmeter.AccessKey{ID: k.ID, Secret: k.Secret, AccountID: keys[i].account,
			SessionToken: k.SessionToken, CredentialsToken: k.CredentialsToken}
		if k.ExpiresAt != nil {
			key.ExpiresAt = *k.ExpiresAt
		}
		if k.RevokedAt != nil {
			key.RevokedAt = *k.RevokedAt
		}
		if k.Workload != nil {
			key.Workload = &mpmeter.Workload{ID: k.Workload.ID, Platform: k.Workload.Platform, Region: k.Workload.Region}
		}
		if err := st.PutAccessKey(ctx, key); err != nil {
			return fmt.Errorf("seed: access key %s: %w", k.ID, err)
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	sum.AccessKeys = len(keys)
	err = forEach(ctx, workers, len(r.Products), func(ctx context.Context, i int) error {
		p := r.Products[i]
		prod := mpmeter.Product{Code: p.Code, SellerAccountID: p.Seller, Type: p.Type, Dimensions: append([]string(nil), p.Dimensions...), ConcurrentAgreements: p.ConcurrentAgreements, FulfillmentURL: p.FulfillmentURL}
		for name, d := range p.DimensionDetails {
			if prod.DimensionDetails == nil {
				prod.DimensionDetails = map[string]mpmeter.DimensionDetails{}
			}
			prod.DimensionDetails[name] = mpmeter.DimensionDetails{Description: d.Description, Unit: d.Unit, PricePerUnit: d.Price}
		}
		if err := st.PutProduct(ctx, prod); err != nil {
			return fmt.Errorf("seed: product %s: %w", p.Code, err)
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	sum.Products = len(r.Products)
	err = forEach(ctx, workers, len(r.Subscriptions), func(ctx context.Context, i int) error {
		s := r.Subscriptions[i]
		sub := mpmeter.Subscription{
			AccountID:          s.Account,
			ProductCode:        s.Product,
			CustomerIdentifier: s.CustomerIdentifier,
			LicenseArn:         s.LicenseArn,
			Status:             s.Status,
			CreatedAt:          now,
			AgreementID:        s.AgreementID,
			OfferID:            s.OfferID,
			FreeTrial:          s.FreeTrial,
		}
		if !sub.Active() {
			// A seeded cancellation is settled: its final metering hour is
			// over. A stored end time is kept (Store.PutSubscription).
			sub.EndedAt = now.Add(-mpmeter.FinalMeteringWindow)
		}
		if err := st.PutSubscription(ctx, sub); err != nil {
			return fmt.Errorf("seed: subscription %s: %w", s.LicenseArn, err)
		}
		if s.Entitlements != nil {
			if err := st.PutEntitlements(ctx, s.LicenseArn, DomainEntitlements(s.Entitlements)); err != nil {
				return fmt.Errorf("seed: entitlements of subscription %s: %w", s.LicenseArn, err)
			}
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	sum.Subscriptions = len(r.Subscriptions)
	for _, s := range r.Subscriptions {
		sum.Entitlements += len(s.Entitlements)
	}
	err = forEach(ctx, workers, len(r.RegistrationTokens), func(ctx context.Context, i int) error {
		t := r.RegistrationTokens[i]
		tok := mpmeter.RegistrationToken{
			Token:       t.Token,
			AccountID:   t.Account,
			ProductCode: t.Product,
			LicenseArn:  t.LicenseArn,
		}
		old, err := st.RegistrationToken(ctx, t.Token)
		stored := err == nil
		switch {
		case stored:
			tok.CreatedAt, tok.ExpiresAt = old.CreatedAt, old.ExpiresAt
		case errors.Is(err, mpmeter.ErrNotFound):
			tok.CreatedAt, tok.ExpiresAt = now, now.Add(tokenTTL)
		default:
			return fmt.Errorf("seed: registration token %s: %w", t.Token, err)
		}
		if t.ExpiresAt != nil {
			tok.ExpiresAt = *t.ExpiresAt
			if !stored && tok.ExpiresAt.Before(tok.CreatedAt) {
				// A token the file says has expired was never issued
				// after its expiry.
				tok.CreatedAt = tok.ExpiresAt
			}
		}
		if err := st.PutRegistrationToken(ctx, tok); err != nil {
			return fmt.Errorf("seed: registration token %s: %w", t.Token, err)
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	sum.Tokens = len(r.RegistrationTokens)
	if err := applyFaults(ctx, st, r.Faults, now); err != nil {
		return sum, err
	}
	sum.Faults = len(r.Faults)
	return sum, nil
}

// NotificationTarget is what applying a file's sns_subscriptions and
// eventbridge_targets needs: *notify.Notifier, which derives a subscription's
// ARN from its topic's and sends a new subscription its
// SubscriptionConfirmation.
type NotificationTarget interface {
	SubscribeConfirmedEndpoint(ctx context.Context, productCode, topic, protocol, endpoint string, confirmedAt time.Time) (mpmeter.SNSSubscription, error)
	AddTarget(ctx context.Context, accountID, endpoint string) (mpmeter.EventBridgeTarget, error)
}

// ApplyNotifications validates f and, through n, subscribes its SNS
// endpoints and adds its EventBridge targets; it runs after Apply (their
// products and accounts must be stored). It is idempotent: subscription
// ARNs and target ids are derived from what they name, so applying again
// finds them stored and changes nothing. A pending subscription is sent its
// SubscriptionConfirmation once; one with confirmed_at is stored confirmed
// then and sent none; a stored confirmation is kept. Summary counts
// SNSSubscriptions and EventBridgeTargets only.
func (f *File) ApplyNotifications(ctx context.Context, n NotificationTarget) (Summary, error) {
	var sum Summary
	r, err := f.resolve()
	if err != nil {
		return sum, err
	}
	for _, ss := range r.SNSSubscriptions {
		var confirmed time.Time
		if ss.ConfirmedAt != nil {
			confirmed = *ss.ConfirmedAt
		}
		if _, err := n.SubscribeConfirmedEndpoint(ctx, ss.Product, ss.Topic, ss.Protocol, ss.Endpoint, confirmed); err != nil {
			return sum, fmt.Errorf("seed: SNS subscription %s to %s: %w", ss.Endpoint, ss.Product, err)
		}
		sum.SNSSubscriptions++
	}
	for _, t := range r.EventBridgeTargets {
		if _, err := n.AddTarget(ctx, t.Account, t.Endpoint); err != nil {
			return sum, fmt.Errorf("seed: EventBridge target %s: %w", t.Endpoint, err)
		}
		sum.EventBridgeTargets++
	}
	return sum, nil
}

// forEach calls put(ctx, i) for every i in [0, n) on up to workers
// goroutines (in order on the caller's when workers <= 1) and returns the
// first error; after it, no new put starts.
func forEach(ctx context.Context, workers, n int, put func(ctx context.Context, i int) error) error {
	if workers <= 1 || n <= 1 {
		for i := range n {
			if err := put(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := put(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
