package seed_test

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/seed"
)

// issueExample is the seed file of the issue that defines the format.
const issueExample = `
accounts:
  - id: "111122223333"            # 12-digit AWS account id
    name: Example Seller
    access_keys:
      - {id: AKIAEXAMPLESELLER001, secret: seller-secret}
  - id: "444455556666"
    name: Example Buyer
    access_keys:
      - id: AKIAEXAMPLEBUYER0001
        secret: buyer-secret
        workload: {id: i-0123456789abcdef0, platform: ec2, region: us-east-1}  # used by MeterUsage/RegisterUsage
products:
  - code: exampleprod1           # ProductCode
    seller: "111122223333"
    type: saas                   # saas | ami | container
    dimensions: [users, gigabytes]
subscriptions:                   # a buyer's agreement for a product
  - account: "444455556666"
    product: exampleprod1
    customer_identifier: cust-example-1            # optional: generated when absent
    license_arn: arn:aws:license-manager::444455556666:license/l-0123456789abcdef  # optional: generated
    status: active               # active | cancelled | expired
registration_tokens:
  - {token: demo-token-1, account: "444455556666", product: exampleprod1}   # optional expires_at
`

func mustParse(t *testing.T, s string) *seed.File {
	t.Helper()
	f, err := seed.Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func TestIssueExample(t *testing.T) {
	f := mustParse(t, issueExample)
	if err := f.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := &seed.File{
		Accounts: []seed.Account{
			{ID: "111122223333", Name: "Example Seller", AccessKeys: []seed.AccessKey{{ID: "AKIAEXAMPLESELLER001", Secret: "seller-secret"}}},
			{ID: "444455556666", Name: "Example Buyer", AccessKeys: []seed.AccessKey{{
				ID: "AKIAEXAMPLEBUYER0001", Secret: "buyer-secret",
				Workload: &seed.Workload{ID: "i-0123456789abcdef0", Platform: "ec2", Region: "us-east-1"},
			}}},
		},
		Products: []seed.Product{{Code: "exampleprod1", Seller: "111122223333", Type: "saas", Dimensions: []string{"users", "gigabytes"}}},
		Subscriptions: []seed.Subscription{{
			Account: "444455556666", Product: "exampleprod1", CustomerIdentifier: "cust-example-1",
			LicenseArn: "arn:aws:license-manager::444455556666:license/l-0123456789abcdef", Status: "active",
		}},
		RegistrationTokens: []seed.RegistrationToken{{Token: "demo-token-1", Account: "444455556666", Product: "exampleprod1"}},
	}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("Parse = %+v\nwant %+v", f, want)
	}
}

