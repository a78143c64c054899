package mpmeter

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Where the Metering Service is offered. Two sources, because neither alone
// is complete:
//
//   - The API reference (April 2024, spec/api-reference.md) lists regions
//     per operation, for the aws, aws-cn and aws-us-gov partitions.
//   - The SDKs' endpoint data (botocore 1.43's data/endpoints.json, service
//     "metering.marketplace") lists the service per partition: the same 28
//     commercial regions, cn-northwest-1, us-gov-east-1 and us-gov-west-1,
//     and also us-isob-east-1 (aws-iso-b) and eusc-de-east-1 (aws-eusc, the
//     AWS European Sovereign Cloud), which the API reference predates.
//
// In the partitions the API reference covers its per-operation lists hold;
// in the regions only the endpoint data knows, it lists the service, not
// operations, so every operation is offered there (the SaaS operations are
// what sellers in eusc-de-east-1 call). Regions that appear later are added
// by the operator (Regions.Add; mpmeter serve --regions).
const (
	commercialRegions = "eu-north-1 me-south-1 ap-south-1 eu-west-3 ap-southeast-3 us-east-2 af-south-1 eu-west-1 me-central-1 eu-central-1 sa-east-1 ap-east-1 ap-south-2 us-east-1 ap-northeast-2 ap-northeast-3 eu-west-2 ap-southeast-4 eu-south-1 ap-northeast-1 us-west-2 us-west-1 ap-southeast-1 ap-southeast-2 il-central-1 ca-central-1 eu-south-2 eu-central-2"
	chinaRegions      = "cn-northwest-1"
	govCloudRegions   = "us-gov-east-1 us-gov-west-1"
	// Only in the endpoint data: every operation.
	endpointDataOnlyRegions = "eusc-de-east-1 us-isob-east-1"
	// RegisterUsage is offered in fewer regions than the others.
	registerUsageRegions = "eu-north-1 ap-south-1 eu-west-3 us-east-2 eu-west-1 eu-central-1 sa-east-1 ap-east-1 us-east-1 ap-northeast-2 eu-west-2 ap-northeast-1 us-west-2 us-west-1 ap-southeast-1 ap-southeast-2 ca-central-1"
)

// operations are the Metering API's operations: a bare region in
// Regions.Add offers them all.
var operations = []string{OpBatchMeterUsage, OpMeterUsage, OpRegisterUsage, OpResolveCustomer}

// entitlementRegions is where the Entitlement Service is: us-east-1 only
// (its one endpoint is entitlement.marketplace.us-east-1.amazonaws.com; the
// SDKs' endpoint data lists no other region). On AWS a client configured for
// another region resolves an endpoint host that does not exist and fails
// before sending; mpmeter, reached at an explicit endpoint URL, answers such
// a call DisabledApiException as it does for the Metering operations.
const entitlementRegions = "us-east-1"

// agreementRegions is where the Agreement Service is: the SDKs' endpoint
// data (botocore 1.43's endpoints.json, service "agreement-marketplace")
// lists us-east-1 (agreement-marketplace.us-east-1.api.aws) in the aws
// partition, and one region in each of aws-iso, aws-iso-b, aws-iso-f and
// aws-eusc.
const agreementRegions = "us-east-1 us-iso-east-1 us-isob-east-1 us-isof-south-1 eusc-de-east-1"

// agreementOperations are the Agreement Service's operations mpmeter serves.
var agreementOperations = []string{OpDescribeAgreement, OpGetAgreementTerms, OpSearchAgreements}

// namedOperations are the operations Regions.Add accepts by name
// (Operation=region): the Metering API's, GetEntitlements and the
// Agreement Service's.
var namedOperations = append([]string{OpBatchMeterUsage, OpMeterUsage, OpRegisterUsage, OpResolveCustomer, OpGetEntitlements}, agreementOperations...)

// Regions says in which regions each operation is offered: an operation
// called with a credential scope outside its regions answers
// DisabledApiException, as AWS does. Build one with DefaultRegions and
// extend it with Add before serving; it is read-only afterwards and safe for
// concurrent reads.
type Regions struct {
	byOp map[string]map[string]bool
}

