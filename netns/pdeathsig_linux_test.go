package netns

import (
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestCloseKeepsThreads: closing a Pool must not terminate its threads
// (only a thread that failed to return home is disposed of). A terminated
// thread fires the parent-death signal of every child process another
// goroutine once started from it, so children unrelated to the pool died
// when a Pool (and with it a metricsd.Collector) was closed.
func TestCloseKeepsThreads(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("needs sleep(1)")
	}
	const n = 64
	var mu sync.Mutex
	var kids []*exec.Cmd
	t.Cleanup(func() {
		for _, c := range kids {
			c.Process.Kill()
			c.Wait()
		}
	})
	for round := 0; round < 3; round++ {
		// Children started with Pdeathsig from goroutines spread over
		// the runtime's threads...
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Go(func() {
				// Long enough to outlive the test however slow the
				// machine: in scripts/v2lane.sh's emulated 6.12 guest the
				// test took 93 s, and 60 s sleeps ended by themselves.
				c := exec.Command("sleep", "3600")
				c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
				if err := c.Start(); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				kids = append(kids, c)
				mu.Unlock()
			})
		}
		wg.Wait()
		// ...then a pool takes some of those threads and is closed.
		p, err := NewPool(WithSize(2))
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	time.Sleep(100 * time.Millisecond) // a parent-death signal is delivered at once
	dead := 0
	for _, c := range kids {
		if err := c.Process.Signal(syscall.Signal(0)); err != nil {
			dead++
			continue
		}
		var ws syscall.WaitStatus
		if pid, _ := syscall.Wait4(c.Process.Pid, &ws, syscall.WNOHANG, nil); pid == c.Process.Pid {
			dead++
		}
	}
	if dead > 0 {
		t.Errorf("%d of %d unrelated children died when the pool closed", dead, len(kids))
	}
}
