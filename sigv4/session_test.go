package sigv4

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter"
)

const sessionToken = "IQoJb3JpZ2luX2VjEXAMPLE//session+token=="

// The two kinds of key: a long-term key takes no session token, temporary
// credentials need exactly theirs, and expire by the service clock.
func TestSessionTokens(t *testing.T) {
	at := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	expires := at.Add(time.Hour)
	temporary := func(expiresAt time.Time) *keys {
		k := keysWithSessionToken(sessionToken)
		key := k.m[sellerKeyID]
		key.ExpiresAt = expiresAt
		k.m[sellerKeyID] = key
		return k
	}
	// unsignedToken signs without a token and adds one afterwards: the
	// token is checked whether or not the signature covers it.
	unsignedToken := func(token string) signedRequest {
		s := sdkSigned(t, sellerSecret, "", at)
		s.req.Header.Set("X-Amz-Security-Token", token)
		return s
	}
	signedToken := func(token string) signedRequest { return sdkSigned(t, sellerSecret, token, at) }
	twoTokens := func(string) signedRequest {
		s := sdkSigned(t, sellerSecret, sessionToken, at)
		s.req.Header.Add("X-Amz-Security-Token", sessionToken)
		return s
	}
	cases := []struct {
		name     string
		keys     *keys
		service  time.Time // the service clock
		req      signedRequest
		wantCode mpmeter.ErrorCode
		wantMsg  string
		wantHTTP int
	}{
		{"long-term key, no token", sellerKeys(), at, signedToken(""), "", "", 0},
		{"long-term key, signed bogus token", sellerKeys(), at, signedToken("bogus"), mpmeter.CodeUnrecognizedClient, msgUnrecognized, 0},
		{"long-term key, unsigned bogus token", sellerKeys(), at, unsignedToken("bogus"), mpmeter.CodeUnrecognizedClient, msgUnrecognized, 0},
		{"temporary, signed token", temporary(expires), at, signedToken(sessionToken), "", "", 0},
		{"temporary, unsigned token", temporary(expires), at, unsignedToken(sessionToken), "", "", 0},
		{"temporary without expiry", temporary(time.Time{}), at.Add(1000 * time.Hour), signedToken(sessionToken), "", "", 0},
		{"temporary, no token", temporary(expires), at, signedToken(""), mpmeter.CodeUnrecognizedClient, msgUnrecognized, 0},
		{"temporary, wrong token", temporary(expires), at, signedToken(sessionToken[:len(sessionToken)-1]), mpmeter.CodeUnrecognizedClient, msgUnrecognized, 0},
		{"temporary, token twice", temporary(expires), at, twoTokens(""), mpmeter.CodeUnrecognizedClient, msgUnrecognized, 0},
		{"temporary, a second before expiry", temporary(expires), expires.Add(-time.Second), signedToken(sessionToken), "", "", 0},
		{"temporary, at expiry", temporary(expires), expires, signedToken(sessionToken), mpmeter.CodeExpiredToken, msgExpiredToken, http.StatusForbidden},
		{"temporary, wrong token after expiry", temporary(expires), expires.Add(time.Hour), signedToken("bogus"), mpmeter.CodeUnrecognizedClient, msgUnrecognized, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := &Verifier{Keys: c.keys, Now: fixedNow(at.Add(time.Minute)), ServiceClock: mpmeter.ClockFunc(fixedNow(c.service))}
			caller, err := v.Verify(context.Background(), c.req.req, c.req.body)
			if c.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				if caller.AccessKeyID != sellerKeyID || caller.AccountID != sellerAcct {
					t.Fatalf("caller %+v", caller)
				}
				return
			}
			wantErr(t, err, c.wantCode, c.wantMsg)
			if e := err.(*mpmeter.Error); e.HTTPStatus != c.wantHTTP {
				t.Errorf("HTTPStatus %d, want %d", e.HTTPStatus, c.wantHTTP)
			}
		})
	}
}

// Expired credentials with a wrong signature are reported as expired (the
// credentials are looked at before the signature, as at AWS); a valid token
// with a wrong signature is a signature mismatch.
func TestSessionTokenBeforeSignature(t *testing.T) {
	at := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	k := keysWithSessionToken(sessionToken)
	key := k.m[sellerKeyID]
	key.ExpiresAt = at.Add(time.Hour)
	k.m[sellerKeyID] = key
	s := sdkSigned(t, "wrong-secret", sessionToken, at)

	v := &Verifier{Keys: k, Now: fixedNow(at), ServiceClock: mpmeter.ClockFunc(fixedNow(at))}
	_, err := v.Verify(context.Background(), s.req, s.body)
	wantErr(t, err, mpmeter.CodeInvalidSignature, msgMismatch)

	v.ServiceClock = mpmeter.ClockFunc(fixedNow(at.Add(2 * time.Hour)))
	_, err = v.Verify(context.Background(), s.req, s.body)
	wantErr(t, err, mpmeter.CodeExpiredToken, msgExpiredToken)
}

// Without a service clock the wall clock (Now) decides expiry.
func TestSessionTokenExpiryWithoutServiceClock(t *testing.T) {
	at := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	k := keysWithSessionToken(sessionToken)
	key := k.m[sellerKeyID]
	key.ExpiresAt = at.Add(time.Minute)
	k.m[sellerKeyID] = key
	s := sdkSigned(t, sellerSecret, sessionToken, at)
	v := &Verifier{Keys: k, Now: fixedNow(at)}
	if _, err := v.Verify(context.Background(), s.req, s.body); err != nil {
		t.Fatal(err)
	}
	v.Now = fixedNow(at.Add(2 * time.Minute))
	_, err := v.Verify(context.Background(), s.req, s.body)
	wantErr(t, err, mpmeter.CodeExpiredToken, msgExpiredToken)
	if !strings.Contains(s.req.Header.Get("Authorization"), "x-amz-security-token") {
		t.Fatal("the SDK's signer did not sign the session token")
	}
}
