// Package bench is mpmeter's load generator and side-by-side benchmark.
//
// It speaks the real protocol: awsJson 1.1 POSTs built by hand (no SDK, to
// keep the client's own cost low) and signed with aws-sdk-go-v2's SigV4
// signer, against in-process servers it starts itself (SQLite, PostgreSQL,
// and the "ceiling": the same server with the usage write switched off) or
// against any running mpmeter.
//
// The marketplace it meters is generated (Marketplace): one seller with one
// SaaS product and one AMI product, many buyer accounts each subscribed to
// the SaaS product with a registration token, and many EC2 workloads
// subscribed to the AMI product. The load generator derives what it sends
// from a seed file (NewPlan), so it can also drive a server seeded by hand.
//
// Every BatchMeterUsage record and every MeterUsage request occupies a new
// deduplication slot (customer or workload, dimension, hour): the benchmark
// measures stores that grow, never dedup hits. Slots are finite (customers x
// dimensions x 6 hours); a run that runs out reports SlotsExhausted errors
// rather than silently sending duplicates.
package bench

import (
	"errors"
	"fmt"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seed"
)

// The generated marketplace's fixed names and credentials (Marketplace).
const (
	Region = "us-east-1"

	SellerAccount = "100000000001"
	SellerKey     = "AKIABENCHSELLER00001"
	SellerSecret  = "bench-seller-secret"

	SaaSProduct = "benchsaas1"
	AMIProduct  = "benchami1"

	// Dimensions of each product: SaaS dim00..dim09, AMI ami00..ami09.
	Dimensions = 10

	// Hours is how many distinct usage hours a run meters into: the
	// service accepts timestamps up to 6 hours old.
	Hours = 6

	// workloadsPerAccount is how many EC2 workloads share a buyer account.
	workloadsPerAccount = 50
)

// CustomerID is the i-th (0-based) customer's identifier in Marketplace.
func CustomerID(i int) string { return fmt.Sprintf("bench-cust-%06d", i+1) }

// CustomerAccount is the i-th customer's 12-digit account id.
func CustomerAccount(i int) string { return fmt.Sprintf("2%011d", i+1) }

// TokenFor is the i-th customer's registration token.
func TokenFor(i int) string { return fmt.Sprintf("bench-token-%06d", i+1) }

// WorkloadKey is the i-th workload's access key id and secret.
func WorkloadKey(i int) (id, secret string) {
	return fmt.Sprintf("AKIABENCHW%010d", i+1), fmt.Sprintf("bench-workload-secret-%d", i+1)
}

func workloadAccount(i int) string { return fmt.Sprintf("3%011d", i/workloadsPerAccount+1) }

