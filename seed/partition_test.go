package seed_test

import (
	"strings"
	"testing"

	"github.com/mpmeter/mpmeter/seed"
)

// Generated license ARNs are in the buyer account's partition: the one its
// workloads' region is in, or the one the seed names.
func TestLicenseArnPartition(t *testing.T) {
	f := mustParse(t, `
accounts:
  - id: "111122223333"
  - id: "444455556666"
    access_keys:
      - {id: AKIAEXAMPLEEUSC00001, secret: s, workload: {id: i-1, platform: ec2, region: eusc-de-east-1}}
  - id: "777788889999"
    partition: aws-eusc
  - id: "123456789012"
    access_keys:
      - {id: AKIAEXAMPLEISOB00001, secret: s, workload: {id: i-2, platform: ec2, region: us-isob-east-1}}
  - id: "210987654321"
products: [{code: p1, seller: "111122223333", type: saas, dimensions: [d]}]
subscriptions:
  - {account: "444455556666", product: p1}
  - {account: "777788889999", product: p1}
  - {account: "123456789012", product: p1}
  - {account: "210987654321", product: p1}
`)
	r, err := f.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{
		seed.LicenseArnInPartition("aws-eusc", "444455556666", "p1"),
		seed.LicenseArnInPartition("aws-eusc", "777788889999", "p1"),
		seed.LicenseArnInPartition("aws-iso-b", "123456789012", "p1"),
		seed.LicenseArnFor("210987654321", "p1"),
	} {
		if got := r.Subscriptions[i].LicenseArn; got != want {
			t.Errorf("subscription %d: license ARN %q, want %q", i, got, want)
		}
	}
	if !strings.HasPrefix(r.Subscriptions[0].LicenseArn, "arn:aws-eusc:license-manager::444455556666:license/l-") {
		t.Errorf("eusc-de-east-1 license ARN %q", r.Subscriptions[0].LicenseArn)
	}
	if !strings.HasPrefix(r.Subscriptions[3].LicenseArn, "arn:aws:license-manager::") {
		t.Errorf("an account without workloads: %q", r.Subscriptions[3].LicenseArn)
	}
}

func TestPartitionErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown partition": {`
accounts: [{id: "444455556666", partition: aws-moon}]
`, `partition "aws-moon" is not an AWS partition`},
		"workloads in two partitions": {`
accounts:
  - id: "444455556666"
    access_keys:
      - {id: AKIAEXAMPLEBUYER0001, secret: s, workload: {id: i-1, platform: ec2, region: us-east-1}}
      - {id: AKIAEXAMPLEBUYER0002, secret: s, workload: {id: i-2, platform: ec2, region: eusc-de-east-1}}
`, `workload region "eusc-de-east-1" is in partition aws-eusc, account 444455556666 in aws`},
		"workload outside the named partition": {`
accounts:
  - id: "444455556666"
    partition: aws-cn
    access_keys:
      - {id: AKIAEXAMPLEBUYER0001, secret: s, workload: {id: i-1, platform: ec2, region: us-east-1}}
`, `workload region "us-east-1" is in partition aws, account 444455556666 in aws-cn`},
		"license ARN of another partition": {`
accounts:
  - id: "111122223333"
  - id: "444455556666"
    access_keys:
      - {id: AKIAEXAMPLEBUYER0001, secret: s, workload: {id: i-1, platform: ec2, region: eusc-de-east-1}}
products: [{code: p1, seller: "111122223333", type: saas, dimensions: [d]}]
subscriptions: [{account: "444455556666", product: p1, license_arn: "arn:aws:license-manager::444455556666:license/l-1"}]
`, `license_arn "arn:aws:license-manager::444455556666:license/l-1" is in partition aws, account 444455556666 in aws-eusc`},
	} {
		err := mustParse(t, tc.yaml).Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
}
