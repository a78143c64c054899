package limits_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mpmeter/mpmeter/limits"
)

func start(t *testing.T, h http.Handler, o limits.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	hs := limits.Serve(ln, h, o, errc)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// get sends one request on a new connection and returns the answer.
func get(t *testing.T, c net.Conn) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })

// Requests beyond MaxInFlight are answered 503 at once; the slot is free
// again when the request in flight ends.
func TestInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			entered <- struct{}{}
			<-release
		}
	})
	addr := start(t, h, limits.Options{MaxInFlight: 1})
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get("http://" + addr + "/block")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	if resp := get(t, dial(t, addr)); resp.StatusCode != 503 {
		t.Errorf("second request in flight: %d", resp.StatusCode)
	}
	close(release)
	<-done
	if resp := get(t, dial(t, addr)); resp.StatusCode != 200 {
		t.Errorf("after the first ended: %d", resp.StatusCode)
	}
}

// Connections over MaxConnections get a 503 and are closed; beyond twice
// the bound they are closed unanswered. Closing connections frees places.
func TestConnections(t *testing.T) {
	addr := start(t, ok, limits.Options{MaxConnections: 2})
	first, second := dial(t, addr), dial(t, addr)
	if resp := get(t, first); resp.StatusCode != 200 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	get(t, second)
	// Two more, silent: over the bound, but within twice it; the server
	// accepts connections in order, so the fifth comes after them.
	third, fourth := dial(t, addr), dial(t, addr)
	fifth := dial(t, addr)
	fifth.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(fifth, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := bufio.NewReader(fifth).ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("fifth connection was answered (or left open): %v", err)
	}
	resp := get(t, third)
	if resp.StatusCode != 503 || !resp.Close {
		t.Errorf("third connection: %d, close %v", resp.StatusCode, resp.Close)
	}
	fourth.Close()
	// The kept-alive first connection still works.
	if resp := get(t, first); resp.StatusCode != 200 {
		t.Errorf("first again: %d", resp.StatusCode)
	}
	first.Close()
	second.Close()
	// The server notices closed connections asynchronously.
	for i := 0; ; i++ {
		resp := get(t, dial(t, addr))
		if resp.StatusCode == 200 {
			break
		}
		if i == 100 {
			t.Fatal("places never freed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A request's context has the request timeout as its deadline.
func TestRequestDeadline(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dl, ok := r.Context().Deadline()
		if !ok || time.Until(dl) > time.Minute {
			http.Error(w, "no deadline", 500)
		}
	})
	addr := start(t, h, limits.Options{RequestTimeout: time.Minute})
	if resp := get(t, dial(t, addr)); resp.StatusCode != 200 {
		t.Errorf("got %d", resp.StatusCode)
	}
}

// A custom Reject writes the answer (the API's AWS envelope).
func TestReject(t *testing.T) {
	addr := start(t, ok, limits.Options{MaxConnections: 1, Reject: func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		w.Write([]byte(`{"__type":"ServiceUnavailable"}`))
	}})
	dial(t, addr)
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !strings.Contains(string(b), "ServiceUnavailable") {
		t.Errorf("got %d %s", resp.StatusCode, b)
	}
}