func dims(prefix string) []string {
	d := make([]string, Dimensions)
	for i := range d {
		d[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return d
}

// tokenExpiry is far enough ahead that ResolveCustomer succeeds in any run.
var tokenExpiry = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

// Marketplace returns a generated seed: seller SellerAccount (key
// SellerKey/SellerSecret) with SaaS product SaaSProduct and AMI product
// AMIProduct (Dimensions dimensions each); customers buyer accounts, each
// with an active subscription to the SaaS product (customer identifier
// CustomerID(i)) and a registration token TokenFor(i) expiring in 2100; and
// workloads EC2 workloads in us-east-1 (keys WorkloadKey(i)), 50 to a buyer
// account, each account subscribed to the AMI product.
//
// BatchMeterUsage has customers x Dimensions x Hours distinct slots,
// MeterUsage workloads x Dimensions x Hours.
func Marketplace(customers, workloads int) *seed.File {
	f := &seed.File{
		Accounts: []seed.Account{{
			ID: SellerAccount, Name: "Bench Seller",
			AccessKeys: []seed.AccessKey{{ID: SellerKey, Secret: SellerSecret}},
		}},
		Products: []seed.Product{
			{Code: SaaSProduct, Seller: SellerAccount, Type: mpmeter.ProductSaaS, Dimensions: dims("dim")},
			{Code: AMIProduct, Seller: SellerAccount, Type: mpmeter.ProductAMI, Dimensions: dims("ami")},
		},
	}
	for i := range customers {
		acct := CustomerAccount(i)
		f.Accounts = append(f.Accounts, seed.Account{ID: acct})
		f.Subscriptions = append(f.Subscriptions, seed.Subscription{
			Account: acct, Product: SaaSProduct, CustomerIdentifier: CustomerID(i),
		})
		exp := tokenExpiry
		f.RegistrationTokens = append(f.RegistrationTokens, seed.RegistrationToken{
			Token: TokenFor(i), Account: acct, Product: SaaSProduct, ExpiresAt: &exp,
		})
	}
	for i := range workloads {
		acct := workloadAccount(i)
		if i%workloadsPerAccount == 0 {
			f.Accounts = append(f.Accounts, seed.Account{ID: acct})
			f.Subscriptions = append(f.Subscriptions, seed.Subscription{Account: acct, Product: AMIProduct})
		}
		id, secret := WorkloadKey(i)
		a := &f.Accounts[len(f.Accounts)-1]
		a.AccessKeys = append(a.AccessKeys, seed.AccessKey{
			ID: id, Secret: secret,
			Workload: &seed.Workload{ID: fmt.Sprintf("i-%017x", i+1), Platform: mpmeter.PlatformEC2, Region: Region},
		})
	}
	return f
}

// Sizing is how large a marketplace a benchmark needs.
type Sizing struct {
	Customers, Workloads int
}

// SizeFor returns a marketplace large enough that a run of the given length
// (warm-up included) does not run out of slots at up to recordsPerSec
// BatchMeterUsage records and meterPerSec MeterUsage requests a second,
// with at least 1,000 customers and 200 workloads.
func SizeFor(seconds float64, recordsPerSec, meterPerSec float64) Sizing {
	perCustomer := float64(Dimensions * Hours)
	c := int(recordsPerSec*seconds/perCustomer) + 1
	w := int(meterPerSec*seconds/perCustomer) + 1
	return Sizing{Customers: max(c, 1000), Workloads: max(w, 200)}
}

// Plan is what the load generator sends, derived from a seed file.
type Plan struct {
	Region string
	// SaaS: the seller's key, the product, its dimensions, the
	// identifiers of its active customers and its registration tokens.
	SellerKey, SellerSecret string
	SellerAccount           string
	SaaSProduct             string
	SaaSDimensions          []string
	Customers               []string
	// Subscriptions are the customers' agreements, in Customers' order
	// (the growth pre-fill writes records for them).
	Subscriptions []mpmeter.Subscription
	Tokens        []string
	// AMI (or container): the product, its dimensions and the keys of the
	// workloads entitled to it.
	MeterProduct    string
	MeterDimensions []string
	Workloads       []Credential
}

// Credential is an access key.
type Credential struct{ ID, Secret string }

// BatchSlots is how many distinct BatchMeterUsage records the plan can send
// within one usage window.
func (p *Plan) BatchSlots() int64 {
	return int64(len(p.Customers)) * int64(len(p.SaaSDimensions)) * Hours
}

// MeterSlots is how many distinct MeterUsage requests the plan can send
// within one usage window.
func (p *Plan) MeterSlots() int64 {
	return int64(len(p.Workloads)) * int64(len(p.MeterDimensions)) * Hours
}

// NewPlan derives a plan from a seed: the first SaaS product whose seller
// has a plain access key (sellerKey overrides which one, when not empty) with
// its active subscriptions' customer identifiers and its registration tokens
// that have not expired; and the first AMI or container product with
// non-AgentCore workloads in region whose accounts have an active
// subscription. Marketplace's seed gives the obvious plan.
func NewPlan(f *seed.File, region string, sellerKey, sellerSecret string) (*Plan, error) {
	r, err := f.Resolved()
	if err != nil {
		return nil, err
	}
	p := &Plan{Region: region}
	plainKeys := map[string][]seed.AccessKey{}
	for _, a := range r.Accounts {
		for _, k := range a.AccessKeys {
			if k.Workload == nil {
				plainKeys[a.ID] = append(plainKeys[a.ID], k)
			}
		}
	}
	active := map[[2]string]bool{} // account, product
	for _, s := range r.Subscriptions {
		if s.Status == mpmeter.SubscriptionActive {
			active[[2]string{s.Account, s.Product}] = true
		}
	}
	now := time.Now()
	for _, prod := range r.Products {
		if prod.Type != mpmeter.ProductSaaS || len(plainKeys[prod.Seller]) == 0 {
			continue
		}
		p.SaaSProduct, p.SaaSDimensions, p.SellerAccount = prod.Code, prod.Dimensions, prod.Seller
		p.SellerKey, p.SellerSecret = plainKeys[prod.Seller][0].ID, plainKeys[prod.Seller][0].Secret
		for _, s := range r.Subscriptions {
			if s.Product == prod.Code && s.Status == mpmeter.SubscriptionActive {
				p.Customers = append(p.Customers, s.CustomerIdentifier)
				p.Subscriptions = append(p.Subscriptions, mpmeter.Subscription{
					AccountID: s.Account, ProductCode: s.Product, CustomerIdentifier: s.CustomerIdentifier,
					LicenseArn: s.LicenseArn, Status: s.Status,
				})
			}
		}
		for _, t := range r.RegistrationTokens {
			if t.Product == prod.Code && (t.ExpiresAt == nil || t.ExpiresAt.After(now)) {
				p.Tokens = append(p.Tokens, t.Token)
			}
		}
		break
	}
	if sellerKey != "" {
		p.SellerKey, p.SellerSecret = sellerKey, sellerSecret
	}
	for _, prod := range r.Products {
		if prod.Type != mpmeter.ProductAMI && prod.Type != mpmeter.ProductContainer {
			continue
		}
		var ws []Credential
		for _, a := range r.Accounts {
			if !active[[2]string{a.ID, prod.Code}] {
				continue
			}
			for _, k := range a.AccessKeys {
				if w := k.Workload; w != nil && w.Region == region && w.Platform != mpmeter.PlatformAgentCore {
					ws = append(ws, Credential{k.ID, k.Secret})
				}
			}
		}
		if len(ws) > 0 {
			p.MeterProduct, p.MeterDimensions, p.Workloads = prod.Code, prod.Dimensions, ws
			break
		}
	}
	if p.SaaSProduct == "" && p.MeterProduct == "" {
		return nil, errors.New("bench: the seed has neither a SaaS product with a seller key nor an AMI/container product with workloads")
	}
	return p, nil
}
