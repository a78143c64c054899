package admin

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
)

// The one place the admin API makes secrets: access key ids and secrets,
// credentials tokens, registration tokens. Each is shown once, in the
// answer to the request that made it, and never again (lists and gets
// leave them out); the store keeps them (its own business how: see
// sqlstore for encryption at rest).

var keyIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newAccessKeyID is an AKIA... id of 20 characters of A-Z and 2-7, the
// shape of AWS's long-term key ids.
func newAccessKeyID() string {
	return "AKIA" + keyIDEncoding.EncodeToString(random(10))[:16]
}

// newSecretAccessKey is 40 characters of base64, the shape of AWS's.
func newSecretAccessKey() string {
	return base64.StdEncoding.EncodeToString(random(30))
}

// newToken is a 256-bit random token, URL-safe: credentials and
// registration tokens.
func newToken() string {
	return base64.RawURLEncoding.EncodeToString(random(32))
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return b
}
