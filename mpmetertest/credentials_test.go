package mpmetertest_test

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	credsv2 "github.com/aws/aws-sdk-go-v2/credentials"
	mmv2 "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	mmv2types "github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"
	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	mm "github.com/aws/aws-sdk-go/service/marketplacemetering"
	"github.com/aws/smithy-go"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/mpmetertest"
	"github.com/mpmeter/mpmeter/workloadcreds"
)

// workloadEnv gives this test the environment of a workload on ECS whose
// task definition points the SDK at mpmeter: no keys, no shared config,
// only the container credentials endpoint, the region and the endpoint.
func workloadEnv(t *testing.T, srv *mpmetertest.Server, workloadID, token string) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "") // restored at the end of the test
		os.Unsetenv(k)
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", srv.Region)
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	t.Setenv("AWS_ENDPOINT_URL_MARKETPLACE_METERING", srv.URL)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.CredentialsURL(workloadID))
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", token)
}

func registerInput() *mmv2.RegisterUsageInput {
	return &mmv2.RegisterUsageInput{ProductCode: awsv2.String(mpmetertest.ContainerProduct), PublicKeyVersion: awsv2.Int32(1)}
}

// An ECS task's unchanged code: config.LoadDefaultConfig finds the
// temporary credentials through AWS_CONTAINER_CREDENTIALS_FULL_URI, and they
// are minted for the task's workload, stored, and accepted.
func TestContainerCredentialsGoV2DefaultChain(t *testing.T) {
	srv := mpmetertest.New(t)
	workloadEnv(t, srv, mpmetertest.ECSWorkload, mpmetertest.ECSCredentialsToken)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := mmv2.NewFromConfig(cfg)
	out, err := c.RegisterUsage(ctx, registerInput())
	if err != nil {
		t.Fatal(err)
	}
	if awsv2.ToString(out.Signature) == "" {
		t.Fatal("no signature")
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || len(creds.AccessKeyID) != 20 || creds.SessionToken == "" || !creds.CanExpire {
		t.Fatalf("credentials %s (token %v, can expire %v) are not temporary ones", creds.AccessKeyID, creds.SessionToken != "", creds.CanExpire)
	}
	if creds.AccountID != mpmetertest.BuyerAccount {
		t.Errorf("AccountID %q, want %s", creds.AccountID, mpmetertest.BuyerAccount)
	}
	// The SDK's cache expires them 5 minutes before Expiration.
	if d := time.Until(creds.Expires); d < 53*time.Minute || d > 55*time.Minute {
		t.Errorf("expires in %s, want about an hour less 5 minutes", d)
	}
	stored, err := srv.Store.AccessKey(ctx, creds.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Workload == nil || stored.Workload.ID != mpmetertest.ECSWorkload || stored.AccountID != mpmetertest.BuyerAccount ||
		stored.SessionToken != creds.SessionToken || stored.CredentialsToken != "" {
		t.Errorf("stored key %+v (workload %+v)", stored, stored.Workload)
	}
	// The registration is the ECS task's: its usage is recorded under it.
	recs, err := srv.Store.Usage(ctx, mpmeter.UsageFilter{Kind: mpmeter.UsageRegister})
	if err != nil || len(recs) != 1 || recs[0].WorkloadID != mpmetertest.ECSWorkload {
		t.Fatalf("RegisterUsage records %+v, %v; want one of the ECS task", recs, err)
	}
}

// fetchCredentials GETs a workload's credentials as an SDK does.
func fetchCredentials(t *testing.T, url, authorization string) (int, workloadcreds.Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r workloadcreds.Response
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
	return resp.StatusCode, r
}

func staticV2(t *testing.T, srv *mpmetertest.Server, key, secret, token string) *mmv2.Client {
	return mmv2.New(mmv2.Options{
		Region:           srv.Region,
		BaseEndpoint:     awsv2.String(srv.URL),
		Credentials:      credsv2.NewStaticCredentialsProvider(key, secret, token),
		RetryMaxAttempts: 1,
	})
}

// wantV2Code asserts err is an AWS API error with this code and HTTP
// status, and returns its message.
func wantV2Code(t *testing.T, err error, code string, status int) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want %s", err, code)
	}
	var re *awshttp.ResponseError
	if ae.ErrorCode() != code || !errors.As(err, &re) || re.HTTPStatusCode() != status {
		t.Fatalf("got %v, want %s with HTTP %d", err, code, status)
	}
	return ae.ErrorMessage()
}

