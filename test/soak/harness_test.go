// Package soak runs a real `mpmeter serve` process against hostile clients
// (all on loopback, each bounded in time and connections): the attacks of
// the hardening issue one by one, each asserting the bound that holds it
// (RSS as VmHWM from /proc, open file descriptors, answer sizes), a
// graceful shutdown under a trickling upload, and a soak mixing them all
// while a well-behaved client meters and every record it was acknowledged
// must be stored.
package soak

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mpmeter/mpmeter/internal/testbin"
)

var binary string

func TestMain(m *testing.M) {
	testbin.Main(m, &binary)
}

// Demo credentials (seed/demo.yaml).
const (
	region       = "us-east-1"
	sellerKey    = "AKIAEXAMPLESELLER001"
	sellerSecret = "seller-secret"
	ec2Key       = "AKIAEXAMPLEEC2000001"
	ec2Secret    = "ec2-secret"
)

// server is one `mpmeter serve` process.
type server struct {
	URL, Admin, DB string
	cmd            *exec.Cmd
	logs           *testbin.Buffer
	exited         chan struct{}
	exitErr        error
}

var (
	endpointLine = regexp.MustCompile(`serving the AWS Marketplace Metering API at (http://\S+)`)
	adminLine    = regexp.MustCompile(`msg="admin listener" endpoint=(http://\S+)`)
)

// start runs mpmeter serve --demo on a fresh SQLite file with an admin
// listener and the given flags.
func start(t *testing.T, flags ...string) *server {
	t.Helper()
	db := filepath.Join(t.TempDir(), "soak.db")
	demo := "--demo"
	for _, f := range flags {
		if f == "--seed" {
			demo = "--demo=false"
		}
	}
	args := append([]string{"serve", demo, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--db", db,
		"--log-level", "info", "--key-encryption-key", "soak"}, flags...)
	cmd := exec.Command(binary, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MPMETER_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	logs := &testbin.Buffer{}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{DB: db, cmd: cmd, logs: logs, exited: make(chan struct{})}
	found, admin := make(chan string, 1), make(chan string, 1)
	scan := func(r io.Reader, re *regexp.Regexp, to chan string) {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			// Only the first lines are kept: the access log of a soak
			// is large.
			if logs.Len() < 1<<20 {
				logs.Write([]byte(sc.Text() + "\n"))
			}
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case to <- m[1]:
				default:
				}
			}
		}
	}
	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() { defer pipes.Done(); scan(stdout, endpointLine, found) }()
	go func() { defer pipes.Done(); scan(stderr, adminLine, admin) }()
	go func() {
		pipes.Wait()
		s.exitErr = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			t.Logf("server log (start):\n%.20000s", logs.String())
		}
	})
	for _, c := range []struct {
		to  *string
		ch  chan string
		why string
	}{{&s.URL, found, "endpoint"}, {&s.Admin, admin, "admin endpoint"}} {
		select {
		case *c.to = <-c.ch:
		case <-s.exited:
			t.Fatalf("server exited: %v\n%s", s.exitErr, logs.String())
		case <-time.After(60 * time.Second):
			t.Fatalf("no %s printed:\n%s", c.why, logs.String())
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(s.Admin + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("never healthy:\n%s", logs.String())
		}
	}
	return s
}

// status reads a field (kB) of /proc/<pid>/status: VmHWM is the peak RSS.
func (s *server) status(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc status", field)
	return 0
}

// peakRSSMB is the process's peak resident memory in MB.
func (s *server) peakRSSMB(t *testing.T) int64 { return s.status(t, "VmHWM") / 1024 }

// fds is the number of file descriptors the process has open.
func (s *server) fds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// healthy says whether the admin listener answers /healthz now.
func (s *server) healthy() bool {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(s.Admin + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// signedHeaders signs an awsJson request for target with body and returns
// its header lines (Host included), for clients that write the wire
// themselves.
func signedHeaders(t testing.TB, host, target, key, secret string, body []byte) string {
	r, _ := http.NewRequest(http.MethodPost, "http://"+host+"/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "AWSMPMeteringService."+target)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
		r, hex.EncodeToString(sum[:]), "aws-marketplace", region, time.Now()); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", host, len(body))
	for k, vs := range r.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// keyOnlyHeaders are the headers of a client that knows an access key id
// (they are not secret) but not its secret: the header phase passes, the
// signature would not.
func keyOnlyHeaders(host, key string, contentLength int) string {
	now := time.Now().UTC()
	return fmt.Sprintf("POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nContent-Type: application/x-amz-json-1.1\r\n"+
		"X-Amz-Target: AWSMPMeteringService.BatchMeterUsage\r\nX-Amz-Date: %s\r\n"+
		"Authorization: AWS4-HMAC-SHA256 Credential=%s/%s/%s/aws-marketplace/aws4_request, SignedHeaders=host;x-amz-date, Signature=%s\r\n\r\n",
		host, contentLength, now.Format("20060102T150405Z"), key, now.Format("20060102"), region, strings.Repeat("0", 64))
}

func hostOf(url string) string { return strings.TrimPrefix(url, "http://") }

// stallers opens n connections that each send head and then body but its
// last byte, and hold them until ctx ends.
func stallers(ctx context.Context, addr string, n int, head string, bodyLen int) *sync.WaitGroup {
	var wg sync.WaitGroup
	body := bytes.Repeat([]byte("{"), bodyLen-1)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				stop := context.AfterFunc(ctx, func() { c.Close() })
				c.Write([]byte(head))
				c.Write(body)
				io.Copy(io.Discard, c) // until the server answers/closes, or ctx ends
				stop()
				c.Close()
			}
		}()
	}
	return &wg
}

// sigterm stops s gracefully and returns how long it took and its exit
// error.
func (s *server) sigterm(t *testing.T, limit time.Duration) (time.Duration, error) {
	t.Helper()
	began := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return time.Since(began), s.exitErr
	case <-time.After(limit):
		t.Fatalf("still running %s after SIGTERM", limit)
	}
	return 0, nil
}
