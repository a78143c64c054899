// Package buildinfo says which build of mpmeter is running: its version,
// the commit it was built from and that commit's date.
//
// The Go toolchain records all three without help: `go build` in a git
// checkout stamps vcs.revision and vcs.time (and a version derived from the
// tag, or a pseudo-version), and `go install module@version` stamps the
// module version, whose pseudo-version form (v0.0.0-20260102150405-abcdef123456)
// carries the commit and its time. A release build may override any of them
// with -ldflags -X (see cmd/mpmeter), e.g. for a tagged version, which names
// no commit.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"golang.org/x/mod/module"
)

// Unknown is what a field holds when nothing recorded it.
const Unknown = "unknown"

// Info is one build's identity. Its JSON form is what /healthz answers.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	// Date is when the commit was made (RFC 3339, UTC) unless the build
	// set a build date of its own: Go builds are reproducible, so the
	// toolchain records no build time.
	Date string `json:"date"`
	// Modified: built from a work tree with uncommitted changes.
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

// String is the one-line form `mpmeter version` prints.
func (i Info) String() string {
	s := fmt.Sprintf("mpmeter %s (commit %s, %s, %s)", i.Version, i.Commit, i.Date, i.Go)
	if i.Modified {
		s += " with uncommitted changes"
	}
	return s
}

// Read returns the running binary's Info: override's non-empty fields
// (from -ldflags -X), else what the toolchain recorded.
func Read(override Info) Info {
	bi, _ := debug.ReadBuildInfo()
	return merge(override, FromBuildInfo(bi))
}

// FromBuildInfo derives an Info from what the toolchain recorded; nil (a
// binary built without module support) gives Unknown fields.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: Unknown, Commit: Unknown, Date: Unknown, Go: runtime.Version()}
	if bi == nil {
		return info
	}
	if bi.GoVersion != "" {
		info.Go = bi.GoVersion
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		info.Version = v
		// A pseudo-version names the commit and its time: all that
		// `go install module@commit-or-branch` records.
		if module.IsPseudoVersion(v) {
			if rev, err := module.PseudoVersionRev(v); err == nil {
				info.Commit = rev
			}
			if t, err := module.PseudoVersionTime(v); err == nil {
				info.Date = t.UTC().Format(time.RFC3339)
			}
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			info.Date = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

func merge(override, recorded Info) Info {
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&recorded.Version, override.Version},
		{&recorded.Commit, override.Commit},
		{&recorded.Date, override.Date},
	} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	return recorded
}
