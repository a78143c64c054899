package service_test

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mpmeter/mpmeter"
)

func register(product string, version int64) *mpmeter.RegisterUsageInput {
	return &mpmeter.RegisterUsageInput{ProductCode: ptr(product), PublicKeyVersion: ptr(version)}
}

// Every failure of RegisterUsage: the error, and nothing stored.
func TestRegisterUsageRejects(t *testing.T) {
	cases := []struct {
		name   string
		key    string
		region string
		in     *mpmeter.RegisterUsageInput
		code   mpmeter.ErrorCode
	}{
		{name: "an EC2 instance", key: ec2Key, code: mpmeter.CodePlatformNotSupported},
		{name: "an AgentCore runtime", key: agentKey, code: mpmeter.CodePlatformNotSupported},
		{name: "a seller's key", key: sellerKey, code: mpmeter.CodePlatformNotSupported},
		{name: "another region", key: ecsKey, region: "eu-west-1", code: mpmeter.CodeInvalidRegion},
		{name: "unknown product", key: ecsKey, in: register("nosuchprod", 1), code: mpmeter.CodeInvalidProductCode},
		{name: "an AMI product", key: ecsKey, in: register(amiProduct, 1), code: mpmeter.CodeInvalidProductCode},
		{name: "a SaaS product", key: ecsKey, in: register(saasProduct, 1), code: mpmeter.CodeInvalidProductCode},
		{name: "cancelled subscription", key: cancelledECS, code: mpmeter.CodeCustomerNotEntitled},
		{name: "unknown key version", key: ecsKey, in: register(containerProduct, 2), code: mpmeter.CodeInvalidPublicKeyVersion},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			caller := f.caller(c.key)
			if c.region != "" {
				caller.Region = c.region
			}
			in := c.in
			if in == nil {
				in = register(containerProduct, 1)
			}
			out, err := f.svc.RegisterUsage(f.ctx, caller, in)
			if out != nil {
				t.Errorf("answer %+v with the error", out)
			}
			wantCode(t, err, c.code)
			f.wantStored(0)
		})
	}
}

// ECS, EKS and Fargate workloads register; the token carries the product,
// key version, nonce, time and account, and the registration is recorded
// once per workload.
func TestRegisterUsage(t *testing.T) {
	f := newFixture(t)
	for i, key := range []string{ecsKey, eksKey, fargateKey} {
		in := register(containerProduct, 1)
		in.Nonce = ptr("n-" + key)
		for range 2 { // a container restart registers again
			out, err := f.svc.RegisterUsage(f.ctx, f.caller(key), in)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			if out.PublicKeyRotationTimestamp != nil {
				t.Errorf("%s: rotation timestamp %v for the current version", key, out.PublicKeyRotationTimestamp)
			}
			claims := jwt.MapClaims{}
			// The signature is the keys package's (tested there and through
			// the SDKs); here the claims are the rules'.
			if _, _, err := jwt.NewParser().ParseUnverified(*out.Signature, claims); err != nil {
				t.Fatal(err)
			}
			if claims["productCode"] != containerProduct || claims["publicKeyVersion"] != 1.0 || claims["nonce"] != "n-"+key ||
				claims["customerAccountId"] != buyer || claims["iat"] != float64(f.now.Unix()) {
				t.Errorf("%s: claims %v", key, claims)
			}
		}
		recs := f.wantStored(i + 1)
		r := recs[len(recs)-1]
		if r.Kind != mpmeter.UsageRegister || r.ProductCode != containerProduct || r.CustomerAccountID != buyer || r.WorkloadID != f.caller(key).Workload.ID {
			t.Errorf("%s: stored %+v", key, r)
		}
	}
	if f.seen["RegisterUsage/accepted"] != 3 || f.seen["RegisterUsage/identical"] != 3 {
		t.Errorf("observed %v", f.seen)
	}
}

// Only a workload's first registration checks the subscription.
func TestRegisterUsageChecksTheSubscriptionOnce(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.RegisterUsage(f.ctx, f.caller(ecsKey), register(containerProduct, 1)); err != nil {
		t.Fatal(err)
	}
	subs, err := f.store.SubscriptionsOf(f.ctx, buyer, containerProduct)
	if err != nil || len(subs) != 1 {
		t.Fatal(subs, err)
	}
	subs[0].Status = mpmeter.SubscriptionCancelled
	put(f, subs[0])
	if _, err := f.svc.RegisterUsage(f.ctx, f.caller(ecsKey), register(containerProduct, 1)); err != nil {
		t.Errorf("registered workload after the unsubscribe: %v", err)
	}
	_, err = f.svc.RegisterUsage(f.ctx, f.caller(eksKey), register(containerProduct, 1))
	wantCode(t, err, mpmeter.CodeCustomerNotEntitled)
	if !strings.Contains(err.Error(), buyer) {
		t.Errorf("message %q does not name the account", err)
	}
}