func TestDemo(t *testing.T) {
	f := seed.Demo()
	if err := f.Validate(); err != nil {
		t.Fatalf("demo does not validate: %v", err)
	}
	if seed.Demo() == f {
		t.Fatal("Demo returns the same *File twice")
	}
	keys := map[string]seed.AccessKey{}
	keyAccount := map[string]string{}
	for _, a := range f.Accounts {
		for _, k := range a.AccessKeys {
			keys[k.ID] = k
			keyAccount[k.ID] = a.ID
		}
	}
	for id, want := range map[string]struct{ account, secret, platform string }{
		"AKIAEXAMPLESELLER001": {"111122223333", "seller-secret", ""},
		"AKIAEXAMPLEOTHER0001": {"777788889999", "other-secret", ""},
		"AKIAEXAMPLEBUYER0001": {"444455556666", "buyer-secret", ""},
		"AKIAEXAMPLEEC2000001": {"444455556666", "ec2-secret", "ec2"},
		"AKIAEXAMPLEECS000001": {"444455556666", "ecs-secret", "ecs"},
		"AKIAEXAMPLEEKS000001": {"444455556666", "eks-secret", "eks"},
		"AKIAEXAMPLEFARGATE01": {"444455556666", "fargate-secret", "fargate"},
		"AKIAEXAMPLEAGENT0001": {"444455556666", "agent-secret", "agentcore"},
		"AKIAEXAMPLEBUYER0002": {"123456789012", "buyer2-secret", ""},
	} {
		k, ok := keys[id]
		if !ok {
			t.Errorf("demo has no key %s", id)
			continue
		}
		platform := ""
		if k.Workload != nil {
			platform = k.Workload.Platform
		}
		if keyAccount[id] != want.account || k.Secret != want.secret || platform != want.platform {
			t.Errorf("demo key %s: account %s secret %s platform %q; want %+v", id, keyAccount[id], k.Secret, platform, want)
		}
	}
	if w := keys["AKIAEXAMPLEEC2000001"].Workload; w == nil || w.ID != "i-0123456789abcdef0" || w.Region != "us-east-1" {
		t.Errorf("demo ec2 workload = %+v", w)
	}
	if w := keys["AKIAEXAMPLEECS000001"].Workload; w == nil || w.ID != "arn:aws:ecs:us-east-1:444455556666:task/demo/0123456789abcdef" {
		t.Errorf("demo ecs workload = %+v", w)
	}

	r, err := f.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	type sub struct{ account, product string }
	subs := map[sub]seed.Subscription{}
	for _, s := range r.Subscriptions {
		subs[sub{s.Account, s.Product}] = s
	}
	if s := subs[sub{"444455556666", "exampleprod1"}]; s.CustomerIdentifier != "cust-example-1" ||
		s.LicenseArn != "arn:aws:license-manager::444455556666:license/l-0123456789abcdef" || s.Status != "active" {
		t.Errorf("demo buyer's exampleprod1 subscription = %+v", s)
	}
	for _, p := range []string{"exampleami1", "examplecontainer1", "otherprod1"} {
		if s := subs[sub{"444455556666", p}]; s.Status != "active" {
			t.Errorf("demo buyer's %s subscription = %+v", p, s)
		}
	}
	if s := subs[sub{"123456789012", "exampleprod1"}]; s.Status != "cancelled" || s.CustomerIdentifier != "cust-cancelled-1" {
		t.Errorf("demo cancelled subscription = %+v", s)
	}
	tokens := map[string]seed.RegistrationToken{}
	for _, tk := range f.RegistrationTokens {
		tokens[tk.Token] = tk
	}
	if tk := tokens["demo-token-expired"]; tk.ExpiresAt == nil || !tk.ExpiresAt.Equal(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("demo-token-expired = %+v", tk)
	}
	for _, name := range []string{"demo-token-1", "demo-token-cancelled", "demo-token-other"} {
		if _, ok := tokens[name]; !ok {
			t.Errorf("demo has no token %s", name)
		}
	}
}

