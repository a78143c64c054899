package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The binary is the product only: the load generator (bench, its own binary
// cmd/mpmeter-bench), the PostgreSQL administration it needs
// (internal/pgadmin) and the test helpers are not compiled into it.
func TestBinaryHasNoBenchOrTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	const mod = "github.com/mpmeter/mpmeter/"
	forbidden := []string{"bench", "internal/pgadmin", "mpmetertest", "storetest"}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !strings.Contains(string(out), mod+"server") {
		t.Fatalf("go list -deps listed %d packages, not the server: %s", len(deps), out)
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if dep == mod+f || strings.HasPrefix(dep, mod+f+"/") {
				t.Errorf("cmd/mpmeter depends on %s", dep)
			}
		}
	}
}
