package cgroup

import (
	"errors"
	"time"
)

// OOMKill reports processes of a group that the OOM killer killed.
type OOMKill struct {
	// Group is the group, as given to Watch.
	Group *Group
	// Kills is the number of processes killed since the previous report
	// for the group (or since Watch), at least 1 unless Err is set.
	Kills uint64
	// Total is the group's count of OOM kills when it was read: kills
	// before Watch included (see MemoryEvents.OOMKill).
	Total uint64
	// Time is when the count was read.
	Time time.Time
	// Err is set, and Kills is 0, when the kernel notified a memory event
	// of a cgroup v2 group, or an OOM of a v1 group, that was removed
	// before the count could be read (or, v1, before the kill showed in
	// it): a kill there may have gone uncounted. It matches ErrNotExist.
	// A runtime removes a group tens of milliseconds after its last
	// process died; a watcher starved of CPU for longer can lose that
	// race, and says so with Err.
	Err error
}

// ErrNoOOMCount reports a group whose OOM kills can not be watched: it was
// opened without the Memory controller, or its kernel does not count OOM
// kills (memory.oom_control without oom_kill, before Linux 4.13).
var ErrNoOOMCount = errors.New("cgroup: no OOM kill count to watch")
