package multinode

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	mmv2 "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	mmtypes "github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"

	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/notify"
)

// The loop of the README's "The buyer journey, end to end", against a real
// `mpmeter serve` with the README's seed: a landing page and an SNS
// endpoint on localhost; subscribe, receive the token POST,
// ResolveCustomer, receive and verify subscribe-success, meter, cancel,
// meter in the final hour, receive unsubscribe-success, see
// CustomerNotSubscribed.
func TestREADMEBuyerJourney(t *testing.T) {
	var mu sync.Mutex
	var tokens []string
	var actions []string
	site := http.NewServeMux()
	site.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		tokens = append(tokens, r.PostForm.Get("x-amzn-marketplace-token"))
		mu.Unlock()
		http.Redirect(w, r, "/welcome", http.StatusSeeOther)
	})
	site.HandleFunc("POST /sns", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m map[string]string
		json.Unmarshal(body, &m)
		resp, err := http.Get(m["SigningCertURL"])
		if err != nil {
			t.Errorf("SigningCertURL: %v", err)
			return
		}
		cert, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if _, err := notify.VerifyMessage(body, cert); err != nil {
			t.Errorf("%s does not verify: %v", m["Type"], err)
			return
		}
		if m["Type"] == "SubscriptionConfirmation" {
			go http.Get(m["SubscribeURL"])
			return
		}
		var msg struct {
			Action string `json:"action"`
		}
		json.Unmarshal([]byte(m["Message"]), &msg)
		mu.Lock()
		actions = append(actions, msg.Action)
		mu.Unlock()
	})
	hs := httptest.NewServer(site)
	defer hs.Close()

	dir := t.TempDir()
	seedFile := filepath.Join(dir, "journey.yaml")
	os.WriteFile(seedFile, []byte(`accounts:
  - id: "111122223333"
    name: My Seller
    access_keys: [{id: AKIAEXAMPLESELLER001, secret: seller-secret}]
  - id: "210987654321"
    name: New Buyer
products:
  - code: myprod1
    seller: "111122223333"
    type: saas
    dimensions: [users]
    fulfillment_url: `+hs.URL+`/register
sns_subscriptions:
  - {product: myprod1, topic: subscription, protocol: http, endpoint: `+hs.URL+`/sns}
`), 0o600)
	nd, err := startNode(t, filepath.Join(dir, "journey.db"), "--seed", seedFile, "--admin-token", adminToken)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mpmetertest.AWSConfig(nd.URL, "us-east-1", mpmetertest.SellerKey, mpmetertest.SellerSecret)
	client := mmv2.NewFromConfig(cfg)
	waitUntil(t, "the SNS subscription's confirmation", func() bool {
		var list struct {
			Items []struct {
				ConfirmedAt *string `json:"confirmed_at"`
			} `json:"items"`
		}
		adminCall(t, nd.URL, http.MethodGet, "/sns-subscriptions", nil, &list)
		return len(list.Items) == 1 && list.Items[0].ConfirmedAt != nil
	})

	var sub struct {
		AgreementID string `json:"agreement_id"`
	}
	adminCall(t, nd.URL, http.MethodPost, "/subscriptions", map[string]any{"account_id": "210987654321", "product_code": "myprod1"}, &sub)
	waitUntil(t, "the token POST", func() bool { mu.Lock(); defer mu.Unlock(); return len(tokens) == 1 })
	res, err := client.ResolveCustomer(context.Background(), &mmv2.ResolveCustomerInput{RegistrationToken: awsv2.String(tokens[0])})
	if err != nil {
		t.Fatal(err)
	}
	customer := awsv2.ToString(res.CustomerIdentifier)
	waitUntil(t, "subscribe-success", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(actions) == 1 && actions[0] == "subscribe-success"
	})

	now := func() (out struct {
		Now string `json:"now"`
	}) {
		adminCall(t, nd.URL, http.MethodGet, "/clock", nil, &out)
		return out
	}
	meter := func(dim string) mmtypes.UsageRecordResultStatus {
		ts := now().Now
		at, err := parseTime(ts)
		if err != nil {
			t.Fatal(err)
		}
		out, err := client.BatchMeterUsage(context.Background(), &mmv2.BatchMeterUsageInput{ProductCode: awsv2.String("myprod1"),
			UsageRecords: []mmtypes.UsageRecord{{CustomerIdentifier: awsv2.String(customer), Dimension: awsv2.String(dim), Quantity: awsv2.Int32(1), Timestamp: awsv2.Time(at)}}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Results[0].Status
	}
	if st := meter("users"); st != mmtypes.UsageRecordResultStatusSuccess {
		t.Fatalf("meter: %s", st)
	}
	adminCall(t, nd.URL, http.MethodPost, "/subscriptions/"+url.PathEscape(sub.AgreementID)+"/cancel", nil, nil)
	waitUntil(t, "unsubscribe-pending", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(actions) == 2 && actions[1] == "unsubscribe-pending"
	})
	adminCall(t, nd.URL, http.MethodPost, "/clock/advance", map[string]any{"by": "30m"}, nil)
	if st := meter("users"); st != mmtypes.UsageRecordResultStatusSuccess {
		t.Fatalf("meter in the final hour: %s", st)
	}
	adminCall(t, nd.URL, http.MethodPost, "/clock/advance", map[string]any{"by": "31m"}, nil)
	waitUntil(t, "unsubscribe-success", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(actions) == 3 && actions[2] == "unsubscribe-success"
	})
	if st := meter("users"); st != mmtypes.UsageRecordResultStatusCustomerNotSubscribed {
		t.Fatalf("meter after unsubscribe-success: %s", st)
	}
}

func parseTime(s string) (t time.Time, err error) { return time.Parse(time.RFC3339Nano, s) }
