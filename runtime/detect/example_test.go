package detect_test

import (
	"context"
	"fmt"
	"time"

	"github.com/metricsd/metricsd/runtime/detect"
)

// New picks Docker and containerd where they answer (at $DOCKER_HOST,
// $CONTAINERD_ADDRESS or their default sockets), else walks the cgroup
// tree.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := detect.New(ctx)
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
