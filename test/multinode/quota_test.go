package multinode

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	mm "github.com/aws/aws-sdk-go/service/marketplacemetering"

	"github.com/mpmeter/mpmeter/mpmetertest"
)

// --quotas aws on three nodes of one PostgreSQL database: the seller's
// BatchMeterUsage calls spread over all three are granted as one bucket
// would grant them (10 a second, burst 10), not three times that, and not
// a third of it. The stated bound: accepted <= burst + rate * elapsed (the
// shared bucket is exact; +1 for a take in flight at the end), and
// accepted >= 0.8 * rate * elapsed (the fleet gets the whole rate).
func TestQuotasSharedAcrossNodes(t *testing.T) {
	dbURL := freshDatabase(t)
	nodes := startNodes(t, 3, dbURL.String(), "--quotas", "aws")
	const perNode = 3
	var accepted, throttled atomic.Int64
	var other atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for _, nd := range nodes {
		for range perNode {
			wg.Add(1)
			go func(endpoint string) {
				defer wg.Done()
				c := client(t, endpoint, mpmetertest.SellerKey, mpmetertest.SellerSecret)
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, err := c.BatchMeterUsage(&mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []*mm.UsageRecord{}})
					switch code := errCode(err); code {
					case "":
						accepted.Add(1)
					case "ThrottlingException":
						throttled.Add(1)
					default:
						other.Store(code)
					}
				}
			}(nd.URL)
		}
	}
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if code := other.Load(); code != nil {
		t.Fatalf("unexpected error %v", code)
	}
	got, high, low := float64(accepted.Load()), 10+10*elapsed+1, 0.8*10*elapsed
	t.Logf("%d accepted, %d throttled in %.2fs across 3 nodes (bound %.0f..%.0f)", accepted.Load(), throttled.Load(), elapsed, low, high)
	if got > high || got < low {
		t.Fatalf("%v accepted in %.2fs, want within [%.0f, %.0f]", got, elapsed, low, high)
	}
	if throttled.Load() == 0 {
		t.Fatal("nothing throttled")
	}
}