// The same credentials until fewer than 20 minutes remain, then new ones;
// the old ones work until they expire, and then answer
// ExpiredTokenException. The service clock decides, and the Expiration
// handed out is wall time.
func TestContainerCredentialsRotation(t *testing.T) {
	srv := mpmetertest.New(t)
	url := srv.CredentialsURL(mpmetertest.ECSWorkload)
	status, first := fetchCredentials(t, url, mpmetertest.ECSCredentialsToken)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	wantExpiration := func(r workloadcreds.Response, in time.Duration) {
		t.Helper()
		exp, err := time.Parse(time.RFC3339, r.Expiration)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(exp); d < in-2*time.Minute || d > in {
			t.Errorf("Expiration %s is %s away, want about %s", r.Expiration, d, in)
		}
	}
	wantExpiration(first, time.Hour)

	srv.Clock.Advance(39 * time.Minute)
	_, again := fetchCredentials(t, url, mpmetertest.ECSCredentialsToken)
	if again.AccessKeyID != first.AccessKeyID || again.Token != first.Token {
		t.Fatalf("with 21 minutes left: %s, want the same %s", again.AccessKeyID, first.AccessKeyID)
	}
	wantExpiration(again, 21*time.Minute)

	srv.Clock.Advance(2 * time.Minute)
	_, next := fetchCredentials(t, url, mpmetertest.ECSCredentialsToken)
	if next.AccessKeyID == first.AccessKeyID || next.Token == first.Token || next.SecretAccessKey == first.SecretAccessKey {
		t.Fatalf("with 19 minutes left: got %s again, want new credentials", next.AccessKeyID)
	}
	wantExpiration(next, time.Hour)
	_, same := fetchCredentials(t, url, mpmetertest.ECSCredentialsToken)
	if same.AccessKeyID != next.AccessKeyID {
		t.Fatalf("right after rotating: %s, want %s", same.AccessKeyID, next.AccessKeyID)
	}

	ctx := context.Background()
	old := staticV2(t, srv, first.AccessKeyID, first.SecretAccessKey, first.Token)
	if _, err := old.RegisterUsage(ctx, registerInput()); err != nil {
		t.Fatalf("the old credentials before they expire: %v", err)
	}
	srv.Clock.Advance(20 * time.Minute)
	_, err := old.RegisterUsage(ctx, registerInput())
	if msg := wantV2Code(t, err, string(mpmeter.CodeExpiredToken), http.StatusForbidden); msg != "The security token included in the request is expired" {
		t.Errorf("message %q", msg)
	}
	if _, err := staticV2(t, srv, next.AccessKeyID, next.SecretAccessKey, next.Token).RegisterUsage(ctx, registerInput()); err != nil {
		t.Fatalf("the new credentials: %v", err)
	}
}

// The endpoint answers only the workload's own credentials token.
func TestContainerCredentialsRefused(t *testing.T) {
	srv := mpmetertest.New(t)
	ecs := srv.CredentialsURL(mpmetertest.ECSWorkload)
	for _, c := range []struct {
		name, url, auth string
		want            int
	}{
		{"no Authorization", ecs, "", http.StatusUnauthorized},
		{"wrong token", ecs, mpmetertest.ECSCredentialsToken + "x", http.StatusForbidden},
		{"another workload's token", ecs, mpmetertest.EKSCredentialsToken, http.StatusForbidden},
		{"the long-term secret", ecs, mpmetertest.ECSSecret, http.StatusForbidden},
		{"workload without a credentials token", srv.CredentialsURL("arn:aws:bedrock-agentcore:us-east-1:444455556666:runtime/demo_agent-a1b2c3d4e5"), mpmetertest.ECSCredentialsToken, http.StatusForbidden},
		{"unknown workload", srv.CredentialsURL("i-nothere"), mpmetertest.ECSCredentialsToken, http.StatusForbidden},
		{"EKS pod with its own token", srv.CredentialsURL(mpmetertest.EKSWorkload), mpmetertest.EKSCredentialsToken, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			if status, _ := fetchCredentials(t, c.url, c.auth); status != c.want {
				t.Fatalf("status %d, want %d", status, c.want)
			}
		})
	}
}

