package runtime_test

import (
	"context"
	"fmt"
	"time"

	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/runtime/cgroupfs"
	"github.com/metricsd/metricsd/runtime/containerd"
	"github.com/metricsd/metricsd/runtime/docker"
)

// Detect picks Docker and containerd where they answer (at $DOCKER_HOST,
// $CONTAINERD_ADDRESS or their default sockets), else walks the cgroup
// tree. Each adapter is passed in, so a program links only those it names.
func ExampleDetect() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := runtime.Detect(ctx,
		runtime.WithDocker(docker.Opener()),
		runtime.WithContainerd(containerd.Opener()),
		runtime.WithCgroupFS(cgroupfs.Opener()),
	)
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
