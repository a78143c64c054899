package mpmetertest

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// AWSConfig returns an aws-sdk-go-v2 configuration that sends to this
// server, in its Region, signing with key and secret:
//
//	client := marketplacemetering.NewFromConfig(srv.AWSConfig(mpmetertest.SellerKey, mpmetertest.SellerSecret))
//
// Everything else (retries, HTTP client) is the SDK's default; change the
// returned value or pass option functions to NewFromConfig as usual, e.g.
// o.Region to call another region.
func (s *Server) AWSConfig(key, secret string) aws.Config {
	return AWSConfig(s.URL, s.Region, key, secret)
}

// AWSConfig is Server.AWSConfig for the mpmeter at endpoint (any running
// server, in-process or not).
func AWSConfig(endpoint, region, key, secret string) aws.Config {
	return aws.Config{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, Source: "mpmetertest"}, nil
		})),
	}
}
