package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	mm "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/aws/aws-sdk-go-v2/service/marketplacemetering/types"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key,
// and returns their paths and a pool trusting the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mpmeter test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) find(re *regexp.Regexp) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := re.FindStringSubmatch(s.b.String()); m != nil {
		return m[1]
	}
	return ""
}

// With --tls-cert and --tls-key both listeners serve HTTPS: aws-sdk-go-v2
// trusting the certificate through a custom CA pool meters over it, and the
// admin listener answers /healthz over TLS too.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, []string{"--demo", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
			"--tls-cert", certFile, "--tls-key", keyFile, "--log-format", "json"}, &stdout, &stderr, func(string) string { return "" })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var endpoint, admin string
	for deadline := time.Now().Add(30 * time.Second); (endpoint == "" || admin == "") && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		endpoint = stdout.find(regexp.MustCompile(`Metering API at (\S+)`))
		admin = stderr.find(regexp.MustCompile(`"msg":"admin listener","endpoint":"([^"]+)"`))
	}
	if endpoint == "" || admin == "" {
		t.Fatalf("no endpoints: %s / %s", stdout.b.String(), stderr.b.String())
	}
	if endpoint[:8] != "https://" || admin[:8] != "https://" {
		t.Fatalf("endpoints %s, %s: want https", endpoint, admin)
	}

	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	})
	c := mm.New(mm.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), HTTPClient: httpClient, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLESELLER001", "seller-secret", ""),
	})
	out, err := c.BatchMeterUsage(ctx, &mm.BatchMeterUsageInput{ProductCode: aws.String("exampleprod1"), UsageRecords: []types.UsageRecord{{
		CustomerIdentifier: aws.String("cust-example-1"), Dimension: aws.String("users"), Quantity: aws.Int32(3), Timestamp: aws.Time(time.Now()),
	}}})
	if err != nil || len(out.Results) != 1 || out.Results[0].Status != types.UsageRecordResultStatusSuccess {
		t.Fatalf("BatchMeterUsage over TLS: %+v %v", out, err)
	}

	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := tlsClient.Get(admin + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin /healthz over TLS: %v %v", resp, err)
	}
	resp.Body.Close()
	// Plain HTTP to the TLS listener is not served.
	if resp, err := http.Get("http" + endpoint[5:] + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Fatal("the API listener answered plain HTTP")
	}
}

func TestTLSFlagsGoTogether(t *testing.T) {
	err := serve(context.Background(), []string{"--tls-cert", "x.pem"}, &bytes.Buffer{}, &bytes.Buffer{}, func(string) string { return "" })
	if err == nil || !regexp.MustCompile(`--tls-cert and --tls-key go together`).MatchString(err.Error()) {
		t.Fatalf("got %v", err)
	}
}
