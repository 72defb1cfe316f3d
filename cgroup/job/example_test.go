package job_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"time"

	"github.com/metricsd/metricsd/cgroup/job"
)

// Meter a build step the way a CI runner does: the step and everything it
// starts run in a group of their own, removed when it ends. Where no group
// can be made (an unprivileged container), the step runs all the same and
// the error says what the totals lack.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // the job's timeout
	defer cancel()
	cmd := exec.Command("sh", "-c", "echo building; sleep 0.1 & wait")
	cmd.Stdout = os.Stdout

	// parent is the group the runner keeps its jobs under; without
	// WithParent the job's group goes beside the runner's own.
	totals, err := job.Run(ctx, cmd, job.WithParent(parent), job.WithKillLeftovers())
	switch {
	case errors.Is(err, job.ErrNotMetered):
		log.Printf("not metered (%v): CPU from getrusage: %v", err, totals.Tree.User+totals.Tree.System)
	case err != nil:
		log.Fatal(err)
	default:
		cpu, _ := totals.CPU.Total.Get()
		peak, _ := totals.MemoryPeak.Get()
		log.Printf("%s: CPU %v, peak memory %d bytes, peak tasks %v", totals.Path, time.Duration(cpu), peak, totals.PidsPeak)
	}
	fmt.Println("exit status", totals.ExitCode, "after at least 100 ms:", totals.Wall >= 100*time.Millisecond)
	// Output:
	// building
	// exit status 0 after at least 100 ms: true
}
