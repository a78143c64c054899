// Package limits bounds what one listener lets clients hold: open
// connections, requests in flight, and how long a request may take. Beyond a
// bound the answer is a clean 503 (the caller's Reject writes it; the API
// writes AWS's ServiceUnavailable, which SDKs retry) rather than a refused
// or hanging connection, and the process keeps file descriptors and memory
// for the clients within the bounds, /healthz included.
//
// Connections over MaxConnections are still accepted, read once and
// answered 503 with "Connection: close"; only beyond twice MaxConnections
// are they closed at once without an answer, so that a flood cannot make the
// process run out of file descriptors either.
package limits

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults, documented in the README's configuration table.
const (
	DefaultMaxConnections = 4096
	DefaultMaxInFlight    = 512
	DefaultRequestTimeout = 30 * time.Second
	// ReadHeaderTimeout bounds how long a client may take to send a
	// request's headers; IdleTimeout how long a keep-alive connection may
	// wait for its next request.
	ReadHeaderTimeout = 10 * time.Second
	IdleTimeout       = 30 * time.Second
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes = 64 << 10
	// writeSlack is how much longer than the request timeout writing the
	// answer may take.
	writeSlack = 5 * time.Second
)

// Options are one listener's bounds. Zero values mean the defaults.
type Options struct {
	MaxConnections int
	MaxInFlight    int
	// RequestTimeout is each request's deadline: reading its body, the
	// handler's work (its context is cancelled then, so a stalled database
	// does not pin a slot), and, with a few seconds more, writing the answer.
	RequestTimeout time.Duration
	// Reject writes the 503 for a request beyond a bound; nil writes a
	// plain-text 503.
	Reject func(w http.ResponseWriter, r *http.Request)
	// Logger receives the HTTP server's own errors (at warn level).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Reject == nil {
		o.Reject = func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "service unavailable, retry", http.StatusServiceUnavailable)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Serve runs an http.Server for h on ln within o's bounds until the
// returned server is shut down. It returns at once; the server's Serve
// error (http.ErrServerClosed after Shutdown) goes to errc.
func Serve(ln net.Listener, h http.Handler, o Options, errc chan<- error) *http.Server {
	o = o.withDefaults()
	counted := &Listener{Listener: ln, max: int64(o.MaxConnections)}
	hs := &http.Server{
		Handler:           Handler(h, o),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       o.RequestTimeout,
		WriteTimeout:      o.RequestTimeout + writeSlack,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ConnContext:       connContext,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	go func() { errc <- hs.Serve(counted) }()
	return hs
}

// Handler bounds the requests in flight through h and gives each a
// deadline; requests on a connection over the connection bound are
// rejected, and the connection is closed after the answer.
func Handler(h http.Handler, o Options) http.Handler {
	o = o.withDefaults()
	slots := make(chan struct{}, o.MaxInFlight)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(*conn); ok && c.over {
			w.Header().Set("Connection", "close")
			o.Reject(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			o.Reject(w, r)
			return
		}
		defer func() { <-slots }()
		ctx, cancel := context.WithTimeout(r.Context(), o.RequestTimeout)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

type connKey struct{}

func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*conn); ok {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// Listener counts the connections it accepted that are still open. Beyond
// max they are marked (their requests are rejected); beyond twice max they
// are closed at once.
type Listener struct {
	net.Listener
	max  int64
	open atomic.Int64
}

// NewListener counts ln's connections against max (0: the default).
func NewListener(ln net.Listener, max int) *Listener {
	if max <= 0 {
		max = DefaultMaxConnections
	}
	return &Listener{Listener: ln, max: int64(max)}
}

// Open is the number of connections open now.
func (l *Listener) Open() int64 { return l.open.Load() }

// Accept returns the next connection within twice max.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		n := l.open.Add(1)
		if n > 2*l.max {
			l.open.Add(-1)
			c.Close()
			continue
		}
		return &conn{Conn: c, l: l, over: n > l.max}, nil
	}
}

type conn struct {
	net.Conn
	l     *Listener
	over  bool
	close sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.close.Do(func() { c.l.open.Add(-1) })
	return err
}
