package mpmetertest_test

//lint:file-ignore SA1019 aws-sdk-go v1 is deprecated, and still one of the real clients mpmeter must serve: it is tested on purpose.

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	mm "github.com/aws/aws-sdk-go/service/marketplacemetering"

	"github.com/mpmeter/mpmeter/mpmetertest"
)

func TestResolveCustomer(t *testing.T) {
	srv := mpmetertest.New(t)
	c := seller(t, srv)
	in := &mm.ResolveCustomerInput{RegistrationToken: aws.String(mpmetertest.Token)}
	out, err := c.ResolveCustomer(in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.StringValue(out.CustomerIdentifier) != mpmetertest.Customer || aws.StringValue(out.CustomerAWSAccountId) != mpmetertest.BuyerAccount ||
		aws.StringValue(out.ProductCode) != mpmetertest.SaaSProduct {
		t.Fatalf("resolved %v", out)
	}
	again, err := c.ResolveCustomer(in)
	if err != nil {
		t.Fatal(err)
	}
	if again.String() != out.String() {
		t.Fatalf("resolving again answered %v, first %v", again, out)
	}
}

func TestResolveCustomerErrors(t *testing.T) {
	srv := mpmetertest.New(t)
	c := seller(t, srv)
	resolve := func(c *mm.MarketplaceMetering, token string) error {
		_, err := c.ResolveCustomer(&mm.ResolveCustomerInput{RegistrationToken: aws.String(token)})
		return err
	}
	wantCode(t, resolve(c, "no-such-token"), "InvalidTokenException", 400)
	// Another seller's token is no token at all for this seller, and this
	// seller's token none for the other.
	wantCode(t, resolve(c, mpmetertest.TokenOther), "InvalidTokenException", 400)
	wantCode(t, resolve(client(t, srv, mpmetertest.OtherSellerKey, mpmetertest.OtherSellerSecret, mpmetertest.Region), mpmetertest.Token), "InvalidTokenException", 400)
	if err := resolve(client(t, srv, mpmetertest.OtherSellerKey, mpmetertest.OtherSellerSecret, mpmetertest.Region), mpmetertest.TokenOther); err != nil {
		t.Fatalf("the other seller resolving its own token: %v", err)
	}
	wantCode(t, resolve(c, mpmetertest.TokenExpired), "ExpiredTokenException", 400)

	// Seeded tokens live 4 hours by default, on the service clock.
	if err := resolve(c, mpmetertest.Token); err != nil {
		t.Fatal(err)
	}
	srv.Clock.Advance(4*time.Hour + time.Second)
	wantCode(t, resolve(c, mpmetertest.Token), "ExpiredTokenException", 400)
}
