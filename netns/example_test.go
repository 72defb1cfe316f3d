package netns_test

import (
	"context"
	"fmt"
	"os"

	"github.com/metricsd/metricsd/netns"
)

// Open this process's own namespace (a container would be
// netns.TargetPID(containerPID)) and read its loopback counters.
func Example() {
	ctx := context.Background()
	pool, err := netns.NewPool()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()

	h, err := pool.Open(ctx, netns.TargetPID(os.Getpid()), netns.TierCheap)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()

	var s netns.Stats
	if err := h.Stat(ctx, &s); err != nil {
		fmt.Println(err)
		return
	}
	lo := s.Interface("lo")
	fmt.Println("home:", h.IsHome(), "parts:", s.Parts, "has lo:", lo != nil)
	// Output: home: true parts: dev|sockstat has lo: true
}
