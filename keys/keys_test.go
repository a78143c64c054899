package keys_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mpmeter/mpmeter"
	"github.com/mpmeter/mpmeter/keys"
	"github.com/mpmeter/mpmeter/sqlstore"
)

func open(t *testing.T) mpmeter.Store {
	st, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestSignAndRotate(t *testing.T) {
	ctx := context.Background()
	st := open(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	m, _ := keys.New(keys.Config{Store: st, Clock: mpmeter.ClockFunc(func() time.Time { return now })})
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	tok, rotated, err := m.Sign(ctx, 1, map[string]any{"productCode": "p"})
	if err != nil || !rotated.IsZero() {
		t.Fatalf("sign v1: %v %v", rotated, err)
	}
	pemBytes, _ := m.PublicKeyPEM(ctx, 1)
	block, _ := pem.Decode(pemBytes)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil || pub.(*rsa.PublicKey).N.BitLen() != 2048 {
		t.Fatalf("public key: %v", err)
	}
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithValidMethods([]string{"PS256"})); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if v, err := m.Rotate(ctx); err != nil || v != 2 {
		t.Fatalf("rotate: %d %v", v, err)
	}
	if _, rotated, _ := m.Sign(ctx, 1, map[string]any{}); !rotated.Equal(now) {
		t.Fatalf("v1 after rotation: rotated at %v, want %v", rotated, now)
	}
	if _, _, err := m.Sign(ctx, 3, map[string]any{}); !errors.Is(err, mpmeter.ErrNoSuchKeyVersion) {
		t.Fatalf("unknown version: %v", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	st := open(t)
	for name, cfg := range map[string]keys.Config{
		"no store": {Clock: mpmeter.WallClock{}},
		"no clock": {Store: st},
	} {
		if _, err := keys.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
