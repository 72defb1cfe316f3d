package cgroupfs_test

import (
	"context"
	"fmt"
	"time"

	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/runtime/cgroupfs"
)

// List the containers and services of this host from its cgroup tree, then
// follow the changes by rescanning every 5 s.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := cgroupfs.New(ctx, cgroupfs.WithInterval(5*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	cs, err := d.List(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range cs {
		fmt.Println(c.Labels[cgroupfs.LabelKind], c.ID, c.PID, c.CgroupPath)
	}
	events, err := d.Watch(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for ev := range events {
		if ev.Type == runtime.EventStarted {
			fmt.Println("new:", ev.Container.CgroupPath)
		}
	}
}

// Classify tells what a cgroup path is, with no I/O.
func ExampleClassify() {
	c, ok := cgroupfs.Classify("/kubepods/burstable/pod6f1b-22/4a5c")
	fmt.Println(ok, c.Labels[cgroupfs.LabelKind], c.ID, c.Pod.UID)
	c, ok = cgroupfs.Classify("/system.slice/ssh.service")
	fmt.Println(ok, c.Labels[cgroupfs.LabelKind], c.Name)
	_, ok = cgroupfs.Classify("/user.slice/user-0.slice")
	fmt.Println(ok)
	// Output:
	// true kubernetes 4a5c 6f1b-22
	// true systemd ssh
	// false
}
