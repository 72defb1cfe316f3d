package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/metricsd/metricsd/internal/rttest"
)

// buildDaemon builds this package static, as the README and the image do,
// into dir with extra go build flags, and returns the binary's path.
func buildDaemon(t *testing.T, dir string, flags ...string) string {
	t.Helper()
	bin := filepath.Join(dir, "metricsd")
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", bin, ".")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", flags, err, out)
	}
	return bin
}

// TestVersion builds the daemon from this repository and checks that
// -version prints the revision git reports for HEAD, a module version that
// go build derived from it (a tag or a pseudo-version naming the same
// commit), whether the tree was modified, the Go version and platform;
// built with -buildvcs=false it says the revision is unknown.
func TestVersion(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the daemon")
	}
	head, err := rttest.Try("git", "rev-parse", "HEAD")
	if err != nil {
		t.Skipf("not in a git checkout (git rev-parse HEAD: %v): no revision to compare with", err)
	}
	top, err := rttest.Try("git", "rev-parse", "--show-toplevel")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(top, ".git")); err != nil || !fi.IsDir() {
		// cmd/go/internal/vcs recognises a git checkout by a .git
		// directory only (rootName{".git", isDir: true}).
		t.Skipf("%s/.git is not a directory (a git worktree): go build stamps no VCS information there", top)
	}
	// -buildvcs=true: stamping is go build's default (auto) in a
	// checkout, but GOFLAGS may turn it off; the flag overrides GOFLAGS.
	out, err := exec.Command(buildDaemon(t, t.TempDir(), "-buildvcs=true"), "-version").CombinedOutput()
	if err != nil {
		t.Fatalf("metricsd -version: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	t.Logf("metricsd -version: %s", got)
	// e.g. metricsd v0.0.0-20260101120000-0123456789ab+dirty revision
	// 0123456789abcdef0123456789abcdef01234567 (2026-01-01T12:00:00Z)
	// modified go1.26.8 linux/amd64
	re := regexp.MustCompile(`^metricsd (\S+) revision ([0-9a-f]{40}) \(([0-9TZ:-]+)\)( modified)? (go\S+) (\S+/\S+)$`)
	m := re.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("-version printed %q, want %s", got, re)
	}
	if m[2] != head {
		t.Errorf("revision %s, want HEAD %s", m[2], head)
	}
	if mod := m[1]; mod != "(devel)" && !strings.HasPrefix(mod, "v") {
		t.Errorf("module version %q: want a tag, a pseudo-version or (devel)", mod)
	} else if pseudo := regexp.MustCompile(`-([0-9a-f]{12})(\+dirty)?$`).FindStringSubmatch(mod); pseudo != nil && !strings.HasPrefix(head, pseudo[1]) {
		t.Errorf("pseudo-version %s names %s, want HEAD %s", mod, pseudo[1], head)
	}
	if m[5] != runtime.Version() || m[6] != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("go %s %s, want %s %s/%s", m[5], m[6], runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	// "modified" is git's view of the tree at build time: with a clean
	// tree (CI's fresh clone) it must be absent.
	if st, err := rttest.Try("git", "status", "--porcelain"); err == nil && st == "" && m[4] != "" {
		t.Errorf("-version says modified, git status shows a clean tree")
	}

	out, err = exec.Command(buildDaemon(t, t.TempDir(), "-buildvcs=false"), "-version").CombinedOutput()
	if err != nil {
		t.Fatalf("metricsd -version (-buildvcs=false): %v\n%s", err, out)
	}
	if got := string(out); !strings.Contains(got, " revision unknown ") {
		t.Errorf("-buildvcs=false: %q, want revision unknown", got)
	}
}
