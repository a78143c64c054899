package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mpmeter/mpmeter/seed"
)

// compose.yaml's nodes start with a configuration `mpmeter serve` accepts:
// their command and environment, with the image's MPMETER_LISTEN, parse
// and validate; every node uses the one database and the one seed, which
// exists and loads.
func TestComposeNodes(t *testing.T) {
	raw, err := os.ReadFile("../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	interpolation := regexp.MustCompile(`\$\{[^}]*\}`)
	nodes, ports, dbs := 0, map[string]bool{}, map[string]bool{}
	for name, svc := range compose.Services {
		if !strings.HasPrefix(name, "mpmeter-") {
			continue
		}
		nodes++
		if len(svc.Command) == 0 || svc.Command[0] != "serve" {
			t.Fatalf("%s: command %q", name, svc.Command)
		}
		env := map[string]string{"MPMETER_LISTEN": "0.0.0.0:8080"} // the image's ENV
		for k, v := range svc.Environment {
			env[k] = interpolation.ReplaceAllString(v, "from-the-shell")
		}
		var c serveConfig
		if err := parseFlags(serveFlags(&c), svc.Command[1:], func(k string) string { return env[k] }, &bytes.Buffer{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.HasPrefix(c.db, "postgres://") || c.keyEncryptionKey == "" {
			t.Errorf("%s: db %q, key encryption key %q", name, c.db, c.keyEncryptionKey)
		}
		dbs[c.db] = true
		mounted := false
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && parts[1] == c.seedPath {
				mounted = true
				if _, err := seed.Load(filepath.Join("../..", parts[0])); err != nil {
					t.Errorf("%s: seed %s: %v", name, parts[0], err)
				}
			}
		}
		if !mounted {
			t.Errorf("%s: --seed %q is not mounted", name, c.seedPath)
		}
		for _, p := range svc.Ports {
			if ports[p] {
				t.Errorf("%s: port %s published twice", name, p)
			}
			ports[p] = true
		}
	}
	if nodes < 2 || len(dbs) != 1 {
		t.Fatalf("%d nodes on %d databases, want several on one", nodes, len(dbs))
	}
}
