// Package adminclient is a small typed client of mpmeter's admin API
// (/admin/v1/, docs/admin-api.md), what the mpmeter CLI talks to a running
// server with. The JSON shapes are the admin package's own types, so client
// and server cannot drift apart.
//
// Every error of a call is either an *Error (the server answered
// {"code", "message"} with a 4xx or 5xx) or an *UnreachableError (no answer:
// connection refused, timeout, a body that is not the API's).
//
// Areas added to the admin API later (usage, audit, faults, notifications)
// need no new plumbing here: Do sends any JSON request, List follows a list's
// pages, and Stream hands over a body to copy (CSV, JSON lines, a tail).
package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mpmeter/mpmeter/admin"
)

// Prefix is the admin API's path under the server's URL.
const Prefix = "/admin/v1"

// maxPage is the largest page the API serves (its limit's maximum).
const maxPage = 1000

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Client calls one server's admin API.
type Client struct {
	base  string // the server's URL, without a trailing slash
	token string
	http  *http.Client
}

// New is a client of the server at baseURL (http://127.0.0.1:8080)
// authenticating with the bearer token (none when empty). hc nil is
// http.DefaultClient.
func New(baseURL, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://HOST:PORT or https://HOST:PORT", baseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, http: hc}, nil
}

// Error is the API's answer to a failed call.
type Error struct {
	Status  int    // the HTTP status
	Code    string // validation_failed, unauthorized, not_found, conflict, already_exists, ...
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// UnreachableError is a call that got no answer of the API's: no
// connection, or an answer that is not the admin API's (a proxy's 502, a
// server that is not mpmeter).
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string { return "server " + e.URL + ": " + e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// StatusOf is err's HTTP status when the server answered it (0 otherwise).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Do sends method path?query with in as its JSON body (none when nil) and
// decodes a successful answer into out (ignored when nil).
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	resp, err := c.send(ctx, method, path, query, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err := io.Copy(io.Discard, resp.Body)
		return c.unreachable(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return &UnreachableError{URL: c.base, Err: fmt.Errorf("%s %s: the answer is not the admin API's JSON: %w", method, path, err)}
	}
	return nil
}

// Stream sends a GET and returns the successful answer's body for the
// caller to copy and close: exports (CSV, JSON lines, a seed file) are never
// held whole in memory.
func (c *Client) Stream(ctx context.Context, path string, query url.Values) (io.ReadCloser, error) {
	resp, err := c.send(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (c *Client) unreachable(err error) error {
	if err == nil {
		return nil
	}
	return &UnreachableError{URL: c.base, Err: err}
}

// send makes the call and turns an error answer into *Error; a
// successful response's body is the caller's to close.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	u := c.base + Prefix + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.unreachable(err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(raw, e) != nil || e.Code == "" {
		// Not the admin API's error: a proxy, or not mpmeter at all.
		msg := strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		return nil, &UnreachableError{URL: c.base, Err: fmt.Errorf("%s %s answered %s, not as the admin API does: %s", method, path, resp.Status, msg)}
	}
	return nil, e
}

// ListOptions bound a list.
type ListOptions struct {
	// Limit is the most items wanted; 0 follows every page to the end.
	Limit int
	// PageSize is the items asked for per request (1-1000; 0: 1000).
	PageSize int
}

// List follows a list's pages ({items, next_cursor}) from the first until
// the last, or until opts.Limit items.
func List[T any](ctx context.Context, c *Client, path string, query url.Values, opts ListOptions) ([]T, error) {
	q := url.Values{}
	for k, v := range query {
		if len(v) > 0 && v[0] != "" {
			q[k] = v
		}
	}
	items := []T{}
	for {
		page := maxPage
		if opts.PageSize > 0 {
			page = min(maxPage, opts.PageSize)
		}
		if opts.Limit > 0 {
			page = min(page, opts.Limit-len(items))
		}
		q.Set("limit", strconv.Itoa(page))
		var l admin.List[T]
		if err := c.Do(ctx, http.MethodGet, path, q, nil, &l); err != nil {
			return nil, err
		}
		items = append(items, l.Items...)
		if l.NextCursor == "" || (opts.Limit > 0 && len(items) >= opts.Limit) {
			return items, nil
		}
		q.Set("cursor", l.NextCursor)
	}
}

// versioned is the optional body of state changes: {"version": n}, or
// nothing when n is 0 (apply to whatever is current).
func versioned(n int64) any {
	if n == 0 {
		return nil
	}
	return map[string]int64{"version": n}
}

func esc(s string) string { return url.PathEscape(s) }
