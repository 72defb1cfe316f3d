package testscript

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// copyRepo copies the repository's files (tracked and untracked, not
// ignored) into a temp dir and returns it.
func copyRepo(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Skipf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	files, err := exec.Command("git", "-C", root, "ls-files", "-co", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("git ls-files: %v (needs a git checkout)", err)
	}
	dst := t.TempDir()
	for _, f := range strings.Split(strings.TrimSpace(string(files)), "\n") {
		src := filepath.Join(root, f)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the worktree, or a symlink
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestBenchLintFails: a go vet finding and a staticcheck finding planted in
// bench/ (its own module) each fail scripts/test.sh. They were printed and
// then ignored: the steps ran in a subshell, whose status=1 was lost.
func TestBenchLintFails(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go vet and staticcheck on a copy of the repository")
	}
	dir := copyRepo(t)
	planted := `package bench

import "fmt"

// vetFinding: a %d verb given a string (go vet's printf check).
func vetFinding() string { return fmt.Sprintf("%d", "x") }

// staticcheckFinding is never used (staticcheck U1000), and neither is
// vetFinding.
func staticcheckFinding() {}
`
	if err := os.WriteFile(filepath.Join(dir, "bench", "planted.go"), []byte(planted), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "scripts/test.sh")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TEST_SH_ONLY=lint")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("test.sh exited 0 with a vet and a staticcheck finding in bench/:\n%s", out)
	}
	for _, want := range []string{"FAILED: go -C bench vet", "FAILED: go -C bench run honnef.co/go/tools/cmd/staticcheck", "planted.go"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("test.sh output lacks %q:\n%s", want, out)
		}
	}
}
