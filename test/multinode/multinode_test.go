package multinode

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/awserr"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	mm "github.com/aws/aws-sdk-go/service/marketplacemetering"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mpmeter/mpmeter/mpmetertest"
)

func client(t *testing.T, endpoint, key, secret string) *mm.MarketplaceMetering {
	t.Helper()
	sess, err := session.NewSession(&aws.Config{
		Endpoint: aws.String(endpoint), Region: aws.String(mpmetertest.Region),
		Credentials: credentials.NewStaticCredentials(key, secret, ""), MaxRetries: aws.Int(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return mm.New(sess)
}

func errCode(err error) string {
	if aerr, ok := err.(awserr.Error); ok {
		return aerr.Code()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// Concurrent identical requests spread over three nodes store one record
// each, and every node answers the same MeteringRecordId; conflicts are seen
// across nodes.
func TestExactlyOnceAcrossNodes(t *testing.T) {
	dbURL := freshDatabase(t)
	nodes := startNodes(t, 3, dbURL.String())
	db := openDB(t, dbURL)

	ts := time.Now().Add(-time.Hour)
	var recs []*mm.UsageRecord
	for i := 0; i < 5; i++ {
		recs = append(recs, &mm.UsageRecord{CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"),
			Quantity: aws.Int64(int64(i + 1)), Timestamp: aws.Time(ts.Add(-time.Duration(i) * time.Hour))})
	}
	batch := &mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: recs}
	meter := &mm.MeterUsageInput{ProductCode: aws.String(mpmetertest.AMIProduct), UsageDimension: aws.String("vcpu_hours"), UsageQuantity: aws.Int64(3), Timestamp: aws.Time(ts)}

	const callers = 30
	batchIDs := make([]string, callers)
	meterIDs := make([]string, callers)
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			nd := nodes[i%len(nodes)]
			out, err := client(t, nd.URL, mpmetertest.SellerKey, mpmetertest.SellerSecret).BatchMeterUsage(batch)
			if err != nil {
				t.Errorf("batch via %s: %v", nd.URL, err)
				return
			}
			var ids []string
			for _, r := range out.Results {
				if *r.Status != "Success" {
					t.Errorf("status %s", *r.Status)
				}
				ids = append(ids, aws.StringValue(r.MeteringRecordId))
			}
			batchIDs[i] = strings.Join(ids, ",")
			m, err := client(t, nd.URL, mpmetertest.EC2Key, mpmetertest.EC2Secret).MeterUsage(meter)
			if err != nil {
				t.Errorf("meter via %s: %v", nd.URL, err)
				return
			}
			meterIDs[i] = *m.MeteringRecordId
		}(i)
	}
	wg.Wait()
	for i := 1; i < callers; i++ {
		if batchIDs[i] != batchIDs[0] || meterIDs[i] != meterIDs[0] {
			t.Fatalf("caller %d (node %d) got %s / %s, caller 0 got %s / %s", i, i%3, batchIDs[i], meterIDs[i], batchIDs[0], meterIDs[0])
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM metering_records`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(recs)+1 {
		t.Fatalf("stored %d records, want %d", n, len(recs)+1)
	}

	// Conflicts across nodes: another quantity via another node.
	dupBatch := &mm.BatchMeterUsageInput{ProductCode: batch.ProductCode, UsageRecords: []*mm.UsageRecord{{
		CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"), Quantity: aws.Int64(99), Timestamp: recs[0].Timestamp}}}
	out, err := client(t, nodes[1].URL, mpmetertest.SellerKey, mpmetertest.SellerSecret).BatchMeterUsage(dupBatch)
	if err != nil || *out.Results[0].Status != "DuplicateRecord" {
		t.Fatalf("another quantity via node 1: %v %v", out, err)
	}
	_, err = client(t, nodes[2].URL, mpmetertest.EC2Key, mpmetertest.EC2Secret).MeterUsage(&mm.MeterUsageInput{
		ProductCode: meter.ProductCode, UsageDimension: meter.UsageDimension, UsageQuantity: aws.Int64(4), Timestamp: meter.Timestamp})
	if errCode(err) != "DuplicateRequestException" {
		t.Fatalf("another quantity via node 2: %v", err)
	}

	// A ClientToken used on one node conflicts on another.
	body := func(q int) string {
		return fmt.Sprintf(`{"ProductCode":"exampleami1","UsageDimension":"requests","UsageQuantity":%d,"Timestamp":%d,"ClientToken":"multinode-token"}`, q, time.Now().Unix())
	}
	raw := func(nd *node, q int) (int, map[string]any) {
		status, b := mpmetertest.Do(t, nd.URL, mpmetertest.Raw{Target: "MeterUsage", Key: mpmetertest.EC2Key, Secret: mpmetertest.EC2Secret, Body: body(q)})
		var m map[string]any
		json.Unmarshal(b, &m)
		return status, m
	}
	if status, m := raw(nodes[0], 1); status != 200 {
		t.Fatalf("token on node 0: %d %v", status, m)
	}
	if status, m := raw(nodes[1], 2); status != 400 || m["__type"] != "IdempotencyConflictException" {
		t.Fatalf("token reused with another quantity on node 1: %d %v", status, m)
	}
}

// Nodes that start together on an empty database create one signing key,
// and a token signed by one node verifies with the key any node publishes.
func TestSigningKeysShared(t *testing.T) {
	dbURL := freshDatabase(t)
	nodes := startNodes(t, 3, dbURL.String())
	var pems []string
	for _, nd := range nodes {
		resp, err := http.Get(nd.URL + "/keys/public/1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", nd.URL, resp.StatusCode, b)
		}
		pems = append(pems, string(b))
	}
	if pems[0] != pems[1] || pems[1] != pems[2] {
		t.Fatal("nodes publish different keys for version 1")
	}
	if resp, err := http.Get(nodes[0].URL + "/keys/public/2"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("three nodes starting at once created more than one key version")
	}
	block, _ := pem.Decode([]byte(pems[2]))
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	out, err := client(t, nodes[0].URL, mpmetertest.ECSKey, mpmetertest.ECSSecret).RegisterUsage(&mm.RegisterUsageInput{
		ProductCode: aws.String(mpmetertest.ContainerProduct), PublicKeyVersion: aws.Int64(1), Nonce: aws.String("multi")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.Parse(*out.Signature, func(*jwt.Token) (any, error) { return key, nil }, jwt.WithValidMethods([]string{"PS256"})); err != nil {
		t.Fatalf("node 0's token does not verify with node 2's key: %v", err)
	}
}

// While the database is unreachable, requests fail (500 or 503) and never
// succeed falsely; the nodes recover by themselves when it returns; every
// record that was answered with a MeteringRecordId is stored.
func TestDatabaseOutage(t *testing.T) {
	dbURL := freshDatabase(t)
	p := newProxy(t, dbURL.Host)
	viaProxy := *dbURL
	viaProxy.Host = p.Addr()
	nodes := startNodes(t, 2, viaProxy.String())
	db := openDB(t, dbURL)

	var (
		mu       sync.Mutex
		accepted []string
		failures = map[string]int{}
		phase    atomic.Int32 // 0 before, 1 during, 2 after the outage
		during   atomic.Int32 // successes during the outage
		after    atomic.Int32 // successes after it
		next     atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now().Add(-5 * time.Hour).Truncate(time.Hour)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := client(t, nodes[w%len(nodes)].URL, mpmetertest.SellerKey, mpmetertest.SellerSecret)
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Every request is a new slot: dimension × hour × minute
				// spreads them over distinct (customer, dimension, hour).
				k := next.Add(1)
				dim := []string{"users", "gigabytes"}[k%2]
				ts := start.Add(time.Duration(k/2%5) * time.Hour)
				cust := mpmetertest.Customer
				out, err := c.BatchMeterUsage(&mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []*mm.UsageRecord{{
					CustomerIdentifier: aws.String(cust), Dimension: aws.String(dim), Quantity: aws.Int64(k), Timestamp: aws.Time(ts)}}})
				mu.Lock()
				if err != nil {
					failures[errCode(err)]++
				} else {
					for _, r := range out.Results {
						if r.MeteringRecordId != nil {
							accepted = append(accepted, *r.MeteringRecordId)
						}
					}
					switch phase.Load() {
					case 1:
						during.Add(1)
					case 2:
						after.Add(1)
					}
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}(w)
	}
	time.Sleep(time.Second)
	p.Cut()
	time.Sleep(300 * time.Millisecond) // requests in flight at the cut finish
	phase.Store(1)
	time.Sleep(3 * time.Second)
	phase.Store(3) // the restore itself: not counted either way
	p.Restore()
	deadline := time.Now().Add(60 * time.Second)
	phase.Store(2)
	for after.Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	if during.Load() != 0 {
		t.Errorf("%d requests succeeded while the database was unreachable", during.Load())
	}
	t.Logf("outage: %d successes during (want 0), %d after restore, failures %v", during.Load(), after.Load(), failures)
	if after.Load() < 20 {
		t.Errorf("nodes did not recover within 60 s after the database returned (%d successes)", after.Load())
	}
	for code := range failures {
		if code != "InternalServiceErrorException" && code != "ServiceUnavailable" {
			t.Errorf("outage answered with %s (%d times); want InternalServiceErrorException or ServiceUnavailable", code, failures[code])
		}
	}
	if len(failures) == 0 {
		t.Error("no request failed during a 3-second outage")
	}
	var stored int
	if err := db.QueryRow(`SELECT count(*) FROM metering_records WHERE metering_record_id = ANY($1)`, accepted).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	t.Logf("accepted %d records", len(accepted))
	if stored != len(uniq(accepted)) {
		t.Fatalf("%d records were answered with an id, %d of them are stored", len(uniq(accepted)), stored)
	}
}

func uniq(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// The virtual clock lives in the database: set once (by the CLI, against the
// database), every node reads it within its refresh interval.
func TestVirtualClockShared(t *testing.T) {
	dbURL := freshDatabase(t)
	nodes := startNodes(t, 3, dbURL.String())
	past := time.Now().Add(-40 * 24 * time.Hour).Truncate(time.Second)
	batch := &mm.BatchMeterUsageInput{ProductCode: aws.String(mpmetertest.SaaSProduct), UsageRecords: []*mm.UsageRecord{{
		CustomerIdentifier: aws.String(mpmetertest.Customer), Dimension: aws.String("users"), Quantity: aws.Int64(1), Timestamp: aws.Time(past)}}}
	for _, nd := range nodes {
		_, err := client(t, nd.URL, mpmetertest.SellerKey, mpmetertest.SellerSecret).BatchMeterUsage(batch)
		if errCode(err) != "TimestampOutOfBoundsException" {
			t.Fatalf("before the clock moved, %s: %v", nd.URL, err)
		}
	}
	set := exec.Command(binary, "clock", "set", past.Add(time.Hour).Format(time.RFC3339), "--db", dbURL.String())
	set.Env = cleanEnv()
	if out, err := set.CombinedOutput(); err != nil {
		t.Fatalf("mpmeter clock set: %v %s", err, out)
	}
	time.Sleep(1500 * time.Millisecond) // > vclock.DefaultRefresh
	ids := map[string]bool{}
	for _, nd := range nodes {
		out, err := client(t, nd.URL, mpmetertest.SellerKey, mpmetertest.SellerSecret).BatchMeterUsage(batch)
		if err != nil {
			t.Fatalf("after the clock moved, %s: %v", nd.URL, err)
		}
		ids[aws.StringValue(out.Results[0].MeteringRecordId)] = true
	}
	if len(ids) != 1 {
		t.Fatalf("nodes answered different ids: %v", ids)
	}
}
