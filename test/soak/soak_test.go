package soak

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	mm "github.com/aws/aws-sdk-go/service/marketplacemetering"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/sqlstore"
)

// soakCustomers is how many buyers the soak's seed subscribes: ten distinct
// records each (two dimensions, five hours).
const soakCustomers = 2000

// soakSeed writes the demo seller and product with soakCustomers buyers.
func soakSeed(t *testing.T) string {
	var b strings.Builder
	b.WriteString("accounts:\n  - id: \"111122223333\"\n    name: Seller\n    access_keys:\n      - {id: " + sellerKey + ", secret: " + sellerSecret + "}\n")
	b.WriteString("  - id: \"444455556666\"\n    name: Buyer\n    access_keys:\n      - id: " + ec2Key + "\n        secret: " + ec2Secret + "\n        workload: {id: i-0123456789abcdef0, platform: ec2, region: us-east-1}\n")
	for i := 0; i < soakCustomers; i++ {
		fmt.Fprintf(&b, "  - {id: \"%012d\", name: Buyer %d}\n", 500000000000+i, i)
	}
	b.WriteString("products:\n  - {code: exampleprod1, seller: \"111122223333\", type: saas, dimensions: [users, gigabytes]}\nsubscriptions:\n")
	for i := 0; i < soakCustomers; i++ {
		fmt.Fprintf(&b, "  - {account: \"%012d\", product: exampleprod1, customer_identifier: cust-soak-%d}\n", 500000000000+i, i)
	}
	path := filepath.Join(t.TempDir(), "soak-seed.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Stated bounds of the soak: the well-behaved client's p99 (its SDK's
// retries included) and the server's peak RSS.
const (
	soakP99    = 3 * time.Second
	soakRSSMB  = 300
	soakLength = 20 * time.Second
)

// For soakLength, hostile clients of every kind run at once (idle
// connections, stalled uploads with and without a known key, amplified
// validation, junk targets), bounded in number, while a well-behaved seller
// meters with aws-sdk-go. Its p99 and the server's RSS stay under the
// bounds, and every record it was acknowledged is in the database.
func TestSoak(t *testing.T) {
	length := soakLength
	if d, err := time.ParseDuration(os.Getenv("MPMETER_SOAK_DURATION")); err == nil {
		length = d
	}
	s := start(t, "--seed", soakSeed(t), "--max-connections", "600", "--max-in-flight", "128", "--request-timeout", "5s",
		"--max-body-memory", "33554432")
	addr := hostOf(s.URL)

	// The well-behaved client connects first and keeps its connections.
	sess := session.Must(session.NewSession(aws.NewConfig().WithEndpoint(s.URL).WithRegion(region).
		WithCredentials(credentials.NewStaticCredentials(sellerKey, sellerSecret, "")).WithMaxRetries(5)))
	client := mm.New(sess)

	ctx, cancel := context.WithTimeout(context.Background(), length)
	defer cancel()
	var hostile sync.WaitGroup
	run := func(n int, f func()) {
		for i := 0; i < n; i++ {
			hostile.Add(1)
			go func() {
				defer hostile.Done()
				for ctx.Err() == nil {
					f()
				}
			}()
		}
	}
	// Idle connections, reopened when the server drops them.
	run(300, func() {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			return
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		io.Copy(io.Discard, c)
		stop()
		c.Close()
	})
	unauth := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048575\r\nX-Amz-Target: AWSMPMeteringService.BatchMeterUsage\r\n\r\n"
	stalls := []*sync.WaitGroup{
		stallers(ctx, addr, 50, unauth, 1<<20-1),
		stallers(ctx, addr, 40, keyOnlyHeaders(addr, sellerKey, 1<<20-1), 1<<20-1),
	}
	amplified := emptyRecords()
	run(2, func() {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		defer c.Close()
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
		c.Write([]byte(signedHeaders(t, addr, "BatchMeterUsage", ec2Key, ec2Secret, amplified)))
		c.Write(amplified)
		io.Copy(io.Discard, c)
	})
	junk := &http.Client{Timeout: 5 * time.Second}
	run(2, func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, strings.NewReader("{}"))
		req.Header.Set("X-Amz-Target", fmt.Sprintf("Junk.%d", time.Now().UnixNano()))
		if resp, err := junk.Do(req); err == nil {
			resp.Body.Close()
		}
	})

	// The well-behaved seller: distinct records (customer, dimension,
	// hour), four at a time, each batch of one record.
	type acked struct{ id, dim string }
	var (
		mu        sync.Mutex
		latencies []time.Duration
		acks      []acked
		failures  []error
	)
	var good sync.WaitGroup
	base := time.Now().Add(-5 * time.Hour).Truncate(time.Hour)
	for w := 0; w < 4; w++ {
		good.Add(1)
		go func() {
			defer good.Done()
			for i := 0; ctx.Err() == nil; i++ {
				// A distinct record (customer, dimension, hour) per call
				// while they last.
				n := i*4 + w
				dim := []string{"users", "gigabytes"}[n%2]
				ts := base.Add(time.Duration(n/2%5) * time.Hour)
				customer := fmt.Sprintf("cust-soak-%d", n/10%soakCustomers)
				in := &mm.BatchMeterUsageInput{ProductCode: aws.String("exampleprod1"), UsageRecords: []*mm.UsageRecord{{
					CustomerIdentifier: aws.String(customer), Dimension: aws.String(dim),
					Quantity: aws.Int64(1), Timestamp: aws.Time(ts),
				}}}
				began := time.Now()
				out, err := client.BatchMeterUsage(in)
				took := time.Since(began)
				mu.Lock()
				latencies = append(latencies, took)
				switch {
				case err != nil:
					failures = append(failures, err)
				case len(out.Results) == 1 && aws.StringValue(out.Results[0].Status) == "Success":
					acks = append(acks, acked{aws.StringValue(out.Results[0].MeteringRecordId), dim})
				}
				mu.Unlock()
			}
		}()
	}
	good.Wait()
	cancel()
	hostile.Wait()
	for _, wg := range stalls {
		wg.Wait()
	}

	if !s.healthy() {
		t.Error("/healthz does not answer after the soak")
	}
	rss := s.peakRSSMB(t)
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	if len(latencies) < 20 {
		t.Fatalf("the well-behaved client made only %d calls; failures: %v", len(latencies), failures)
	}
	p99 := latencies[len(latencies)*99/100]
	t.Logf("well-behaved client: %d calls, %d acknowledged, %d failed, p50 %s, p99 %s; server peak RSS %d MB",
		len(latencies), len(acks), len(failures), latencies[len(latencies)/2], p99, rss)
	if p99 > soakP99 {
		t.Errorf("p99 %s, bound %s", p99, soakP99)
	}
	if rss > soakRSSMB {
		t.Errorf("peak RSS %d MB, bound %d MB", rss, soakRSSMB)
	}
	if len(failures) > len(latencies)/100 {
		t.Errorf("%d of %d calls failed, e.g. %v", len(failures), len(latencies), failures[0])
	}

	// Every acknowledged record is stored: stop the server, read its file.
	if _, err := s.sigterm(t, 30*time.Second); err != nil {
		t.Errorf("exit: %v", err)
	}
	st, err := sqlstore.Open(context.Background(), s.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.Usage(context.Background(), mpmeter.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	stored := make(map[string]bool, len(recs))
	for _, r := range recs {
		stored[r.MeteringRecordID] = true
	}
	for _, a := range acks {
		if !stored[a.id] {
			t.Fatalf("acknowledged record %s (%s) is not stored (%d stored)", a.id, a.dim, len(recs))
		}
	}
}
