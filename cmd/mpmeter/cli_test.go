package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	mm "github.com/aws/aws-sdk-go-v2/service/marketplacemetering"
	"github.com/spf13/cobra"

	"github.com/mpmeter/mpmeter/admin"
	"github.com/mpmeter/mpmeter/internal/adminclient"
	"github.com/mpmeter/mpmeter/mpmetertest"
)

const cliToken = "cli-test-token"

// cliRunner runs mpmeter commands with an environment of its own and
// answers their output and exit code.
type cliRunner struct {
	t   *testing.T
	env map[string]string
}

func (r cliRunner) run(args ...string) (stdout, stderr string, code int) {
	r.t.Helper()
	var out, errOut bytes.Buffer
	err := run(r.t.Context(), args, &out, &errOut, func(k string) string { return r.env[k] })
	if err != nil && !errors.Is(err, errUsage) {
		fmt.Fprintln(&errOut, "mpmeter:", err)
	}
	return out.String(), errOut.String(), exitCode(err)
}

// ok runs a command that must succeed and answers its stdout.
func (r cliRunner) ok(args ...string) string {
	r.t.Helper()
	stdout, stderr, code := r.run(args...)
	if code != 0 {
		r.t.Fatalf("mpmeter %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// json runs a command with -o json and decodes its output into v.
func (r cliRunner) json(v any, args ...string) {
	r.t.Helper()
	out := r.ok(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		r.t.Fatalf("mpmeter %s -o json printed %q: %v", strings.Join(args, " "), out, err)
	}
}

// fails runs a command that must exit with code; its stderr is answered.
func (r cliRunner) fails(code int, args ...string) string {
	r.t.Helper()
	stdout, stderr, got := r.run(args...)
	if got != code {
		r.t.Fatalf("mpmeter %s: exit %d, want %d\n%s%s", strings.Join(args, " "), got, code, stdout, stderr)
	}
	return stderr
}

// A real server (serve --demo on a port of its own) managed through the
// CLI's commands, every group; then the data plane answers what the CLI
// created, through a real AWS client.
func TestCLIAgainstServer(t *testing.T) {
	endpoint := startServe(t, "--demo", "--admin-token", cliToken, "--db", filepath.Join(t.TempDir(), "cli.db"))
	r := cliRunner{t, map[string]string{"MPMETER_SERVER": endpoint, "MPMETER_ADMIN_TOKEN": cliToken}}

	t.Run("accounts", func(t *testing.T) {
		r := cliRunner{t, r.env}
		out := r.ok("accounts", "create", "210987654321", "--name", "New Buyer")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "New Buyer") {
			t.Fatalf("create printed:\n%s", out)
		}
		var acc admin.Account
		r.json(&acc, "accounts", "get", "210987654321")
		if acc.Name != "New Buyer" || acc.Version != 1 {
			t.Fatalf("get: %+v", acc)
		}
		var accs []admin.Account
		r.json(&accs, "accounts", "list")
		if len(accs) != 5 || accs[0].ID != mpmetertest.SellerAccount && accs[0].ID != "111122223333" {
			t.Fatalf("list: %+v", accs)
		}
		r.json(&accs, "accounts", "list", "--limit", "2")
		if len(accs) != 2 {
			t.Fatalf("list --limit 2: %+v", accs)
		}
		r.json(&acc, "accounts", "rename", "210987654321", "Renamed")
		if acc.Name != "Renamed" || acc.Version != 2 {
			t.Fatalf("rename: %+v", acc)
		}
		r.fails(exitConflict, "accounts", "rename", "210987654321", "Stale", "--version", "1")
		r.fails(exitConflict, "accounts", "create", "210987654321")
		r.fails(exitNotFound, "accounts", "get", "999999999999")
		r.fails(exitUsage, "accounts", "create", "12") // the server's validation_failed
		if out := r.ok("accounts", "list", "-o", "yaml"); !strings.Contains(out, "- id: \"111122223333\"") {
			t.Fatalf("-o yaml:\n%s", out)
		}
	})

	t.Run("access-keys", func(t *testing.T) {
		r := cliRunner{t, r.env}
		var k admin.NewAccessKey
		r.json(&k, "access-keys", "create", "--account", "444455556666", "--workload", "i-0cli", "--platform", "ec2", "--region", "us-east-1", "--credentials-endpoint")
		if len(k.SecretAccessKey) != 40 || k.CredentialsToken == "" || k.Workload == nil || k.Workload.ID != "i-0cli" {
			t.Fatalf("create: %+v", k)
		}
		out := r.ok("access-keys", "get", k.ID)
		if strings.Contains(out, k.SecretAccessKey) || !strings.Contains(out, "ec2:i-0cli@us-east-1") {
			t.Fatalf("get shows the secret or lacks the workload:\n%s", out)
		}
		var ks []admin.AccessKey
		r.json(&ks, "access-keys", "list", "--workload", "i-0cli")
		if len(ks) != 1 || ks[0].ID != k.ID {
			t.Fatalf("list --workload: %+v", ks)
		}
		var revoked admin.AccessKey
		r.json(&revoked, "access-keys", "revoke", k.ID)
		if revoked.RevokedAt == nil {
			t.Fatalf("revoke: %+v", revoked)
		}
		r.fails(exitUsage, "access-keys", "create") // --account missing
		r.fails(exitUsage, "access-keys", "create", "--account", "444455556666", "--workload", "i-0x")
		r.fails(exitNotFound, "access-keys", "revoke", "AKIANOSUCHKEY0000001")
	})

	var token admin.IssuedToken
	t.Run("products, subscriptions, tokens", func(t *testing.T) {
		r := cliRunner{t, r.env}
		var p admin.Product
		r.json(&p, "products", "create", "--code", "cliprod1", "--seller", "111122223333", "--type", "saas",
			"--dimension", "users", "--dimension", "gigabytes:GB:0.25:Stored: per month")
		want := []admin.Dimension{{Name: "users"}, {Name: "gigabytes", Unit: "GB", PricePerUnit: "0.25", Description: "Stored: per month"}}
		if p.Code != "cliprod1" || fmt.Sprint(p.Dimensions) != fmt.Sprint(want) {
			t.Fatalf("create: %+v", p)
		}
		r.json(&p, "products", "update", "cliprod1", "--dimension", "users:Users:0.05", "--dimension", "gigabytes")
		if p.Version != 2 || p.Dimensions[0].PricePerUnit != "0.05" {
			t.Fatalf("update: %+v", p)
		}
		if out := r.ok("products", "list"); !strings.Contains(out, "cliprod1") || !strings.Contains(out, "users (Users $0.05), gigabytes") {
			t.Fatalf("list:\n%s", out)
		}
		r.fails(exitUsage, "products", "create", "--code", "cliprod2", "--seller", "111122223333", "--type", "saas", "--dimension", "x:u:1,5") // bad price
		r.fails(exitNotFound, "products", "get", "nosuchprod")

		var s admin.Subscription
		r.json(&s, "subscriptions", "create", "--account", "210987654321", "--product", "cliprod1", "--offer-id", "offer-cli", "--free-trial")
		if s.Status != "active" || s.OfferID != "offer-cli" || !s.FreeTrial || s.CustomerIdentifier == "" {
			t.Fatalf("create: %+v", s)
		}
		r.fails(exitConflict, "subscriptions", "create", "--account", "210987654321", "--product", "cliprod1")
		var ss []admin.Subscription
		r.json(&ss, "subscriptions", "list", "--product", "cliprod1", "--status", "active")
		if len(ss) != 1 || ss[0].AgreementID != s.AgreementID {
			t.Fatalf("list: %+v", ss)
		}
		r.json(&s, "subscriptions", "cancel", "--account", "210987654321", "--product", "cliprod1")
		if s.Status != "cancelled" || s.EndTime == nil {
			t.Fatalf("cancel by account and product: %+v", s)
		}
		r.json(&s, "subscriptions", "expire", s.AgreementID)
		r.fails(exitConflict, "subscriptions", "cancel", s.AgreementID) // expired cannot cancel
		r.json(&s, "subscriptions", "reactivate", s.AgreementID)
		if s.Status != "active" {
			t.Fatalf("reactivate: %+v", s)
		}
		r.json(&s, "subscriptions", "get", s.AgreementID)
		r.fails(exitNotFound, "subscriptions", "get", "agmt-nosuch")
		r.fails(exitNotFound, "subscriptions", "cancel", "--account", "210987654321", "--product", "exampleprod1")
		r.fails(exitUsage, "subscriptions", "cancel")
		// exampleca1 (concurrent agreements): the demo buyer holds two.
		if stderr := r.fails(exitUsage, "tokens", "issue", "--account", "444455556666", "--product", "exampleca1"); !strings.Contains(stderr, "holds 2 agreements") {
			t.Fatalf("ambiguous: %s", stderr)
		}

		r.json(&token, "tokens", "issue", "--account", "210987654321", "--product", "cliprod1", "--expires-in", "30m")
		if token.Token == "" || token.ProductCode != "cliprod1" || token.ExpiresAt.Sub(token.CreatedAt).Minutes() != 30 {
			t.Fatalf("issue: %+v", token)
		}
		var rt admin.RegistrationToken
		r.json(&rt, "tokens", "get", token.ID)
		if rt.ID != token.ID {
			t.Fatalf("get: %+v", rt)
		}
		if out := r.ok("tokens", "list"); !strings.Contains(out, token.ID) || strings.Contains(out, token.Token) {
			t.Fatalf("list shows the value or lacks the id:\n%s", out)
		}
		var other admin.IssuedToken
		r.json(&other, "tokens", "issue", "--agreement", s.AgreementID)
		r.json(&rt, "tokens", "expire", other.ID)
		r.fails(exitNotFound, "tokens", "get", "rt-nosuch")
	})

	t.Run("the data plane resolves the CLI's token", func(t *testing.T) {
		c := mm.NewFromConfig(mpmetertest.AWSConfig(endpoint, mpmetertest.Region, mpmetertest.SellerKey, mpmetertest.SellerSecret))
		out, err := c.ResolveCustomer(t.Context(), &mm.ResolveCustomerInput{RegistrationToken: aws.String(token.Token)})
		if err != nil || aws.ToString(out.ProductCode) != "cliprod1" || aws.ToString(out.CustomerAWSAccountId) != "210987654321" {
			t.Fatalf("ResolveCustomer of the CLI's token: %+v %v", out, err)
		}
	})

	t.Run("signing-keys, clock, export-seed", func(t *testing.T) {
		r := cliRunner{t, r.env}
		var ks []admin.SigningKey
		r.json(&ks, "signing-keys", "list")
		var k admin.SigningKey
		r.json(&k, "signing-keys", "rotate")
		if k.Version != len(ks)+1 || !k.Current {
			t.Fatalf("rotate: %+v after %+v", k, ks)
		}
		if out := r.ok("clock", "set", "2030-01-02T03:04:05Z"); !strings.Contains(out, "service clock: 2030-01-02T03:04:05Z") {
			t.Fatalf("clock set: %s", out)
		}
		var c admin.Clock
		r.json(&c, "clock", "advance", "7h")
		if c.Now.Format("2006-01-02T15") != "2030-01-02T10" || !c.Virtual {
			t.Fatalf("clock advance: %+v", c)
		}
		if out := r.ok("clock", "advance", "-o", "json", "--", "-1h"); !strings.Contains(out, `"offset": "`) {
			t.Fatalf("clock advance -- -1h: %s", out)
		}
		r.json(&c, "clock", "show")
		if c.Now.Format("2006-01-02T15") != "2030-01-02T09" {
			t.Fatalf("clock show: %+v", c)
		}
		if out := r.ok("clock", "reset"); !strings.Contains(out, "offset 0s") {
			t.Fatalf("clock reset: %s", out)
		}
		r.fails(exitUsage, "clock", "advance", "soon")

		out := r.ok("export-seed")
		if !strings.Contains(out, "code: cliprod1") || !strings.Contains(out, "210987654321") {
			t.Fatalf("export-seed:\n%s", out)
		}
		file := filepath.Join(t.TempDir(), "seed.yaml")
		r.ok("export-seed", "-f", file)
		if b, err := os.ReadFile(file); err != nil || string(b) != out {
			t.Fatalf("export-seed -f wrote %d bytes (%v), stdout had %d", len(b), err, len(out))
		}
		if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
			t.Fatalf("the seed file (secrets included) is %v", st.Mode())
		}
		if out := r.ok("seed", "check", file); !strings.Contains(out, "ok (") {
			t.Fatalf("the exported seed is no seed: %s", out)
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		r := cliRunner{t, r.env}
		r.fails(exitUsage, "accounts", "list", "--no-such-flag")
		r.fails(exitUsage, "accounts", "get")
		r.fails(exitUsage, "accounts", "frobnicate")
		r.fails(exitUsage, "frobnicate")
		r.fails(exitUsage, "accounts")
		r.fails(exitUsage, "accounts", "list", "-o", "xml")
		r.fails(exitUsage, "accounts", "list", "--server", "127.0.0.1:8080")
		if stderr := r.fails(exitServer, "accounts", "list", "--server", "http://127.0.0.1:1"); !strings.Contains(stderr, "connection refused") {
			t.Fatalf("server down: %s", stderr)
		}
		if stderr := r.fails(exitOther, "accounts", "list", "--token", "wrong"); !strings.Contains(stderr, "unauthorized") {
			t.Fatalf("wrong token: %s", stderr)
		}
		// The flag beats the environment.
		r.ok("accounts", "list", "--server", endpoint, "--token", cliToken)
		none := cliRunner{t, map[string]string{"MPMETER_SERVER": endpoint}}
		none.fails(exitOther, "accounts", "list")
	})
}

// clock: --db on the command line means the database even with
// MPMETER_SERVER set; --server or MPMETER_SERVER otherwise means the server.
func TestClockChoosesServerOrDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "c.db")
	r := cliRunner{t, map[string]string{"MPMETER_SERVER": "http://127.0.0.1:1"}}
	if out := r.ok("clock", "set", "2020-02-03T04:05:06Z", "--db", db); !strings.Contains(out, "2020-02-03T04:05") {
		t.Fatalf("--db with MPMETER_SERVER set: %s", out)
	}
	r.fails(exitServer, "clock", "show") // MPMETER_SERVER
	dbOnly := cliRunner{t, map[string]string{"MPMETER_DB": db}}
	if out := dbOnly.ok("clock", "show"); !strings.Contains(out, "2020-02-03T04:05") {
		t.Fatalf("MPMETER_DB: %s", out)
	}
	dbOnly.fails(exitServer, "clock", "show", "--server", "http://127.0.0.1:1")
}

