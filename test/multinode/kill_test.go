package multinode

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	mm "github.com/aws/aws-sdk-go/service/marketplacemetering"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/sqlstore"
)

// A server killed with SIGKILL while clients meter loses nothing it
// answered: every MeteringRecordId of a 200 is in the database when it is
// opened again.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kill.db")
	nd, err := startNode(t, db)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked []string
		next  atomic.Int64
	)
	start := time.Now().Add(-5 * time.Hour).Truncate(time.Hour)
	var wg sync.WaitGroup
	// AgentCore runtimes' MeterUsage calls are never deduplicated: every
	// answer is a new record.
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client(t, nd.URL, mpmetertest.AgentKey, mpmetertest.AgentSecret)
			for {
				out, err := c.MeterUsage(&mm.MeterUsageInput{ProductCode: aws.String(mpmetertest.ContainerProduct), UsageDimension: aws.String("requests"),
					UsageQuantity: aws.Int64(next.Add(1)), Timestamp: aws.Time(time.Now())})
				if err != nil {
					return
				}
				mu.Lock()
				acked = append(acked, *out.MeteringRecordId)
				mu.Unlock()
			}
		}()
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client(t, nd.URL, mpmetertest.SellerKey, mpmetertest.SellerSecret)
			for {
				k := next.Add(1)
				// Distinct slots: two dimensions × five hours, then the
				// same slots again with the quantity that makes them
				// identical retries (Success, same id) — both kinds of
				// answer must be backed by a stored record.
				dim := []string{"users", "gigabytes"}[k%2]
				ts := start.Add(time.Duration(k/2%5) * time.Hour)
				out, err := c.BatchMeterUsage(&mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []*mm.UsageRecord{{
					CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String(dim), Quantity: aws.Int64(1), Timestamp: aws.Time(ts)}}})
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				for _, r := range out.Results {
					if r.MeteringRecordId != nil {
						acked = append(acked, *r.MeteringRecordId)
					}
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := nd.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	nd.cmd.Wait()

	st, err := sqlstore.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.Usage(context.Background(), mpmeter.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, r := range recs {
		stored[r.MeteringRecordID] = true
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no request succeeded before the kill")
	}
	for _, id := range acked {
		if !stored[id] {
			t.Fatalf("MeteringRecordId %s was answered but is not stored after kill -9", id)
		}
	}
	t.Logf("%d acknowledged answers, %d stored records, all present after kill -9", len(acked), len(recs))
}
