package runtime_test

import (
	"context"
	"fmt"
	"time"

	"github.com/metricsd/metricsd/runtime/cgroupfs"
)

// Every adapter is a Discoverer: list the running containers, then follow
// their changes with Watch. This one walks the cgroup tree (runtime/detect
// picks Docker or containerd where they answer).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := cgroupfs.New(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	cs, err := d.List(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range cs {
		fmt.Println(c.Runtime, c.Name, c.PID, c.CgroupPath)
	}
}
