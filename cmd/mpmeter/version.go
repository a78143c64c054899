package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/mpmeter/mpmeter/internal/buildinfo"
)

// A release build may name itself with
//
//	go build -ldflags "-X main.version=v1.2.0 -X main.commit=$(git rev-parse HEAD) -X main.date=$(date -u +%FT%TZ)"
//
// Set only by the linker, never at run time; empty means what the toolchain
// recorded (buildinfo.Read), which is what `go install ...@version` gives.
var version, commit, date string

func build() buildinfo.Info {
	return buildinfo.Read(buildinfo.Info{Version: version, Commit: commit, Date: date})
}

// versionCommand: "version [--json]".
func versionCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the build as JSON (what /healthz reports)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	b := build()
	if *asJSON {
		return json.NewEncoder(stdout).Encode(b)
	}
	fmt.Fprintf(stdout, "mpmeter %s\ncommit  %s\ndate    %s\ngo      %s\n", b.Version, b.Commit, b.Date, b.Go)
	if b.Modified {
		fmt.Fprintln(stdout, "built from a work tree with uncommitted changes")
	}
	return nil
}

// healthcheckCommand: "healthcheck [--url URL]" exits 0 when a server's
// /healthz answers 200 and 1 otherwise: a container HEALTHCHECK for images
// without curl (FROM scratch). By default it asks the API listener of a
// server started with the same environment (MPMETER_LISTEN), on loopback.
func healthcheckCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "the /healthz URL to check (default: http://127.0.0.1:PORT/healthz, PORT from MPMETER_LISTEN, else 8080)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	if *url == "" {
		*url = defaultHealthURL(getenv("MPMETER_LISTEN"))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %s", *url, resp.Status, body)
	}
	_, err = stdout.Write(body)
	return err
}

// defaultHealthURL is the loopback /healthz of a server listening on
// listen ("0.0.0.0:8080" inside the image, "127.0.0.1:8080" by default).
func defaultHealthURL(listen string) string {
	port := "8080"
	if _, p, err := net.SplitHostPort(listen); err == nil && p != "" && p != "0" {
		port = p
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz"
}

// reachableEndpoint is the URL a client on this host uses for a server
// listening at endpoint: a wildcard address (0.0.0.0:8080 in the image)
// is reached on loopback.
func reachableEndpoint(endpoint string) string {
	host, port, err := net.SplitHostPort(strings.TrimPrefix(endpoint, "http://"))
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsUnspecified() {
		return endpoint
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port)
}
