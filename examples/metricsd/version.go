package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version describes the binary from the build information the Go
// toolchain records in it: the module version (a tag such as v0.1.0, or
// the pseudo-version `go build` derives from the VCS revision since Go
// 1.24, "(devel)" when it could not), the VCS revision and its commit time,
// whether the working tree had uncommitted changes, and the Go version and
// platform. A binary built with -buildvcs=false, or outside a repository,
// says "revision unknown".
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "metricsd (no build information)"
	}
	mod := bi.Main.Version
	if mod == "" {
		mod = "(devel)"
	}
	var rev, at, modified, goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "metricsd %s", mod)
	if rev == "" {
		b.WriteString(" revision unknown")
	} else {
		fmt.Fprintf(&b, " revision %s", rev)
		if at != "" {
			fmt.Fprintf(&b, " (%s)", at)
		}
		if modified == "true" {
			b.WriteString(" modified")
		}
	}
	fmt.Fprintf(&b, " %s", bi.GoVersion)
	if goos != "" {
		fmt.Fprintf(&b, " %s/%s", goos, goarch)
	}
	return b.String()
}