// Every command answers --help with its usage, exit 0.
func TestEveryCommandHasHelp(t *testing.T) {
	r := cliRunner{t, map[string]string{}}
	var walk func(cmd *cobra.Command, path []string)
	n := 0
	walk = func(cmd *cobra.Command, path []string) {
		if cmd.Name() == "help" || cmd.Hidden { // bench: the moved-notice, TestBenchMoved
			return
		}
		out := r.ok(append(path, "--help")...)
		if !strings.Contains(out, "Usage:") || !strings.Contains(out, strings.Join(append([]string{"mpmeter"}, path...), " ")) {
			t.Errorf("mpmeter %s --help printed:\n%s", strings.Join(path, " "), out)
		}
		n++
		for _, sub := range cmd.Commands() {
			walk(sub, append(append([]string{}, path...), sub.Name()))
		}
	}
	walk(newRoot(&app{getenv: func(string) string { return "" }}), nil)
	if n < 40 {
		t.Fatalf("walked %d commands", n)
	}
	// The flags of a command that keeps its own parser are in its help.
	for args, want := range map[string]string{"serve": "--usage-window", "keys public": "-key-encryption-key", "audit list": "--request-id", "clock set": "--db"} {
		if out := r.ok(append(strings.Fields(args), "-h")...); !strings.Contains(out, want) {
			t.Errorf("mpmeter %s -h lacks %s:\n%s", args, want, out)
		}
	}
}

