package containerd_test

import (
	"context"
	"fmt"
	"time"

	"github.com/metricsd/metricsd/runtime/containerd"
)

// List the running containers of two namespaces, then stream their task
// events; Watch reconnects by itself when containerd restarts.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := containerd.New(ctx,
		containerd.WithAddress("/run/containerd/containerd.sock"),
		containerd.WithNamespaces("default", "k8s.io"),
	)
	if err != nil {
		fmt.Println(err) // matches runtime.ErrUnavailable when containerd is absent
		return
	}
	defer d.Close()
	cs, err := d.List(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range cs {
		fmt.Println(c.Namespace, c.ID, c.PID, c.CgroupPath)
	}
	events, err := d.Watch(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for ev := range events {
		fmt.Println(ev.Type, ev.Container.Namespace, ev.Container.ID)
	}
}
