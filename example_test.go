package metricsd_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/metricsd/metricsd/cgroup"
)

// Open the cgroup of a process once, then read it at every interval into
// the same Stats.
func Example() {
	ctx := context.Background()
	fs, err := cgroup.NewFS(ctx)
	if err != nil {
		log.Fatal(err)
	}
	g, err := fs.OpenPID(ctx, os.Getpid(), cgroup.All)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	var s cgroup.Stats
	for range 2 { // an agent loops on a ticker
		if err := g.Stat(ctx, &s); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("CPU usage available:", s.CPU.Usage.Available())
	// Output: CPU usage available: true
}
