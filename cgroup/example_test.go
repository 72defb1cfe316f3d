package cgroup_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/metricsd/metricsd/cgroup"
)

// Read the CPU and memory figures of this process's own cgroup. An agent
// keeps the Group and the Stats and calls Stat again at each interval.
func Example() {
	ctx := context.Background()
	fs, err := cgroup.NewFS(ctx) // cgroup.WithRoot("/host") inside a container
	if err != nil {
		log.Fatal(err)
	}
	g, err := fs.OpenPID(ctx, os.Getpid(), cgroup.CPU|cgroup.Memory)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	var s cgroup.Stats // reused across calls: Stat then allocates nothing
	if err := g.Stat(ctx, &s); err != nil {
		log.Fatal(err)
	}
	ns, ok := s.CPU.Usage.Get()
	fmt.Println("CPU time known:", ok && ns > 0)
	if limit := s.Memory.Limit; limit.IsUnlimited() {
		_ = limit // no memory limit set
	}
	// Output: CPU time known: true
}
