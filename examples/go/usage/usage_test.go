package usage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/examples/go/usage"
	"github.com/mpmeter/mpmeter/mpmetertest"
)

func TestReportMetersEachCustomer(t *testing.T) {
	srv := mpmetertest.New(t) // the demo marketplace (mpmeter seed demo)
	r := usage.Reporter{
		Client:      marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret)),
		ProductCode: mpmetertest.SaaSProduct,
	}
	hour := srv.Clock.Now().Truncate(time.Hour)
	ids, err := r.Report(t.Context(), hour, "users", map[string]int32{mpmetertest.Customer: 12})
	if err != nil || ids[mpmetertest.Customer] == "" {
		t.Fatalf("Report: %v %v", ids, err)
	}
	// The same hour again: the service deduplicates, the same record id.
	again, err := r.Report(t.Context(), hour, "users", map[string]int32{mpmetertest.Customer: 12})
	if err != nil || again[mpmetertest.Customer] != ids[mpmetertest.Customer] {
		t.Fatalf("a retry was metered anew: %v then %v (%v)", ids, again, err)
	}
	// What the seller would see billed: one record of 12 users.
	totals, err := srv.Store.UsageTotals(t.Context(), mpmeter.UsageFilter{ProductCode: mpmetertest.SaaSProduct})
	if err != nil || len(totals) != 1 || totals[0].Quantity != 12 || totals[0].Records != 1 {
		t.Fatalf("stored usage %+v (%v)", totals, err)
	}
}

func TestReportRefusesAnUnsubscribedCustomer(t *testing.T) {
	srv := mpmetertest.New(t)
	r := usage.Reporter{
		Client:      marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret)),
		ProductCode: mpmetertest.SaaSProduct,
	}
	_, err := r.Report(t.Context(), srv.Clock.Now(), "users", map[string]int32{mpmetertest.CancelledCustomer: 1})
	if err == nil || err.Error() != "usage of "+mpmetertest.CancelledCustomer+": "+string(types.UsageRecordResultStatusCustomerNotSubscribed) {
		t.Fatalf("got %v, want CustomerNotSubscribed", err)
	}
	// An hour too old for the service is the SDK's error, TimestampOutOfBoundsException.
	_, err = r.Report(t.Context(), srv.Clock.Now().Add(-7*time.Hour), "users", map[string]int32{mpmetertest.Customer: 1})
	var tooOld *types.TimestampOutOfBoundsException
	if !errors.As(err, &tooOld) {
		t.Fatalf("a 7-hour-old record: %v", err)
	}
}