func TestCompletion(t *testing.T) {
	r := cliRunner{t, map[string]string{}}
	if out := r.ok("completion", "bash"); !strings.Contains(out, "__start_mpmeter") {
		t.Fatalf("completion bash:\n%.300s", out)
	}
	for _, shell := range []string{"zsh", "fish", "powershell"} {
		if out := r.ok("completion", shell); !strings.Contains(out, "mpmeter") {
			t.Errorf("completion %s:\n%.300s", shell, out)
		}
	}
	// Subcommands complete.
	if out := r.ok("__complete", "subscriptions", ""); !strings.Contains(out, "reactivate") || !strings.Contains(out, "cancel") {
		t.Fatalf("completing subscriptions:\n%s", out)
	}
}

func TestExitCodes(t *testing.T) {
	for err, want := range map[error]int{
		nil:                             exitOK,
		errors.New("disk full"):         exitOther,
		errUsage:                        exitUsage,
		usagef("bad"):                   exitUsage,
		notFoundError{"none"}:           exitNotFound,
		&adminclient.Error{Status: 400}: exitUsage,
		&adminclient.Error{Status: 401}: exitOther,
		&adminclient.Error{Status: 404}: exitNotFound,
		&adminclient.Error{Status: 409}: exitConflict,
		&adminclient.Error{Status: 500}: exitServer,
		&adminclient.UnreachableError{Err: errors.New("refused")}:  exitServer,
		fmt.Errorf("wrapped: %w", &adminclient.Error{Status: 404}): exitNotFound,
	} {
		if got := exitCode(err); got != want {
			t.Errorf("exitCode(%v) = %d, want %d", err, got, want)
		}
	}
}
