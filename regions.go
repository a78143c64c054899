package mpmeter

import "strings"

// Region lists from the API reference: an operation called through an
// endpoint outside its list answers DisabledApiException, as AWS does.
const (
	commercialRegions = "eu-north-1 me-south-1 ap-south-1 eu-west-3 ap-southeast-3 us-east-2 af-south-1 eu-west-1 me-central-1 eu-central-1 sa-east-1 ap-east-1 ap-south-2 us-east-1 ap-northeast-2 ap-northeast-3 eu-west-2 ap-southeast-4 eu-south-1 ap-northeast-1 us-west-2 us-west-1 ap-southeast-1 ap-southeast-2 il-central-1 ca-central-1 eu-south-2 eu-central-2"
	chinaRegions      = "cn-northwest-1"
	govCloudRegions   = "us-gov-east-1 us-gov-west-1"
	// RegisterUsage is offered in fewer regions than the others.
	registerUsageRegions = "eu-north-1 ap-south-1 eu-west-3 us-east-2 eu-west-1 eu-central-1 sa-east-1 ap-east-1 us-east-1 ap-northeast-2 eu-west-2 ap-northeast-1 us-west-2 us-west-1 ap-southeast-1 ap-southeast-2 ca-central-1"
)

// regionList returns op's regions as one space-separated string.
func regionList(op string) string {
	switch op {
	case OpBatchMeterUsage, OpResolveCustomer:
		return commercialRegions + " " + chinaRegions
	case OpMeterUsage:
		return commercialRegions + " " + govCloudRegions
	case OpRegisterUsage:
		return registerUsageRegions
	}
	return ""
}

// OperationRegions returns the regions where op is available.
func OperationRegions(op string) []string { return strings.Fields(regionList(op)) }

// OperationAvailableIn reports whether op can be called in region.
func OperationAvailableIn(op, region string) bool {
	if region == "" || strings.ContainsRune(region, ' ') {
		return false
	}
	return strings.Contains(" "+regionList(op)+" ", " "+region+" ")
}
