// Package usage is an example of a seller's metering code, tested against
// mpmeter in usage_test.go: an hourly job that reports each customer's
// usage with BatchMeterUsage and retries what AWS left unprocessed.
package usage

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"
)

// Reporter sends usage for one SaaS product.
type Reporter struct {
	Client      *marketplacemetering.Client
	ProductCode string
}

// Report meters quantity of dimension for each customer at hour and
// returns the MeteringRecordIds by customer. A record the service refuses
// (say, a customer whose subscription ended) is an error naming it.
func (r Reporter) Report(ctx context.Context, hour time.Time, dimension string, quantities map[string]int32) (map[string]string, error) {
	var records []types.UsageRecord
	for customer, q := range quantities {
		records = append(records, types.UsageRecord{
			CustomerIdentifier: aws.String(customer),
			Dimension:          aws.String(dimension),
			Quantity:           aws.Int32(q),
			Timestamp:          aws.Time(hour),
		})
	}
	ids := map[string]string{}
	for len(records) > 0 {
		n := min(len(records), 25) // BatchMeterUsage takes up to 25 records
		out, err := r.Client.BatchMeterUsage(ctx, &marketplacemetering.BatchMeterUsageInput{
			ProductCode: aws.String(r.ProductCode), UsageRecords: records[:n],
		})
		if err != nil {
			return ids, err
		}
		for _, res := range out.Results {
			customer := aws.ToString(res.UsageRecord.CustomerIdentifier)
			if res.Status != types.UsageRecordResultStatusSuccess {
				return ids, fmt.Errorf("usage of %s: %s", customer, res.Status)
			}
			ids[customer] = aws.ToString(res.MeteringRecordId)
		}
		// Unprocessed records are sent again.
		records = append(records[n:], out.UnprocessedRecords...)
	}
	return ids, nil
}
