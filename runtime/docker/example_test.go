package docker_test

import (
	"context"
	"fmt"
	"time"

	"github.com/metricsd/metricsd/runtime/docker"
)

// List Docker's running containers, then stream their events; Watch
// reconnects by itself when dockerd restarts. Podman's Docker-compatible
// socket works the same way: docker.WithHost("unix:///run/podman/podman.sock").
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := docker.New(ctx, docker.WithHost("unix:///var/run/docker.sock"))
	if err != nil {
		fmt.Println(err) // matches runtime.ErrUnavailable when dockerd is absent or too old
		return
	}
	defer d.Close()
	fmt.Println("API", d.APIVersion())
	cs, err := d.List(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range cs {
		fmt.Println(c.Name, c.Image, c.PID, c.CgroupPath)
	}
	events, err := d.Watch(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for ev := range events {
		fmt.Println(ev.Type, ev.Container.Name)
	}
}
