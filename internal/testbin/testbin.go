// Package testbin gives end-to-end test packages the mpmeter binary they
// start as real processes: $MPMETER_BIN when set (test/all.sh builds it
// once), else one built for this test binary and removed after it.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Main sets *binary, runs m's tests and exits with their code; call it from
// TestMain.
func Main(m *testing.M, binary *string) {
	*binary = os.Getenv("MPMETER_BIN")
	if *binary != "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "mpmeter-testbin-")
	if err != nil {
		panic(err)
	}
	*binary = filepath.Join(dir, "mpmeter")
	build := exec.Command("go", "build", "-o", *binary, "github.com/mpmeter/mpmeter/cmd/mpmeter")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		panic("building mpmeter: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
