package rttest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNeedInCI: a test whose daemon is missing skips, and under CI=true
// fails. The two cases run this test binary again, with the variable unset.
func TestNeedInCI(t *testing.T) {
	if os.Getenv("RTTEST_CHILD") != "" {
		Need(t, "METRICSD_TEST_NEVER_SET")
		t.Log("not skipped")
		return
	}
	for ci, want := range map[string]string{"": "--- SKIP: TestNeedInCI", "true": "--- FAIL: TestNeedInCI"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNeedInCI$", "-test.v")
		cmd.Env = append(os.Environ(), "RTTEST_CHILD=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		if !strings.Contains(string(out), want) || (ci == "true") != (err != nil) {
			t.Errorf("CI=%q: exit %v, want %q in\n%s", ci, err, want, out)
		}
	}
}
