// Package cli is the command-line plumbing the mpmeter binaries share:
// flags that also come from the environment and a YAML config file, and
// DSN redaction for what they print.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrUsage is returned when the command line was wrong and the usage has
// been printed: the binary exits with status 2 and prints nothing more.
var ErrUsage = errors.New("usage")

// ParseFlags parses args into fs, filling every flag not given on the
// command line from the environment (envPrefix + the flag's name in upper
// case, dashes as underscores: with "MPMETER_", --listen is MPMETER_LISTEN)
// and then from the --config file (a YAML mapping whose keys are flag
// names; ParseFlags adds the flag), so that flags > environment > file >
// defaults. Values from the environment and the file go through the flag's
// own parser, so they are validated exactly like flags, and errors name the
// variable or file they came from. A -h or a flag error returns ErrUsage
// after fs printed its usage to stderr.
func ParseFlags(fs *flag.FlagSet, args []string, envPrefix string, getenv func(string) string, stderr io.Writer) error {
	configPath := fs.String("config", "", "YAML config file whose keys are flag names (env "+envPrefix+"CONFIG)")
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return ErrUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	envName := func(name string) string {
		return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	}
	if !given["config"] {
		*configPath = getenv(envName("config"))
	}
	var file map[string]any
	if *configPath != "" {
		raw, err := os.ReadFile(*configPath)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := yaml.Unmarshal(raw, &file); err != nil {
			return fmt.Errorf("config file %s: %w", *configPath, err)
		}
		for k := range file {
			if fs.Lookup(k) == nil || k == "config" {
				return fmt.Errorf("config file %s: unknown setting %q", *configPath, k)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || f.Name == "config" {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %v", envName(f.Name), v, e)
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if e := f.Value.Set(fmt.Sprint(v)); e != nil {
				err = fmt.Errorf("config file %s: %s: %v", *configPath, f.Name, e)
			}
		}
	})
	return err
}

// RedactDSN hides the secrets of a database DSN, for logs and reports, in
// every form PostgreSQL takes: a URL's password (postgres://u:X@h/db), a
// password in its query (?password=X, &sslpassword=X), and a key=value DSN's
// (host=h password=X, password='a b'). Everything else is kept as given.
func RedactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		// The authority ends at the query; a password may hold '/' or '@'.
		end := len(dsn)
		if q := strings.IndexByte(dsn[i+3:], '?'); q >= 0 {
			end = i + 3 + q
		}
		if at := strings.LastIndex(dsn[:end], "@"); at > i {
			if colon := strings.Index(dsn[i+3:at], ":"); colon >= 0 {
				dsn = dsn[:i+3+colon] + ":***" + dsn[at:]
			}
		}
		return queryPassword.ReplaceAllString(dsn, "${1}***")
	}
	return keywordPassword.ReplaceAllString(dsn, "${1}***")
}

var (
	// queryPassword is a password parameter of a URL's query.
	queryPassword = regexp.MustCompile(`(?i)([?&](?:ssl)?password=)[^&#]*`)
	// keywordPassword is a password in a key=value DSN: a bare word or a
	// single-quoted value with backslash escapes.
	keywordPassword = regexp.MustCompile(`(?i)(\b(?:ssl)?password\s*=\s*)(?:'(?:[^'\\]|\\.)*'?|[^\s]*)`)
)