// Long-term keys take no session token; temporary keys need theirs and
// expire: through aws-sdk-go v1 and aws-sdk-go-v2 with static credentials.
func TestSessionTokens(t *testing.T) {
	srv := mpmetertest.New(t)
	const unrecognized = "The security token included in the request is invalid."
	v1 := func(key, secret, token string) *mm.MarketplaceMetering {
		sess := session.Must(session.NewSession(&aws.Config{
			Endpoint: aws.String(srv.URL), Region: aws.String(srv.Region), MaxRetries: aws.Int(0),
			Credentials: credentials.NewStaticCredentials(key, secret, token),
		}))
		return mm.New(sess)
	}
	register := &mm.RegisterUsageInput{ProductCode: aws.String(mpmetertest.ContainerProduct), PublicKeyVersion: aws.Int64(1)}

	if _, err := v1(mpmetertest.ECSTemporaryKey, mpmetertest.ECSTemporarySecret, mpmetertest.ECSSessionToken).RegisterUsage(register); err != nil {
		t.Fatalf("v1, temporary key with its token: %v", err)
	}
	_, err := v1(mpmetertest.ECSKey, mpmetertest.ECSSecret, "bogus").RegisterUsage(register)
	if msg := wantCode(t, err, string(mpmeter.CodeUnrecognizedClient), http.StatusForbidden); msg != unrecognized {
		t.Errorf("v1, bogus token on a long-term key: %q", msg)
	}
	_, err = v1(mpmetertest.ECSTemporaryKey, mpmetertest.ECSTemporarySecret, "").RegisterUsage(register)
	wantCode(t, err, string(mpmeter.CodeUnrecognizedClient), http.StatusForbidden)
	_, err = v1(mpmetertest.ECSTemporaryKey, mpmetertest.ECSTemporarySecret, mpmetertest.ECSSessionToken+"x").RegisterUsage(register)
	wantCode(t, err, string(mpmeter.CodeUnrecognizedClient), http.StatusForbidden)
	_, err = v1(mpmetertest.ExpiredKey, mpmetertest.ExpiredSecret, mpmetertest.ExpiredSessionToken).MeterUsage(meterInput("vcpu_hours", 1, time.Now()))
	if msg := wantCode(t, err, string(mpmeter.CodeExpiredToken), http.StatusForbidden); msg != "The security token included in the request is expired" {
		t.Errorf("v1, expired key: %q", msg)
	}

	ctx := context.Background()
	if _, err := staticV2(t, srv, mpmetertest.ECSTemporaryKey, mpmetertest.ECSTemporarySecret, mpmetertest.ECSSessionToken).RegisterUsage(ctx, registerInput()); err != nil {
		t.Fatalf("v2, temporary key with its token: %v", err)
	}
	_, err = staticV2(t, srv, mpmetertest.ECSKey, mpmetertest.ECSSecret, "bogus").RegisterUsage(ctx, registerInput())
	wantV2Code(t, err, string(mpmeter.CodeUnrecognizedClient), http.StatusForbidden)
	_, err = staticV2(t, srv, mpmetertest.ExpiredKey, mpmetertest.ExpiredSecret, mpmetertest.ExpiredSessionToken).MeterUsage(ctx, &mmv2.MeterUsageInput{
		ProductCode: awsv2.String(mpmetertest.AMIProduct), UsageDimension: awsv2.String("vcpu_hours"),
		UsageQuantity: awsv2.Int32(1), Timestamp: awsv2.Time(time.Now())})
	var expired *mmv2types.ExpiredTokenException
	if !errors.As(err, &expired) {
		t.Fatalf("v2, expired key: %v, want the modeled ExpiredTokenException", err)
	}
	wantV2Code(t, err, string(mpmeter.CodeExpiredToken), http.StatusForbidden)
}

// aws-sdk-go v1's default chain reads the container credentials endpoint
// too.
func TestContainerCredentialsGoV1DefaultChain(t *testing.T) {
	srv := mpmetertest.New(t)
	workloadEnv(t, srv, mpmetertest.EC2Workload, mpmetertest.EC2CredentialsToken)
	sess, err := session.NewSession(&aws.Config{Endpoint: aws.String(srv.URL), MaxRetries: aws.Int(0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mm.New(sess).MeterUsage(meterInput("vcpu_hours", 2, time.Now())); err != nil {
		t.Fatal(err)
	}
	v, err := sess.Config.Credentials.Get()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.AccessKeyID, "ASIA") || v.SessionToken == "" {
		t.Fatalf("credentials %s from %s are not temporary", v.AccessKeyID, v.ProviderName)
	}
	recs, err := srv.Store.Usage(context.Background(), mpmeter.UsageFilter{Kind: mpmeter.UsageMeter})
	if err != nil || len(recs) != 1 || recs[0].WorkloadID != mpmetertest.EC2Workload {
		t.Fatalf("MeterUsage records %+v, %v; want one of the EC2 instance", recs, err)
	}
}
