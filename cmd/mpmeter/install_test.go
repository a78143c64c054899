package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"

	"github.com/mpmeter/mpmeter/internal/buildinfo"
)

// `go install github.com/mpmeter/mpmeter/cmd/mpmeter@latest` refuses a
// module whose go.mod has replace or exclude directives: there must be none.
func TestGoModAllowsGoInstallAtVersion(t *testing.T) {
	raw, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Module.Mod.Path != "github.com/mpmeter/mpmeter" {
		t.Errorf("module path %q", f.Module.Mod.Path)
	}
	for _, r := range f.Replace {
		t.Errorf("go.mod replaces %s: go install ...@version would refuse the module", r.Old.Path)
	}
	for _, e := range f.Exclude {
		t.Errorf("go.mod excludes %s: go install ...@version would refuse the module", e.Mod.Path)
	}
}

// goInstall installs ./cmd/mpmeter with extra go flags into a fresh GOBIN
// and returns what its `mpmeter version --json` says.
func goInstall(t *testing.T, flags ...string) buildinfo.Info {
	t.Helper()
	gobin := t.TempDir()
	cmd := exec.Command("go", append(append([]string{"install"}, flags...), ".")...)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(gobin, "mpmeter"), "version", "--json").Output()
	if err != nil {
		t.Fatalf("mpmeter version: %v", err)
	}
	var info buildinfo.Info
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("mpmeter version --json printed %q: %v", out, err)
	}
	return info
}

func TestGoInstallPrintsItsBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary twice")
	}
	t.Run("what the toolchain records", func(t *testing.T) {
		// -buildvcs=auto: this machine's go env may turn stamping off.
		got := goInstall(t, "-buildvcs=auto")
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Skipf("not a git checkout (%v): nothing to compare the commit with", err)
		}
		if got.Commit == buildinfo.Unknown {
			// The toolchain stamps from a .git directory; a linked
			// worktree's .git is a file.
			t.Skipf("the toolchain recorded no commit here (%+v)", got)
		}
		if got.Commit != strings.TrimSpace(string(head)) || got.Date == buildinfo.Unknown || got.Version == buildinfo.Unknown {
			t.Fatalf("installed binary says %+v; HEAD is %s", got, head)
		}
	})
	t.Run("-ldflags -X", func(t *testing.T) {
		got := goInstall(t, "-buildvcs=false", "-ldflags", "-X main.version=v9.8.7 -X main.commit=0123456789ab -X main.date=2026-01-02T03:04:05Z")
		want := buildinfo.Info{Version: "v9.8.7", Commit: "0123456789ab", Date: "2026-01-02T03:04:05Z", Go: got.Go}
		if got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
}
