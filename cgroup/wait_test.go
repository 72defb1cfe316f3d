package cgroup_test

import "time"

func waitTick() { time.Sleep(10 * time.Millisecond) }
