package seal_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mpmeter/mpmeter/seal"
)

func cheap() seal.Params {
	p := seal.NewParams()
	p.Time, p.MemoryKiB, p.Threads = 1, 256, 1
	return p
}

func TestSealOpen(t *testing.T) {
	p := cheap()
	s, err := seal.New("passphrase", p)
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.SealString("secret", "t.c:1"), s.SealString("secret", "t.c:1")
	if !seal.IsSealed(a) || a == b || strings.Contains(a, "secret") {
		t.Fatalf("sealed %q and %q: want prefixed, random nonces, no plain text", a, b)
	}
	if got, err := s.OpenString(a, "t.c:1"); err != nil || got != "secret" {
		t.Fatalf("Open: %q %v", got, err)
	}
	if _, err := s.OpenString(a, "t.c:2"); !errors.Is(err, seal.ErrWrongKey) {
		t.Errorf("other place: %v", err)
	}
	other, _ := seal.New("other passphrase", p)
	if _, err := other.OpenString(a, "t.c:1"); !errors.Is(err, seal.ErrWrongKey) {
		t.Errorf("other passphrase: %v", err)
	}
	salted, _ := seal.New("passphrase", cheap()) // same passphrase, another salt
	if _, err := salted.OpenString(a, "t.c:1"); !errors.Is(err, seal.ErrWrongKey) {
		t.Errorf("other salt: %v", err)
	}
	if !s.VerifyCheck(s.Check()) || other.VerifyCheck(s.Check()) {
		t.Error("check value")
	}
	for _, bad := range []string{"secret", seal.Prefix + "!!!", seal.Prefix + "AAAA"} {
		if _, err := s.OpenString(bad, "t.c:1"); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

func TestParams(t *testing.T) {
	if _, err := seal.New("", cheap()); err == nil {
		t.Error("empty passphrase accepted")
	}
	p := cheap()
	p.KDF = "sha256"
	if _, err := seal.New("k", p); err == nil {
		t.Error("unknown KDF accepted")
	}
	p = cheap()
	p.Salt = nil
	if _, err := seal.New("k", p); err == nil {
		t.Error("no salt accepted")
	}
	st := seal.Stored{Params: cheap(), Check: "c"}
	back, err := seal.DecodeStored(st.Encode())
	if err != nil || string(back.Salt) != string(st.Salt) || back.Check != "c" || back.Time != 1 {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

func TestLegacySigningKey(t *testing.T) {
	der := []byte("not really DER, but bytes")
	old := seal.SealLegacySigningKeyForTest("kek", 3, der)
	if !seal.IsLegacySigningKey(old) {
		t.Fatal("not recognised")
	}
	plain, err := seal.OpenLegacySigningKey("kek", 3, old)
	if err != nil || !strings.Contains(string(plain), "BEGIN PRIVATE KEY") {
		t.Fatalf("%s %v", plain, err)
	}
	if _, err := seal.OpenLegacySigningKey("other", 3, old); !errors.Is(err, seal.ErrWrongKey) {
		t.Errorf("wrong passphrase: %v", err)
	}
	if _, err := seal.OpenLegacySigningKey("kek", 4, old); !errors.Is(err, seal.ErrWrongKey) {
		t.Errorf("wrong version: %v", err)
	}
}

// BenchmarkOpen: what a marketplace-cache miss adds to an access key lookup
// per sealed field.
func BenchmarkOpen(b *testing.B) {
	s, _ := seal.New("passphrase", cheap())
	v := s.SealString("bench-secret-0123456789abcdefghijklmn", "access_keys.secret:AKIABENCH")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.OpenString(v, "access_keys.secret:AKIABENCH"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeriveDefault: the key derivation with the default parameters,
// paid once per process start.
func BenchmarkDeriveDefault(b *testing.B) {
	p := seal.NewParams()
	for b.Loop() {
		if _, err := seal.New("passphrase", p); err != nil {
			b.Fatal(err)
		}
	}
}
