package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The bounds the attacks must stay under, on the 2-core CI machine. The
// unbounded server reached 1.8 GB (stalled bodies) and ~300 MB per
// amplified request.
const (
	maxPeakRSSMB = 250
)

// 1,000 connections each sending 1 MB − 1 and stalling, without
// credentials: nothing is read before authentication, so the bodies never
// reach memory.
func TestStalledBodiesWithoutCredentials(t *testing.T) {
	s := start(t, "--max-connections", "1100")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	head := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048575\r\nX-Amz-Target: AWSMPMeteringService.BatchMeterUsage\r\n\r\n"
	wg := stallers(ctx, hostOf(s.URL), 1000, head, 1<<20-1)
	<-ctx.Done()
	wg.Wait()
	if !s.healthy() {
		t.Error("/healthz did not answer")
	}
	if rss := s.peakRSSMB(t); rss > maxPeakRSSMB {
		t.Errorf("peak RSS %d MB, bound %d MB", rss, maxPeakRSSMB)
	} else {
		t.Logf("peak RSS %d MB", rss)
	}
}

// The same with a known access key id (not its secret): the header phase
// passes, so bodies are read, but within the byte budget; the rest answer
// 503 at once.
func TestStalledBodiesWithKnownKey(t *testing.T) {
	s := start(t, "--max-connections", "1100", "--max-in-flight", "1100", "--max-body-memory", "33554432")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	wg := stallers(ctx, hostOf(s.URL), 1000, keyOnlyHeaders(hostOf(s.URL), sellerKey, 1<<20-1), 1<<20-1)
	<-ctx.Done()
	wg.Wait()
	if !s.healthy() {
		t.Error("/healthz did not answer")
	}
	if rss := s.peakRSSMB(t); rss > maxPeakRSSMB {
		t.Errorf("peak RSS %d MB, bound %d MB", rss, maxPeakRSSMB)
	} else {
		t.Logf("peak RSS %d MB", rss)
	}
}

// emptyRecords is a 1 MB BatchMeterUsage of {} records.
func emptyRecords() []byte {
	var b strings.Builder
	b.WriteString(`{"ProductCode":"exampleprod1","UsageRecords":[{}`)
	for b.Len() < 1<<20-10 {
		b.WriteString(",{}")
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// A 1 MB batch of 340,000 {} records, signed with any valid key, answers
// one short ValidationException, and concurrent ones stay within memory.
func TestValidationDoesNotAmplify(t *testing.T) {
	s := start(t)
	body := emptyRecords()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var maxAnswer int
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				// A buyer workload's key: BatchMeterUsage is the seller's,
				// but validation comes first.
				c, err := net.Dial("tcp", hostOf(s.URL))
				if err != nil {
					t.Error(err)
					return
				}
				c.Write([]byte(signedHeaders(t, hostOf(s.URL), "BatchMeterUsage", ec2Key, ec2Secret, body)))
				c.Write(body)
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Error(err)
					c.Close()
					return
				}
				answer, _ := io.ReadAll(resp.Body)
				c.Close()
				var e struct {
					Type string `json:"__type"`
				}
				json.Unmarshal(answer, &e)
				if resp.StatusCode != 400 || e.Type != "ValidationException" {
					t.Errorf("answered %d %.200s", resp.StatusCode, answer)
				}
				mu.Lock()
				maxAnswer = max(maxAnswer, len(answer))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if maxAnswer > 2048 {
		t.Errorf("answers of up to %d bytes", maxAnswer)
	}
	if rss := s.peakRSSMB(t); rss > maxPeakRSSMB {
		t.Errorf("peak RSS %d MB, bound %d MB", rss, maxPeakRSSMB)
	} else {
		t.Logf("peak RSS %d MB; answers up to %d bytes", rss, maxAnswer)
	}
}

// 3,000 idle connections against a bound of 500: the process keeps at
// most twice the bound open, and the admin listener still answers.
func TestIdleConnectionFlood(t *testing.T) {
	const bound = 500
	s := start(t, "--max-connections", "500")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 3000; i++ {
		c, err := net.DialTimeout("tcp", hostOf(s.URL), 5*time.Second)
		if err != nil {
			break // the client's own limits: enough
		}
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond) // let the server accept what it will
	if n := s.fds(t); n > 2*bound+50 {
		t.Errorf("%d file descriptors open with %d idle connections; bound %d", n, len(conns), 2*bound+50)
	} else {
		t.Logf("%d connections opened, the server holds %d file descriptors", len(conns), n)
	}
	if !s.healthy() {
		t.Error("the admin listener's /healthz did not answer")
	}
	// Requests on connections over the bound answer 503, not silence.
	c := conns[len(conns)/2+bound/2]
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode != 503 {
		t.Errorf("a connection over the bound answered %d", resp.StatusCode)
	}
}

// SIGTERM while a client trickles its upload: the server drains within
// --shutdown-timeout, closes what is stuck and exits 0.
func TestShutdownWithTricklingClient(t *testing.T) {
	s := start(t, "--shutdown-timeout", "2s")
	body := []byte(`{"RegistrationToken":"demo-token-1"}` + strings.Repeat(" ", 4000))
	c, err := net.Dial("tcp", hostOf(s.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(signedHeaders(t, hostOf(s.URL), "ResolveCustomer", sellerKey, sellerSecret, body)))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for _, b := range body {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	took, err := s.sigterm(t, 2*time.Second+10*time.Second)
	if err != nil {
		t.Errorf("exit: %v (after %s)", err, took)
	}
	t.Logf("exited after %s", took)
}
