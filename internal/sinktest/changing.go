package sinktest

import (
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/sink"
)

// ChangingSnapshots is a sequence of snapshots, a second apart from t, in
// which the containers' labels change the ways a hostile or merely busy
// host changes them, for encoders that remember anything from one
// snapshot (or one container) to the next: a rename to a value of the
// same length, a label value changed, an image changed, an interface and a
// device renamed, a container gone and the others moved up, a new one
// with an invalid UTF-8 name, a restart under the same name with a new ID
// and cgroup, a pod added, and finally the first snapshot again (A-B-A).
// Encoding each with one encoder must give the bytes a fresh encoder gives.
func ChangingSnapshots(t time.Time) []*sink.Snapshot {
	base := func(i int) *sink.Snapshot {
		s := MixedSnapshot(t.Add(time.Duration(i) * time.Second))
		s.Containers[0].Container.Labels["team"] = "blue"
		return s
	}
	var out []*sink.Snapshot
	out = append(out, base(0))

	s := base(1) // same-length rename, label value, image, interface, device
	c := &s.Containers[0]
	c.Container.Name = "c-X"
	c.Container.Labels["team"] = "bluf"
	c.Container.Labels["env"] = "staging"
	s.Containers[1].Container.Image = "registry.example/app:1.3"
	c.Net.Interfaces[1].Name = "eth9"
	c.Cgroup.IO.Devices[0].Name = "vdz"
	out = append(out, s)

	s = base(2) // c-1 gone, c-2 moved up, a hostile newcomer at the end
	s.Containers = append(s.Containers[:1], s.Containers[2:]...)
	n := Container("c", 5)
	n.Name = "new\xffone"
	n.Labels["team"] = "r\xc3d"
	s.Containers = append(s.Containers, sink.Sample{Container: n, Cgroup: FullStats(5), Net: FullNet(5, 3)})
	s.Containers[len(s.Containers)-1].Net.Interfaces[2].Name = "eth\x80"
	out = append(out, s)

	s = base(3) // c-0 restarted: same name, a new ID and cgroup; c-2 in a pod
	c = &s.Containers[0]
	c.Container.ID = Container("c", 42).ID
	c.Container.CgroupPath = Container("c", 42).CgroupPath
	s.Containers[2].Container.Pod = s.Containers[1].Container.Pod
	s.Containers[2].Cgroup.IO.Devices = append(s.Containers[2].Cgroup.IO.Devices, cgroup.IODevice{Major: 8, Minor: 16, Name: "sdb", ReadBytes: K(1), WriteBytes: K(2), ReadOps: K(3), WriteOps: K(4)})
	out = append(out, s)

	out = append(out, base(0)) // the first again
	return out
}

// LabelledSnapshot is a snapshot of two containers at t (small enough for
// a fuzz lane's 50,000 runs), the first with the given name, "team" label,
// image (name:team), second interface's name and first device's name: for
// fuzzing what an encoder remembers from one snapshot to the next. The
// second container's labels are not the first's.
func LabelledSnapshot(name, team, iface, dev string, t time.Time) *sink.Snapshot {
	s := FullSnapshot(2, 2, t)
	c := &s.Containers[0]
	c.Container.Name = name
	c.Container.Labels["team"] = team
	c.Container.Image = name + ":" + team
	c.Net.Interfaces[1].Name = iface
	c.Cgroup.IO.Devices[0].Name = dev
	return s
}
