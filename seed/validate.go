package seed

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/mpmeter/mpmeter"
)

// The rules for one entity at a time, each in one place: Validate applies
// them to every item of a file (adding the rules between items: references
// and uniqueness), and the admin API applies them to every create and update
// (checking references against the store). Each returns the entity's
// problems as messages naming the field, without the item (the caller names
// it); none means valid.

var (
	accountIDRe   = regexp.MustCompile(`^[0-9]{12}$`)
	accessKeyIDRe = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	productCodeRe = regexp.MustCompile(`^[-a-zA-Z0-9/=:_.@]*$`)
	// licenseArnRe is the service model's LicenseArn pattern; RE2 allows
	// repeat counts up to 1000, so {0,1023} is written {0,1000}{0,23}.
	licenseArnRe = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:[A-Za-z0-9][A-Za-z0-9_/.-]{0,62}:[A-Za-z0-9_/.-]{0,63}:[A-Za-z0-9_/.-]{0,63}:[A-Za-z0-9][A-Za-z0-9:_/+=,@.-]{0,1000}[A-Za-z0-9:_/+=,@.-]{0,23}$`)
	// priceRe: a non-negative decimal in USD, at most 12 digits either side
	// of the point; kept as text, never a float.
	priceRe       = regexp.MustCompile(`^(0|[1-9][0-9]{0,11})(\.[0-9]{1,12})?$`)
	agreementIDRe = regexp.MustCompile(`^agmt-[a-zA-Z0-9]{1,59}$`)
	offerIDRe     = regexp.MustCompile(`^offer-[a-zA-Z0-9]{1,58}$`)
)

// Limits of the free-text fields.
const (
	MaxNameLen                 = 255
	MaxDimensionDescriptionLen = 1024
	MaxDimensionUnitLen        = 64
)

var (
	platforms    = []string{mpmeter.PlatformEC2, mpmeter.PlatformECS, mpmeter.PlatformEKS, mpmeter.PlatformFargate, mpmeter.PlatformAgentCore}
	productTypes = []string{mpmeter.ProductSaaS, mpmeter.ProductAMI, mpmeter.ProductContainer}
	statuses     = []string{mpmeter.SubscriptionActive, mpmeter.SubscriptionCancelled, mpmeter.SubscriptionExpired}
)

func oneOf(s string, set []string) bool {
	for _, v := range set {
		if v == s {
			return true
		}
	}
	return false
}

// CheckAccountID checks an account id: 12 digits.
func CheckAccountID(id string) []string {
	switch {
	case id == "":
		return []string{"id is missing"}
	case !accountIDRe.MatchString(id):
		return []string{fmt.Sprintf("id %q is not a 12-digit AWS account id", id)}
	}
	return nil
}

// CheckAccount checks an account's fields other than its id and keys.
func CheckAccount(a Account) []string {
	var p []string
	if a.Partition != "" && !mpmeter.IsPartition(a.Partition) {
		p = append(p, fmt.Sprintf("partition %q is not an AWS partition such as aws, aws-cn, aws-us-gov or aws-eusc", a.Partition))
	}
	if utf8.RuneCountInString(a.Name) > MaxNameLen {
		p = append(p, fmt.Sprintf("name is longer than %d characters", MaxNameLen))
	}
	return p
}

// CheckAccessKeyID checks an access key id: 16 to 128 of A-Z and 0-9.
func CheckAccessKeyID(id string) []string {
	switch {
	case id == "":
		return []string{"id is missing"}
	case !accessKeyIDRe.MatchString(id):
		return []string{fmt.Sprintf("id %q is not an access key id (16 to 128 characters, A-Z and 0-9)", id)}
	}
	return nil
}

// CheckAccessKey checks an access key's fields other than its id.
func CheckAccessKey(k AccessKey) []string {
	var p []string
	if k.Secret == "" {
		p = append(p, "secret is missing")
	}
	if k.ExpiresAt != nil && k.SessionToken == "" {
		p = append(p, "expires_at needs a session_token: only temporary credentials expire")
	}
	if k.CredentialsToken != "" && (k.Workload == nil || k.SessionToken != "") {
		p = append(p, "credentials_token belongs on a workload's long-term key (a workload and no session_token)")
	}
	if w := k.Workload; w != nil {
		p = append(p, CheckWorkload(*w)...)
	}
	return p
}

// CheckWorkload checks a workload: an id, a platform and a region.
func CheckWorkload(w Workload) []string {
	var p []string
	if w.ID == "" {
		p = append(p, "workload id is missing")
	}
	if !oneOf(w.Platform, platforms) {
		p = append(p, fmt.Sprintf("workload platform %q is not one of %s", w.Platform, strings.Join(platforms, ", ")))
	}
	if !mpmeter.ValidRegionName(w.Region) {
		p = append(p, fmt.Sprintf("workload region %q is not an AWS region such as us-east-1", w.Region))
	}
	return p
}

// CheckProductCode checks a product code: 1 to 255 characters of A-Z,
// a-z, 0-9 and -/=:_.@.
func CheckProductCode(code string) []string {
	switch {
	case code == "":
		return []string{"code is missing"}
	case utf8.RuneCountInString(code) > 255 || !productCodeRe.MatchString(code):
		return []string{fmt.Sprintf("code %q is not a product code (1 to 255 characters of A-Z, a-z, 0-9 and -/=:_.@)", code)}
	}
	return nil
}

// CheckProduct checks a product's fields other than its code and seller:
// type, dimensions and their details, concurrent agreements.
func CheckProduct(pr Product) []string {
	var p []string
	if !oneOf(pr.Type, productTypes) {
		p = append(p, fmt.Sprintf("type %q is not one of %s", pr.Type, strings.Join(productTypes, ", ")))
	}
	if len(pr.Dimensions) == 0 {
		p = append(p, "dimensions: a product needs at least one")
	}
	dims := map[string]bool{}
	for _, d := range pr.Dimensions {
		switch n := utf8.RuneCountInString(d); {
		case n == 0:
			p = append(p, "dimension names must not be empty")
		case n > 255:
			p = append(p, fmt.Sprintf("dimension %q is longer than 255 characters", d))
		case dims[d]:
			p = append(p, fmt.Sprintf("dimension %q is listed twice", d))
		}
		dims[d] = true
	}
	for name, det := range pr.DimensionDetails {
		if !dims[name] {
			p = append(p, fmt.Sprintf("dimension %q has details but is not one of the dimensions", name))
		}
		p = append(p, CheckDimensionDetails(name, det)...)
	}
	if pr.ConcurrentAgreements && pr.Type != mpmeter.ProductSaaS {
		p = append(p, fmt.Sprintf("concurrent_agreements: only saas products have them, not %q", pr.Type))
	}
	if pr.FulfillmentURL != "" {
		for _, m := range CheckEndpointURL(pr.FulfillmentURL) {
			p = append(p, "fulfillment_url: "+m)
		}
		if pr.Type != mpmeter.ProductSaaS {
			p = append(p, fmt.Sprintf("fulfillment_url: only saas products have one, not %q", pr.Type))
		}
	}
	return p
}

// CheckEndpointURL checks a URL mpmeter POSTs to (a fulfillment URL, an
// SNS or EventBridge endpoint): absolute http or https.
func CheckEndpointURL(s string) []string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return []string{fmt.Sprintf("%q is not an absolute http:// or https:// URL", s)}
	}
	return nil
}

// CheckSNSSubscription checks an SNS subscription's topic, protocol and
// endpoint.
func CheckSNSSubscription(topic, protocol, endpoint string) []string {
	var p []string
	if topic != mpmeter.TopicSubscription && topic != mpmeter.TopicEntitlement {
		p = append(p, fmt.Sprintf("topic %q is neither %s nor %s", topic, mpmeter.TopicSubscription, mpmeter.TopicEntitlement))
	}
	if protocol != "http" && protocol != "https" {
		p = append(p, fmt.Sprintf("protocol %q is neither http nor https", protocol))
	}
	p = append(p, CheckEndpointURL(endpoint)...)
	if u, err := url.Parse(endpoint); err == nil && u.Scheme != protocol && len(p) == 0 {
		p = append(p, fmt.Sprintf("endpoint %q is not an %s:// URL", endpoint, protocol))
	}
	return p
}

// CheckDimensionDetails checks one dimension's description, unit and price.
func CheckDimensionDetails(name string, d DimensionDetails) []string {
	var p []string
	if utf8.RuneCountInString(d.Description) > MaxDimensionDescriptionLen {
		p = append(p, fmt.Sprintf("dimension %q: description is longer than %d characters", name, MaxDimensionDescriptionLen))
	}
	if utf8.RuneCountInString(d.Unit) > MaxDimensionUnitLen {
		p = append(p, fmt.Sprintf("dimension %q: unit is longer than %d characters", name, MaxDimensionUnitLen))
	}
	if d.Price != "" && !priceRe.MatchString(d.Price) {
		p = append(p, fmt.Sprintf("dimension %q: price %q is not a decimal number of USD such as 0.05 (up to 12 digits after the point)", name, d.Price))
	}
	return p
}

// CheckSubscription checks a subscription's own fields (not its account
// and product, which the caller looks up): status (empty is active),
// license ARN, customer identifier (none for a product with concurrent
// agreements), agreement and offer ids.
func CheckSubscription(s Subscription, concurrentAgreements bool) []string {
	var p []string
	if s.Status != "" && !oneOf(s.Status, statuses) {
		p = append(p, fmt.Sprintf("status %q is not one of %s", s.Status, strings.Join(statuses, ", ")))
	}
	if s.LicenseArn != "" && !licenseArnRe.MatchString(s.LicenseArn) {
		p = append(p, fmt.Sprintf("license_arn %q is not a license ARN", s.LicenseArn))
	}
	switch {
	case concurrentAgreements && s.CustomerIdentifier != "":
		p = append(p, fmt.Sprintf("customer_identifier: product %q has concurrent agreements, whose subscriptions have no customer identifier", s.Product))
	case utf8.RuneCountInString(s.CustomerIdentifier) > 255:
		p = append(p, fmt.Sprintf("customer_identifier %q is longer than 255 characters", s.CustomerIdentifier))
	}
	if s.AgreementID != "" && !agreementIDRe.MatchString(s.AgreementID) {
		p = append(p, fmt.Sprintf("agreement_id %q is not an agreement id (agmt- and up to 59 letters and digits)", s.AgreementID))
	}
	if s.OfferID != "" && !offerIDRe.MatchString(s.OfferID) {
		p = append(p, fmt.Sprintf("offer_id %q is not an offer id (offer- and up to 58 letters and digits)", s.OfferID))
	}
	return p
}

// CheckLicenseArnPartition checks that a license ARN is in the account's
// partition, when the account has one (explicit or its workloads').
func CheckLicenseArnPartition(licenseArn, account, partition string) []string {
	if partition == "" || !licenseArnRe.MatchString(licenseArn) {
		return nil
	}
	if p := mpmeter.ARNPartition(licenseArn); p != partition {
		return []string{fmt.Sprintf("license_arn %q is in partition %s, account %s in %s", licenseArn, p, account, partition)}
	}
	return nil
}

// CheckRegistrationTokenValue checks a registration token's value.
func CheckRegistrationTokenValue(token string) []string {
	switch {
	case token == "":
		return []string{"token is missing"}
	case strings.TrimSpace(token) != token || strings.ContainsAny(token, " \t\r\n"):
		return []string{"token must not contain white space"}
	}
	return nil
}
