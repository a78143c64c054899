// Package multinode runs real `mpmeter serve` processes: several on one
// PostgreSQL database, checking that they behave as one service (exactly
// once under concurrent retries spread over nodes, shared signing keys and
// virtual clock, no false success while the database is unreachable; these
// run when MPMETER_TEST_POSTGRES_DSN is set, as .ci/run does), and one on
// SQLite killed with SIGKILL under load.
package multinode

import (
	"bufio"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/mpmeter/mpmeter/internal/testbin"
	"github.com/mpmeter/mpmeter/mpmetertest"
)

// binary is the mpmeter built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv(mpmetertest.PostgresEnv) == "" {
		fmt.Println("multinode: MPMETER_TEST_POSTGRES_DSN not set; the PostgreSQL tests skip")
	}
	testbin.Main(m, &binary)
}

// freshDatabase creates an empty database on the test server and returns
// its URL; it is dropped when the test ends.
func freshDatabase(t *testing.T) *url.URL {
	t.Helper()
	u, err := url.Parse(mpmetertest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// openDB connects the test itself to the database, to count what the nodes
// stored.
func openDB(t *testing.T, u *url.URL) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// node is one `mpmeter serve` process.
type node struct {
	URL  string
	cmd  *exec.Cmd
	logs *testbin.Buffer
}

var endpointLine = regexp.MustCompile(`serving the AWS Marketplace Metering API at (http://\S+)`)

// startNodes starts n nodes on dbURL at once (so their migrations, seeding
// and key creation race, as they do when a fleet starts) and waits for all.
func startNodes(t *testing.T, n int, dbURL string, extra ...string) []*node {
	t.Helper()
	nodes := make([]*node, n)
	errs := make(chan error, n)
	for i := range nodes {
		go func(i int) {
			nd, err := startNode(t, dbURL, extra...)
			nodes[i] = nd
			errs <- err
		}(i)
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

func startNode(t *testing.T, dbURL string, extra ...string) (*node, error) {
	args := append([]string{"serve", "--demo", "--listen", "127.0.0.1:0", "--db", dbURL, "--log-level", "warn", "--key-encryption-key", "multinode"}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv()
	logs := &testbin.Buffer{}
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	nd := &node{cmd: cmd, logs: logs}
	t.Cleanup(func() {
		nd.cmd.Process.Kill()
		nd.cmd.Wait()
		if t.Failed() {
			t.Logf("node %s log:\n%s", nd.URL, logs.String())
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := endpointLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case nd.URL = <-found:
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("node did not start: %s", logs.String())
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(nd.URL + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nd, nil
			}
		}
	}
	return nil, fmt.Errorf("node %s never healthy: %s", nd.URL, logs.String())
}

// cleanEnv keeps MPMETER_* settings of the caller from leaking into nodes.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MPMETER_") {
			env = append(env, kv)
		}
	}
	return env
}

// proxy stands between the nodes and PostgreSQL so a test can make the
// database unreachable (Cut) and bring it back (Restore) without touching
// the server other tests use.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go p.serve()
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Cut drops every connection and refuses new ones: the database is gone.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (p *proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}