func TestGeneratedValues(t *testing.T) {
	ci := seed.CustomerIdentifierFor("444455556666", "exampleami1")
	if ci != seed.CustomerIdentifierFor("444455556666", "exampleami1") {
		t.Fatal("CustomerIdentifierFor is not deterministic")
	}
	if !regexp.MustCompile(`^[a-z0-9]{11,}$`).MatchString(ci) || strings.HasPrefix(ci, "cust-") {
		t.Errorf("CustomerIdentifierFor = %q", ci)
	}
	if ci == seed.CustomerIdentifierFor("444455556666", "exampleprod1") || ci == seed.CustomerIdentifierFor("123456789012", "exampleami1") {
		t.Error("CustomerIdentifierFor collides")
	}
	arn := seed.LicenseArnFor("444455556666", "exampleami1")
	if !regexp.MustCompile(`^arn:aws:license-manager::444455556666:license/l-[0-9a-f]{32}$`).MatchString(arn) {
		t.Errorf("LicenseArnFor = %q", arn)
	}
	if arn != seed.LicenseArnFor("444455556666", "exampleami1") || arn == seed.LicenseArnFor("444455556666", "exampleprod1") {
		t.Error("LicenseArnFor is not deterministic or collides")
	}

	f := mustParse(t, `
accounts: [{id: "111122223333"}, {id: "444455556666"}]
products: [{code: p1, seller: "111122223333", type: saas, dimensions: [d]}]
subscriptions: [{account: "444455556666", product: p1}]
`)
	r, err := f.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	s := r.Subscriptions[0]
	if s.CustomerIdentifier != seed.CustomerIdentifierFor("444455556666", "p1") || s.LicenseArn != seed.LicenseArnFor("444455556666", "p1") || s.Status != "active" {
		t.Errorf("resolved subscription = %+v", s)
	}
	if f.Subscriptions[0].LicenseArn != "" {
		t.Error("Resolved changed its receiver")
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top-level field", "accounts: []\nsellers: []\n", []string{"line 2", "sellers"}},
		{"unknown account field", "accounts:\n  - id: \"111122223333\"\n    nmae: x\n", []string{"line 3", "nmae"}},
		{"unknown workload field", "accounts:\n  - id: \"111122223333\"\n    access_keys:\n      - id: AKIAEXAMPLESELLER001\n        secret: s\n        workload: {id: i-1, platform: ec2, region: us-east-1, zone: a}\n", []string{"line 6", "zone"}},
		{"syntax", "accounts: [\n", []string{"line"}},
		{"wrong type", "products:\n  - code: p\n    dimensions: users\n", []string{"line 3"}},
		{"bad expires_at", "registration_tokens:\n  - {token: t, expires_at: tomorrow}\n", []string{"line 2"}},
		{"bad confirmed_at", "sns_subscriptions:\n  - product: p\n    confirmed_at: yesterday\n", []string{"line 3", "confirmed_at"}},
		{"bad fault expires_at", "faults:\n  - {kind: throttling, count: 1, expires_at: later}\n", []string{"line 2", "expires_at"}},
		{"duplicate key", "accounts: []\naccounts: []\n", []string{"line 2"}},
		{"two documents", "accounts: []\n---\nproducts: []\n", []string{"one YAML document"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := seed.Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	for _, s := range []string{"", "# nothing\n", "{}"} {
		f, err := seed.Parse([]byte(s))
		if err != nil || f == nil || f.Validate() != nil {
			t.Errorf("Parse(%q) = %v, %v", s, f, err)
		}
	}
}

func TestExpiresAtForms(t *testing.T) {
	want := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, v := range []string{`2030-05-06T07:08:09Z`, `"2030-05-06T07:08:09Z"`, `2030-05-06T09:08:09+02:00`} {
		f := mustParse(t, "registration_tokens: [{token: t, account: \"444455556666\", product: p, expires_at: "+v+"}]")
		if e := f.RegistrationTokens[0].ExpiresAt; e == nil || !e.Equal(want) {
			t.Errorf("expires_at %s = %v", v, e)
		}
	}
}

func TestLoad(t *testing.T) {
	path := t.TempDir() + "/seed.yaml"
	if _, err := seed.Load(path); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
	if err := writeFile(path, issueExample); err != nil {
		t.Fatal(err)
	}
	f, err := seed.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f, mustParse(t, issueExample)) {
		t.Error("Load differs from Parse")
	}
	if err := writeFile(path, "accounts:\n  - idd: x\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := seed.Load(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Load error = %v; want it to name the file and line", err)
	}
}

// configurationExample is base with what a seller configures besides the
// marketplace: fault rules (one partly spent) and where notifications go
// (one SNS subscription confirmed).
const configurationExample = base + `
faults:
  - {id: slow, operation: MeterUsage, kind: latency, latency: 1m30s, rate: 0.25, expires_at: 2030-01-01T00:00:00Z}
  - {id: throttle, account: "444455556666", product: exampleprod1, kind: throttling, count: 3, remaining: 0}
  - {kind: unprocessed_records, count: 2}
sns_subscriptions:
  - {product: exampleprod1, topic: subscription, protocol: https, endpoint: "https://seller.example.com/sns", confirmed_at: 2026-03-04T05:06:07.089Z}
  - {product: exampleprod1, topic: entitlement, protocol: http, endpoint: "http://127.0.0.1:9000/sns"}
eventbridge_targets:
  - {account: "111122223333", endpoint: "http://127.0.0.1:9000/events"}
`

func ptr[T any](v T) *T { return &v }

func TestMarshalRoundTrip(t *testing.T) {
	for name, f := range map[string]*seed.File{
		"demo":                   seed.Demo(),
		"issue":                  mustParse(t, issueExample),
		"empty":                  {},
		"resolved":               must(seed.Demo().Resolved()),
		"configuration":          mustParse(t, configurationExample),
		"configuration resolved": must(mustParse(t, configurationExample).Resolved()),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := f.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			g, err := seed.Parse(out)
			if err != nil {
				t.Fatalf("Parse(Marshal()): %v\n%s", err, out)
			}
			if !reflect.DeepEqual(f, g) {
				t.Fatalf("round trip differs:\n%s", out)
			}
			if err := g.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
	out, _ := mustParse(t, issueExample).Marshal()
	for _, w := range []string{`id: "111122223333"`, "registration_tokens:", "customer_identifier: cust-example-1", "dimensions: [users, gigabytes]"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("Marshal output lacks %q:\n%s", w, out)
		}
	}
	f := mustParse(t, configurationExample)
	if c := f.SNSSubscriptions[0].ConfirmedAt; c == nil || !c.Equal(time.Date(2026, 3, 4, 5, 6, 7, 89e6, time.UTC)) || f.SNSSubscriptions[1].ConfirmedAt != nil {
		t.Errorf("confirmed_at: %+v", f.SNSSubscriptions)
	}
	if r := f.Faults[1].Remaining; r == nil || *r != 0 || f.Faults[0].Remaining != nil {
		t.Errorf("remaining: %+v", f.Faults)
	}
	// Resolved names the unnamed rule as Apply does, from its definition.
	r := must(f.Resolved())
	if id := r.Faults[2].ID; !strings.HasPrefix(id, "seed-") {
		t.Errorf("derived fault id %q", id)
	}
	g := mustParse(t, configurationExample)
	g.Faults[2].Remaining = ptr[int64](1)
	if id := must(g.Resolved()).Faults[2].ID; id != r.Faults[2].ID {
		t.Errorf("remaining changed the derived fault id: %s, was %s", id, r.Faults[2].ID)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

func must(f *seed.File, err error) *seed.File {
	if err != nil {
		panic(err)
	}
	return f
}

// base is a valid seed that the validation cases break one rule of.
const base = `
accounts:
  - id: "111122223333"
    name: Seller
    access_keys:
      - {id: AKIAEXAMPLESELLER001, secret: seller-secret}
  - id: "444455556666"
    name: Buyer
    access_keys:
      - id: AKIAEXAMPLEBUYER0001
        secret: buyer-secret
        workload: {id: i-0123456789abcdef0, platform: ec2, region: us-east-1}
products:
  - {code: exampleprod1, seller: "111122223333", type: saas, dimensions: [users, gigabytes]}
  - {code: exampleami1, seller: "111122223333", type: ami, dimensions: [hours]}
subscriptions:
  - {account: "444455556666", product: exampleprod1, customer_identifier: cust-1}
  - {account: "444455556666", product: exampleami1}
registration_tokens:
  - {token: tok-1, account: "444455556666", product: exampleprod1}
`

func TestValidate(t *testing.T) {
	if err := mustParse(t, base).Validate(); err != nil {
		t.Fatalf("base does not validate: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(f *seed.File)
		want   []string // substrings of the error, each a separate problem
	}{
		{"account id missing", func(f *seed.File) { f.Accounts[0].ID = "" }, []string{"accounts[0]: id is missing"}},
		{"account id short", func(f *seed.File) { f.Accounts[0].ID = "11112222333" }, []string{`accounts[0] (11112222333): id "11112222333" is not a 12-digit`}},
		{"account id letters", func(f *seed.File) { f.Accounts[0].ID = "11112222333a" }, []string{`accounts[0] (11112222333a): id`}},
		{"account id duplicate", func(f *seed.File) { f.Accounts[1].ID = "111122223333" }, []string{`accounts[1] (111122223333): id "111122223333" is also the id of accounts[0] (111122223333)`}},
		{"key id missing", func(f *seed.File) { f.Accounts[0].AccessKeys[0].ID = "" }, []string{"accounts[0].access_keys[0]: id is missing"}},
		{"key id short", func(f *seed.File) { f.Accounts[0].AccessKeys[0].ID = "AKIASHORT" }, []string{`accounts[0].access_keys[0] (AKIASHORT): id "AKIASHORT" is not an access key id`}},
		{"key id lowercase", func(f *seed.File) { f.Accounts[0].AccessKeys[0].ID = "akiaexampleseller001" }, []string{`accounts[0].access_keys[0] (akiaexampleseller001): id`}},
		{"key id long", func(f *seed.File) { f.Accounts[0].AccessKeys[0].ID = strings.Repeat("A", 129) }, []string{`accounts[0].access_keys[0] (AAAA`}},
		{"key id duplicate", func(f *seed.File) { f.Accounts[1].AccessKeys[0].ID = "AKIAEXAMPLESELLER001" }, []string{`accounts[1].access_keys[0] (AKIAEXAMPLESELLER001): id "AKIAEXAMPLESELLER001" is also the id of accounts[0].access_keys[0]`}},
		{"secret missing", func(f *seed.File) { f.Accounts[0].AccessKeys[0].Secret = "" }, []string{"accounts[0].access_keys[0] (AKIAEXAMPLESELLER001): secret is missing"}},
		{"workload id missing", func(f *seed.File) { f.Accounts[1].AccessKeys[0].Workload.ID = "" }, []string{"accounts[1].access_keys[0] (AKIAEXAMPLEBUYER0001): workload id is missing"}},
		{"workload platform", func(f *seed.File) { f.Accounts[1].AccessKeys[0].Workload.Platform = "lambda" }, []string{`accounts[1].access_keys[0] (AKIAEXAMPLEBUYER0001): workload platform "lambda" is not one of ec2, ecs, eks, fargate, agentcore`}},
		{"workload region", func(f *seed.File) { f.Accounts[1].AccessKeys[0].Workload.Region = "us-east" }, []string{`accounts[1].access_keys[0] (AKIAEXAMPLEBUYER0001): workload region "us-east" is not an AWS region`}},
		{"workload region missing", func(f *seed.File) { f.Accounts[1].AccessKeys[0].Workload.Region = "" }, []string{`workload region ""`}},
		{"expires_at without session_token", func(f *seed.File) {
			e := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			f.Accounts[0].AccessKeys[0].ExpiresAt = &e
		}, []string{"accounts[0].access_keys[0] (AKIAEXAMPLESELLER001): expires_at needs a session_token"}},
		{"credentials_token without workload", func(f *seed.File) { f.Accounts[0].AccessKeys[0].CredentialsToken = "ct" },
			[]string{"accounts[0].access_keys[0] (AKIAEXAMPLESELLER001): credentials_token belongs on a workload's long-term key"}},
		{"credentials_token on temporary key", func(f *seed.File) {
			f.Accounts[1].AccessKeys[0].CredentialsToken, f.Accounts[1].AccessKeys[0].SessionToken = "ct", "st"
		}, []string{"accounts[1].access_keys[0] (AKIAEXAMPLEBUYER0001): credentials_token belongs on a workload's long-term key"}},
		{"product code missing", func(f *seed.File) { f.Products[0].Code = "" }, []string{"products[0]: code is missing"}},
		{"product code chars", func(f *seed.File) { f.Products[0].Code = "bad code" }, []string{`products[0] (bad code): code "bad code" is not a product code`}},
		{"product code long", func(f *seed.File) { f.Products[0].Code = strings.Repeat("p", 256) }, []string{"is not a product code"}},
		{"product code duplicate", func(f *seed.File) { f.Products[1].Code = "exampleprod1" }, []string{`products[1] (exampleprod1): code "exampleprod1" is also the code of products[0] (exampleprod1)`}},
		{"product seller unknown", func(f *seed.File) { f.Products[0].Seller = "999" }, []string{`products[0] (exampleprod1): seller "999" is not an account in the seed`}},
		{"product seller missing", func(f *seed.File) { f.Products[0].Seller = "" }, []string{`products[0] (exampleprod1): seller is missing`}},
		{"product type", func(f *seed.File) { f.Products[0].Type = "saaS" }, []string{`products[0] (exampleprod1): type "saaS" is not one of saas, ami, container`}},
		{"product no dimensions", func(f *seed.File) { f.Products[0].Dimensions = nil }, []string{`products[0] (exampleprod1): dimensions: a product needs at least one`}},
		{"product dimension duplicate", func(f *seed.File) { f.Products[0].Dimensions = []string{"users", "users"} }, []string{`products[0] (exampleprod1): dimension "users" is listed twice`}},
		{"product dimension empty", func(f *seed.File) { f.Products[0].Dimensions = []string{""} }, []string{`products[0] (exampleprod1): dimension names must not be empty`}},
		{"product dimension long", func(f *seed.File) { f.Products[0].Dimensions = []string{strings.Repeat("d", 256)} }, []string{`products[0] (exampleprod1): dimension "ddd`, "longer than 255"}},
		{"subscription account unknown", func(f *seed.File) { f.Subscriptions[0].Account = "999999999999" }, []string{`subscriptions[0] (999999999999/exampleprod1): account "999999999999" is not an account in the seed`}},
		{"subscription account missing", func(f *seed.File) { f.Subscriptions[0].Account = "" }, []string{`subscriptions[0] (/exampleprod1): account is missing`}},
		{"subscription product unknown", func(f *seed.File) { f.Subscriptions[0].Product = "nope" }, []string{`subscriptions[0] (444455556666/nope): product "nope" is not a product in the seed`}},
		{"subscription status", func(f *seed.File) { f.Subscriptions[0].Status = "paused" }, []string{`subscriptions[0] (444455556666/exampleprod1): status "paused" is not one of active, cancelled, expired`}},
		{"subscription license arn", func(f *seed.File) { f.Subscriptions[0].LicenseArn = "license-1" }, []string{`subscriptions[0] (444455556666/exampleprod1): license_arn "license-1" is not a license ARN`}},
		{"subscription customer long", func(f *seed.File) { f.Subscriptions[0].CustomerIdentifier = strings.Repeat("c", 256) }, []string{`subscriptions[0] (444455556666/exampleprod1): customer_identifier "ccc`}},
		{"subscription twice without arn", func(f *seed.File) {
			f.Subscriptions = append(f.Subscriptions, seed.Subscription{Account: "444455556666", Product: "exampleami1", CustomerIdentifier: "other"})
		}, []string{`subscriptions[2] (444455556666/exampleami1): subscribes the same account to the same product as subscriptions[1] (444455556666/exampleami1); give them distinct license_arn values`}},
		{"subscription twice generated customer", func(f *seed.File) {
			f.Subscriptions = append(f.Subscriptions, seed.Subscription{Account: "444455556666", Product: "exampleami1", LicenseArn: "arn:aws:license-manager::444455556666:license/l-2"})
		}, []string{`subscriptions[2] (444455556666/exampleami1): its generated customer_identifier`}},
		{"subscription license arn duplicate", func(f *seed.File) {
			f.Subscriptions[0].LicenseArn = "arn:aws:license-manager::444455556666:license/l-1"
			f.Subscriptions[1].LicenseArn = "arn:aws:license-manager::444455556666:license/l-1"
		}, []string{`subscriptions[1] (444455556666/exampleami1): license_arn "arn:aws:license-manager::444455556666:license/l-1" is also the license ARN of subscriptions[0]`}},
		{"subscription customer duplicate", func(f *seed.File) {
			f.Accounts = append(f.Accounts, seed.Account{ID: "123456789012"})
			f.Subscriptions = append(f.Subscriptions, seed.Subscription{Account: "123456789012", Product: "exampleprod1", CustomerIdentifier: "cust-1"})
		}, []string{`subscriptions[2] (123456789012/exampleprod1): customer_identifier "cust-1" is also the customer identifier of subscriptions[0] (444455556666/exampleprod1) for product "exampleprod1"`}},
		{"token missing", func(f *seed.File) { f.RegistrationTokens[0].Token = "" }, []string{"registration_tokens[0]: token is missing"}},
		{"token duplicate", func(f *seed.File) { f.RegistrationTokens = append(f.RegistrationTokens, f.RegistrationTokens[0]) }, []string{`registration_tokens[1] (tok-1): token "tok-1" is also the token of registration_tokens[0] (tok-1)`}},
		{"token account unknown", func(f *seed.File) { f.RegistrationTokens[0].Account = "000000000000" }, []string{`registration_tokens[0] (tok-1): account "000000000000" is not an account in the seed`}},
		{"token product unknown", func(f *seed.File) { f.RegistrationTokens[0].Product = "nope" }, []string{`registration_tokens[0] (tok-1): product "nope" is not a product in the seed`}},
		{"token without subscription", func(f *seed.File) { f.RegistrationTokens[0].Account = "111122223333" }, []string{`registration_tokens[0] (tok-1): account "111122223333" has no subscription to product "exampleprod1" in the seed`}},
		{"token license arn", func(f *seed.File) {
			f.RegistrationTokens[0].LicenseArn = seed.LicenseArnFor("444455556666", "exampleami1")
		}, []string{`registration_tokens[0] (tok-1): license_arn "arn:aws:license-manager::444455556666:license/l-`, `is not one of account "444455556666"'s subscriptions to product "exampleprod1"`}},
		{"fault rule", func(f *seed.File) {
			f.Faults = []seed.Fault{{Kind: "explode"}, {ID: "has space", Kind: "latency", Latency: "soon", Count: 1}}
		}, []string{`kind "explode" is none of`, "give a rate (0 < rate <= 1) or a count (n >= 1)",
			`faults[1] (has space): latency "soon" is not a Go duration`, `id "has space" must be 1-64 characters`}},
		{"fault remaining above count", func(f *seed.File) {
			f.Faults = []seed.Fault{{ID: "f1", Kind: "throttling", Count: 2, Remaining: ptr[int64](3)}}
		}, []string{"faults[0] (f1): remaining 3 is not within [0, count 2]"}},
		{"fault remaining of a rate rule", func(f *seed.File) {
			f.Faults = []seed.Fault{{ID: "f1", Kind: "throttling", Rate: 0.5, Remaining: ptr[int64](1)}}
		}, []string{"faults[0] (f1): remaining 1 is not within [0, count 0]"}},
		{"too many faults", func(f *seed.File) {
			for i := range mpmeter.MaxFaultRules + 1 {
				f.Faults = append(f.Faults, seed.Fault{ID: fmt.Sprintf("f%d", i), Kind: "throttling", Count: 1})
			}
		}, []string{"faults: 101 rules, but at most 100 may exist at once"}},
		{"sns subscription", func(f *seed.File) {
			f.SNSSubscriptions = []seed.SNSSubscription{
				{Product: "nope", Topic: "subscription", Protocol: "http", Endpoint: "http://127.0.0.1:9/sns"},
				{Product: "exampleprod1", Topic: "billing", Protocol: "email", Endpoint: "mailto:x@example.com"},
				{Product: "exampleprod1", Topic: "entitlement", Protocol: "https", Endpoint: "http://127.0.0.1:9/sns"},
			}
		}, []string{`sns_subscriptions[0] (http://127.0.0.1:9/sns): product "nope" is not a product in the seed`,
			`sns_subscriptions[1] (mailto:x@example.com): topic "billing" is neither subscription nor entitlement`,
			`protocol "email" is neither http nor https`, `"mailto:x@example.com" is not an absolute http:// or https:// URL`,
			`sns_subscriptions[2] (http://127.0.0.1:9/sns): endpoint "http://127.0.0.1:9/sns" is not an https:// URL`}},
		{"eventbridge target", func(f *seed.File) {
			f.EventBridgeTargets = []seed.EventBridgeTarget{{Account: "999999999999", Endpoint: "127.0.0.1:9/events"}}
		}, []string{`eventbridge_targets[0] (127.0.0.1:9/events): account "999999999999" is not an account in the seed`,
			`"127.0.0.1:9/events" is not an absolute http:// or https:// URL`}},
		{"several problems", func(f *seed.File) {
			f.Accounts[0].ID = "1"
			f.Products[1].Type = "x"
			f.RegistrationTokens[0].Token = ""
		}, []string{`accounts[0] (1): id "1"`, `products[0] (exampleprod1): seller "111122223333" is not an account`, `products[1] (exampleami1): type "x"`, `registration_tokens[0]: token is missing`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustParse(t, base)
			tc.change(f)
			err := f.Validate()
			if err == nil {
				t.Fatal("Validate succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if _, ok := err.(interface{ Unwrap() []error }); !ok {
				t.Errorf("error %T is not joined", err)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(f *seed.File)
	}{
		{"gov region", func(f *seed.File) { f.Accounts[1].AccessKeys[0].Workload.Region = "us-gov-west-1" }},
		{"every platform", func(f *seed.File) {
			for i, p := range []string{"ecs", "eks", "fargate", "agentcore"} {
				f.Accounts[1].AccessKeys = append(f.Accounts[1].AccessKeys, seed.AccessKey{
					ID: "ASIAEXAMPLEKEY000" + string(rune('0'+i)), Secret: "s",
					Workload: &seed.Workload{ID: "w", Platform: p, Region: "eu-west-1"},
				})
			}
		}},
		{"temporary keys", func(f *seed.File) {
			e := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			f.Accounts[0].AccessKeys[0].SessionToken = "st"
			f.Accounts[0].AccessKeys[0].ExpiresAt = &e
			f.Accounts[1].AccessKeys[0].CredentialsToken = "ct"
		}},
		{"statuses", func(f *seed.File) { f.Subscriptions[0].Status = "cancelled"; f.Subscriptions[1].Status = "expired" }},
		{"product code chars", func(f *seed.File) {
			f.Products[0].Code = "a-Z/0=:_.@"
			f.Subscriptions[0].Product = "a-Z/0=:_.@"
			f.RegistrationTokens[0].Product = "a-Z/0=:_.@"
		}},
		{"two subscriptions with distinct arns", func(f *seed.File) {
			arn := "arn:aws:license-manager::444455556666:license/l-second"
			f.Subscriptions = append(f.Subscriptions, seed.Subscription{Account: "444455556666", Product: "exampleprod1", LicenseArn: arn, CustomerIdentifier: "cust-2"})
			f.RegistrationTokens = append(f.RegistrationTokens, seed.RegistrationToken{Token: "tok-2", Account: "444455556666", Product: "exampleprod1", LicenseArn: arn})
		}},
		{"token names generated arn", func(f *seed.File) {
			f.RegistrationTokens[0].Product = "exampleami1"
			f.RegistrationTokens[0].LicenseArn = seed.LicenseArnFor("444455556666", "exampleami1")
		}},
		{"same customer id in other products", func(f *seed.File) { f.Subscriptions[1].CustomerIdentifier = "cust-1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustParse(t, base)
			tc.change(f)
			if err := f.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Dimensions come as names or as mappings with details; both read back
// from Marshal, the short form staying short.
func TestDimensionForms(t *testing.T) {
	f := mustParse(t, `
accounts: [{id: "111122223333"}]
products:
  - code: p1
    seller: "111122223333"
    type: saas
    dimensions:
      - users
      - {name: gigabytes, description: Stored data, unit: GB, price: "0.05"}
  - code: p2
    seller: "111122223333"
    type: ami
    dimensions: [hours]
`)
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	p := f.Products[0]
	if !reflect.DeepEqual(p.Dimensions, []string{"users", "gigabytes"}) ||
		!reflect.DeepEqual(p.DimensionDetails, map[string]seed.DimensionDetails{"gigabytes": {Description: "Stored data", Unit: "GB", Price: "0.05"}}) {
		t.Fatalf("parsed %+v", p)
	}
	out, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "dimensions: [users, {name: gigabytes, description: Stored data, unit: GB, price: \"0.05\"}]") ||
		!strings.Contains(string(out), "dimensions: [hours]") {
		t.Errorf("Marshal:\n%s", out)
	}
	back := mustParse(t, string(out))
	if !reflect.DeepEqual(back, f) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, f)
	}

	for _, bad := range []struct{ yaml, want string }{
		{`{name: users, colour: red}`, "field colour not found"},
		{`{unit: GB}`, "needs a name"},
	} {
		_, err := seed.Parse([]byte("products: [{code: p, seller: \"111122223333\", type: saas, dimensions: [" + bad.yaml + "]}]"))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("dimension %s: error %v, want %q", bad.yaml, err, bad.want)
		}
	}
	if _, err := seed.Parse([]byte(`products: [{code: p, sellr: "1"}]`)); err == nil || !strings.Contains(err.Error(), "field sellr not found") {
		t.Errorf("unknown product field: %v", err)
	}
}

// The admin fields' rules, as Validate applies them.
func TestValidateAdminFields(t *testing.T) {
	base := `
accounts: [{id: "111122223333"}, {id: "444455556666"}]
products: [{code: p1, seller: "111122223333", type: saas, dimensions: [users]}]
subscriptions: [{account: "444455556666", product: p1}]
`
	for _, tc := range []struct {
		name   string
		change func(f *seed.File)
		want   string
	}{
		{"price not a number", func(f *seed.File) {
			f.Products[0].DimensionDetails = map[string]seed.DimensionDetails{"users": {Price: "1e3"}}
		}, `products[0] (p1): dimension "users": price "1e3" is not a decimal number`},
		{"price negative", func(f *seed.File) {
			f.Products[0].DimensionDetails = map[string]seed.DimensionDetails{"users": {Price: "-1"}}
		}, `price "-1"`},
		{"unit long", func(f *seed.File) {
			f.Products[0].DimensionDetails = map[string]seed.DimensionDetails{"users": {Unit: strings.Repeat("u", 65)}}
		}, `unit is longer than 64`},
		{"details of no dimension", func(f *seed.File) {
			f.Products[0].DimensionDetails = map[string]seed.DimensionDetails{"seats": {Unit: "Seats"}}
		}, `dimension "seats" has details but is not one of the dimensions`},
		{"agreement id", func(f *seed.File) { f.Subscriptions[0].AgreementID = "agreement-1" }, `agreement_id "agreement-1" is not an agreement id`},
		{"agreement id twice", func(f *seed.File) {
			f.Subscriptions[0].AgreementID = "agmt-1"
			f.Subscriptions = append(f.Subscriptions, seed.Subscription{Account: "111122223333", Product: "p1", AgreementID: "agmt-1"})
		}, `subscriptions[1] (111122223333/p1): agreement_id "agmt-1" is also the agreement id of subscriptions[0]`},
		{"offer id", func(f *seed.File) { f.Subscriptions[0].OfferID = "o-1" }, `offer_id "o-1" is not an offer id`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustParse(t, base)
			tc.change(f)
			err := f.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v; want %q", err, tc.want)
			}
		})
	}
	f := mustParse(t, base)
	f.Subscriptions[0].AgreementID, f.Subscriptions[0].OfferID, f.Subscriptions[0].FreeTrial = "agmt-abc123", "offer-xyz789", true
	f.Products[0].DimensionDetails = map[string]seed.DimensionDetails{"users": {Price: "0.000000000001", Unit: "Users"}}
	r, err := f.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Subscriptions[0]; s.AgreementID != "agmt-abc123" || s.OfferID != "offer-xyz789" || !s.FreeTrial {
		t.Errorf("resolved %+v", s)
	}
	if g := mustParse(t, base); true {
		r, _ := g.Resolved()
		if want := mpmeter.AgreementIDFor(r.Subscriptions[0].LicenseArn); r.Subscriptions[0].AgreementID != want {
			t.Errorf("derived agreement id %q, want %q", r.Subscriptions[0].AgreementID, want)
		}
	}
}
