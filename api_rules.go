package mpmeter

// Cross-field rules: constraints of the API reference that the service model
// cannot express. They answer ValidationException like the model's checks,
// with the same wire paths, so the service never builds a wire path and never
// meets a request that breaks them. Each input reports its first broken rule
// only, as AWS does for these.

// checkCrossField applies BatchMeterUsage's rules:
//   - without ProductCode (optional in the newer model) the product comes from
//     the records' licenses, so every record must carry a LicenseArn, and a
//     request without records has no product at all;
//   - each record names its customer by exactly one of CustomerIdentifier and
//     CustomerAWSAccountId.
func (v *BatchMeterUsageInput) checkCrossField(e *validationErrors) {
	productCode := &fieldPath{name: "productCode"}
	records := &fieldPath{name: "usageRecords"}
	if v.ProductCode == nil || *v.ProductCode == "" {
		for i := range v.UsageRecords {
			if r := &v.UsageRecords[i]; r.LicenseArn == nil || *r.LicenseArn == "" {
				license := &fieldPath{parent: &fieldPath{parent: records, index: i + 1}, name: "licenseArn"}
				e.add(productCode, "null", "ProductCode is required when a usage record has no LicenseArn ("+license.String()+")")
				return
			}
		}
		if len(v.UsageRecords) == 0 {
			e.add(productCode, "null", "ProductCode is required when no usage record carries a LicenseArn")
			return
		}
	}
	const exactlyOne = "Exactly one of CustomerIdentifier and CustomerAWSAccountId must be provided"
	for i := range v.UsageRecords {
		r := &v.UsageRecords[i]
		record := &fieldPath{parent: records, index: i + 1}
		hasID := r.CustomerIdentifier != nil && *r.CustomerIdentifier != ""
		hasAccount := r.CustomerAWSAccountId != nil && *r.CustomerAWSAccountId != ""
		switch {
		case !hasID && !hasAccount:
			e.add(&fieldPath{parent: record, name: "customerIdentifier"}, "null", exactlyOne)
			return
		case hasID && hasAccount:
			e.add(&fieldPath{parent: record, name: "customerAWSAccountId"}, quoteValue(*r.CustomerAWSAccountId), exactlyOne)
			return
		}
	}
}
