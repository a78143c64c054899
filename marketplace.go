package mpmeter

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

// CreateOnly as the Version of a put makes it create the row or fail with
// ErrExists; see Store.
const CreateOnly int64 = -1

// Page selects one page of a list ordered by its key: the items whose key
// sorts after After (all when empty), at most Limit of them (all when
// Limit <= 0).
type Page struct {
	After string
	Limit int
}

// AllPages reads every page of a list, size items a page: list returns the
// items of one Page, key an item's key (the next page's After). It stops
// at the first page shorter than size, and between pages when ctx ends.
func AllPages[T any](ctx context.Context, size int, list func(Page) ([]T, error), key func(T) string) ([]T, error) {
	var out []T
	p := Page{Limit: size}
	for {
		page, err := list(p)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < p.Limit {
			return out, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p.After = key(page[len(page)-1])
	}
}

// AccessKeyFilter selects access keys. Zero fields do not filter.
type AccessKeyFilter struct {
	AccountID  string
	WorkloadID string
}

// SubscriptionFilter selects subscriptions. Zero fields do not filter.
type SubscriptionFilter struct {
	AccountID   string
	ProductCode string
	Status      string
}

var agreementIDEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// AgreementIDFor is the agreement id of the subscription with this license
// ARN: "agmt-" and 25 lowercase letters and digits from a SHA-256 of the
// ARN, the shape of AWS's agreement ids. Derived rather than drawn, so a
// seed applied anywhere yields the same ids and rows stored before agreement
// ids existed get theirs.
func AgreementIDFor(licenseArn string) string {
	sum := sha256.Sum256([]byte("mpmeter/agreement\x00" + licenseArn))
	return "agmt-" + agreementIDEncoding.EncodeToString(sum[:])[:25]
}

// RegistrationTokenID names a registration token without revealing it:
// "rt-" and 16 hex digits of a SHA-256 of the token. Lists and logs show it
// instead of the token.
func RegistrationTokenID(token string) string {
	sum := sha256.Sum256([]byte("mpmeter/registration-token\x00" + token))
	return "rt-" + hex.EncodeToString(sum[:8])
}

// IsAgreementID reports whether s has the shape of an agreement id.
func IsAgreementID(s string) bool {
	return strings.HasPrefix(s, "agmt-") && len(s) > len("agmt-") && len(s) <= 64
}
