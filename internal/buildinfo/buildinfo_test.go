package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	cases := map[string]struct {
		bi   *debug.BuildInfo
		want Info
	}{
		"go build in a git checkout": {
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.1-0.20260102150405-abcdef123456+dirty"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "abcdef1234567890abcdef1234567890abcdef12"},
				{Key: "vcs.time", Value: "2026-01-02T15:04:05Z"},
				{Key: "vcs.modified", Value: "true"},
			}},
			Info{Version: "v0.3.1-0.20260102150405-abcdef123456+dirty", Commit: "abcdef1234567890abcdef1234567890abcdef12", Date: "2026-01-02T15:04:05Z", Modified: true, Go: "go1.26.8"},
		},
		"go install module@main (a pseudo-version, no vcs settings)": {
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20260102150405-abcdef123456"}},
			Info{Version: "v0.0.0-20260102150405-abcdef123456", Commit: "abcdef123456", Date: "2026-01-02T15:04:05Z", Go: "go1.26.8"},
		},
		"go install module@v1.2.0 (a tag names no commit)": {
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}},
			Info{Version: "v1.2.0", Commit: Unknown, Date: Unknown, Go: "go1.26.8"},
		},
		"go build outside version control": {
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			Info{Version: Unknown, Commit: Unknown, Date: Unknown, Go: "go1.26.8"},
		},
	}
	for name, tc := range cases {
		if got := FromBuildInfo(tc.bi); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, tc.want)
		}
	}
}

func TestOverride(t *testing.T) {
	recorded := Info{Version: "v1.2.0", Commit: Unknown, Date: Unknown, Go: "go1.26.8"}
	got := merge(Info{Commit: "0123abc", Date: "2026-02-03T04:05:06Z"}, recorded)
	want := Info{Version: "v1.2.0", Commit: "0123abc", Date: "2026-02-03T04:05:06Z", Go: "go1.26.8"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if s := got.String(); s != "mpmeter v1.2.0 (commit 0123abc, 2026-02-03T04:05:06Z, go1.26.8)" {
		t.Fatalf("String: %q", s)
	}
}