// DefaultRegions returns the regions AWS offers each operation in (see the
// sources above).
func DefaultRegions() *Regions {
	r := &Regions{byOp: map[string]map[string]bool{}}
	add := func(op string, lists ...string) {
		for _, l := range lists {
			for _, region := range strings.Fields(l) {
				r.add(op, region)
			}
		}
	}
	add(OpBatchMeterUsage, commercialRegions, chinaRegions, endpointDataOnlyRegions)
	add(OpResolveCustomer, commercialRegions, chinaRegions, endpointDataOnlyRegions)
	add(OpMeterUsage, commercialRegions, govCloudRegions, endpointDataOnlyRegions)
	add(OpRegisterUsage, registerUsageRegions, endpointDataOnlyRegions)
	add(OpGetEntitlements, entitlementRegions)
	for _, op := range agreementOperations {
		add(op, agreementRegions)
	}
	return r
}

func (r *Regions) add(op, region string) {
	if r.byOp[op] == nil {
		r.byOp[op] = map[string]bool{}
	}
	r.byOp[op][region] = true
}

// regionNameRe is the shape of a region name: the union of the endpoint
// data's per-partition regionRegex values (us-east-1, us-gov-west-1,
// us-isob-east-1, eusc-de-east-1, ...).
var regionNameRe = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]+$`)

// ValidRegionName reports whether region is shaped like an AWS region name.
func ValidRegionName(region string) bool { return regionNameRe.MatchString(region) }

// Add offers more regions. Each entry of spec (entries separated by commas
// or spaces) is either a region, offered to every Metering operation, or
// Operation=region, offered to that operation only (GetEntitlements too):
//
//	eu-future-1,MeterUsage=us-isof-south-1
func (r *Regions) Add(spec string) error {
	for _, entry := range strings.FieldsFunc(spec, func(c rune) bool { return c == ',' || c == ' ' }) {
		ops, region := operations, entry
		if op, reg, ok := strings.Cut(entry, "="); ok {
			if !slices.Contains(namedOperations, op) {
				return fmt.Errorf("regions: %q: %q is not an operation (%s)", entry, op, strings.Join(namedOperations, ", "))
			}
			ops, region = []string{op}, reg
		}
		if !ValidRegionName(region) {
			return fmt.Errorf("regions: %q is not a region name such as eu-central-1", region)
		}
		for _, op := range ops {
			r.add(op, region)
		}
	}
	return nil
}

// Offers reports whether op can be called in region.
func (r *Regions) Offers(op, region string) bool { return r.byOp[op][region] }

// partition is an AWS partition: a group of regions whose ARNs start
// "arn:<name>:".
type partition struct {
	name        string
	regionRegex *regexp.Regexp
}

// partitions are the SDKs' partitions (botocore 1.43's data/partitions.json:
// id and regionRegex), most specific first.
var partitions = []partition{
	{"aws-us-gov", regexp.MustCompile(`^us-gov-\w+-\d+$`)},
	{"aws-iso", regexp.MustCompile(`^us-iso-\w+-\d+$`)},
	{"aws-iso-b", regexp.MustCompile(`^us-isob-\w+-\d+$`)},
	{"aws-iso-e", regexp.MustCompile(`^eu-isoe-\w+-\d+$`)},
	{"aws-iso-f", regexp.MustCompile(`^us-isof-\w+-\d+$`)},
	{"aws-cn", regexp.MustCompile(`^cn-\w+-\d+$`)},
	{"aws-eusc", regexp.MustCompile(`^eusc-(de)-\w+-\d+$`)},
	{"aws", regexp.MustCompile(`^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$`)},
}

// PartitionOf returns the name of region's partition ("aws", "aws-cn",
// "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f",
// "aws-eusc"). A region that fits no partition's pattern is in "aws", as the
// SDKs' endpoint resolution assumes.
func PartitionOf(region string) string {
	for _, p := range partitions {
		if p.regionRegex.MatchString(region) {
			return p.name
		}
	}
	return "aws"
}

// IsPartition reports whether name is a known partition's name.
func IsPartition(name string) bool {
	return slices.ContainsFunc(partitions, func(p partition) bool { return p.name == name })
}

// ARNPartition returns the partition an ARN names ("aws" for
// "arn:aws:license-manager::..."), or "" when arn is not an ARN.
func ARNPartition(arn string) string {
	parts := strings.SplitN(arn, ":", 3)
	if len(parts) < 3 || parts[0] != "arn" {
		return ""
	}
	return parts[1]
}
