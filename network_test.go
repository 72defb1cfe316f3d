package metricsd_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	goruntime "runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/cgtest"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
)

// nsCounters reads a namespace's own interface counters with iproute2, the
// independent source: interface name to [rx bytes, rx packets, tx bytes,
// tx packets].
func nsCounters(t *testing.T, ns string) map[string][4]uint64 {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-s", "-j", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip -n %s -s -j link show: %v", ns, err)
	}
	var links []struct {
		Ifname  string `json:"ifname"`
		Stats64 struct {
			Rx struct{ Bytes, Packets uint64 } `json:"rx"`
			Tx struct{ Bytes, Packets uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		t.Fatalf("ip -j: %v\n%s", err, out)
	}
	m := map[string][4]uint64{}
	for _, l := range links {
		m[l.Ifname] = [4]uint64{l.Stats64.Rx.Bytes, l.Stats64.Rx.Packets, l.Stats64.Tx.Bytes, l.Stats64.Tx.Packets}
	}
	return m
}

// udpInNS sends n datagrams to 127.0.0.1 inside namespace ns, and
// receives them: sockets opened there, on a thread that entered it and came
// back (a thread that can not come back is never unlocked, so it dies).
func udpInNS(t *testing.T, ns string, n int) {
	t.Helper()
	var rx, tx *net.UDPConn
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer home.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err == nil {
			tx, err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		}
		if berr := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); berr != nil {
			errc <- berr // the thread stays locked and dies with the goroutine
			return
		}
		goruntime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("sockets in namespace %s: %v", ns, err)
	}
	defer rx.Close()
	defer tx.Close()
	buf := make([]byte, 2048)
	rx.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range n {
		if _, err := tx.Write(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := rx.Read(buf); err != nil { // lock-step: none dropped
			t.Fatal(err)
		}
	}
}

// sumOverContainers adds up the interface counters of every sample, as a
// "sum by (pod)" over containers would.
func sumOverContainers(snap *sink.Snapshot) map[string][4]uint64 {
	m := map[string][4]uint64{}
	for _, s := range snap.Containers {
		if s.Net == nil {
			continue
		}
		for _, i := range s.Net.Interfaces {
			v := m[i.Name]
			v[0] += i.RxBytes.V // net/dev prints every column: all Known
			v[1] += i.RxPackets.V
			v[2] += i.TxBytes.V
			v[3] += i.TxPackets.V
			m[i.Name] = v
		}
	}
	return m
}

// TestSharedNamespaceCountedOnce: three containers in one network namespace
// (a pod: two workloads and the sandbox, listed in that order) report its
// traffic once, on the sandbox, so the sum over the containers equals the
// namespace's own counters (iproute2), after traffic the test made. The
// others are marked NetShared and name the sandbox. When the sandbox
// leaves, the container that has been in the namespace longest carries it.
func TestSharedNamespaceCountedOnce(t *testing.T) {
	cgtest.NeedRoot(t)
	ns := netnsAdd(t)
	udpInNS(t, ns, 20)
	var cs []runtime.Container
	for _, name := range []string{"app", "sidecar", "sandbox"} {
		g := cgtest.New(t, "cpu", "cpuacct", "memory")
		w := cgtest.Start(t, g, cgtest.Spec{})
		c := runtime.Container{ID: "id-" + name, Name: name, Runtime: "test", PID: w.Pid, CgroupPath: g.Path,
			State: runtime.StateRunning, NetNS: runtime.NetNS{Path: "/run/netns/" + ns},
			Pod: &runtime.Pod{Name: "p", Namespace: "default", Container: name, Sandbox: name == "sandbox"}}
		cs = append(cs, c)
	}
	d := &listed{}
	d.set(cs...)
	ctx := context.Background()
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithReconcileEvery(1))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()

	check := func(wantCarrier string) {
		t.Helper()
		snap, err := col.Collect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := nsCounters(t, ns)
		got := sumOverContainers(snap)
		if want["lo"][1] < 20 {
			t.Fatalf("lo has %d packets: the traffic did not go through the namespace", want["lo"][1])
		}
		for name, w := range want {
			if got[name] != w {
				t.Errorf("%s: sum over the containers %v, the namespace's own counters %v", name, got[name], w)
			}
		}
		for _, s := range snap.Containers {
			switch {
			case s.Container.ID == wantCarrier:
				if s.Network != sink.NetOwn || s.Net == nil {
					t.Errorf("%s should carry the namespace: %v", s.Container.Name, s.Network)
				}
			case s.Network != sink.NetShared || s.NetCarrier != wantCarrier || s.Net != nil:
				t.Errorf("%s: %v carried by %q, want NetShared carried by %s", s.Container.Name, s.Network, s.NetCarrier, wantCarrier)
			}
		}
	}
	check("id-sandbox") // the sandbox, though listed last

	d.set(cs[0], cs[1]) // the sandbox leaves
	// app and sidecar joined at the same listing; neither has a start time,
	// so the tie goes by ID: app.
	check("id-app")
}

// TestNamespaceUnavailableKeepsCgroup: a container whose network namespace
// can not be opened keeps its cgroup figures, its network marked
// NetUnavailable and the failure counted; the namespace is tried again at
// every snapshot and read once it can be opened.
func TestNamespaceUnavailableKeepsCgroup(t *testing.T) {
	cgtest.NeedRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	g := cgtest.New(t, "cpu", "cpuacct", "memory")
	w := cgtest.Start(t, g, cgtest.Spec{MemBytes: 8 << 20})
	name := randName("mdtest-")
	d := &listed{}
	d.set(runtime.Container{ID: "x", Name: "x", Runtime: "test", PID: w.Pid, CgroupPath: g.Path, State: runtime.StateRunning,
		NetNS: runtime.NetNS{Path: "/run/netns/" + name}}) // not there yet
	ctx := context.Background()
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	snap, err := col.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Containers) != 1 {
		t.Fatalf("%d containers: a container whose namespace can not be opened was dropped", len(snap.Containers))
	}
	s := snap.Containers[0]
	if m, _ := s.Cgroup.Memory.Usage.Get(); m < 8<<20 || !s.Cgroup.CPU.Usage.Available() {
		t.Errorf("cgroup figures lost: memory %d, cpu %v", m, s.Cgroup.CPU.Usage)
	}
	if s.Network != sink.NetUnavailable || s.Net != nil {
		t.Errorf("network %v %p, want NetUnavailable and nil", s.Network, s.Net)
	}
	if n := col.Errors(metricsd.StageOpen); n == 0 {
		t.Error("the failed namespace open was not counted")
	}

	ip(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	snap, err = col.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := snap.Containers[0]; s.Network != sink.NetOwn || s.Net == nil || s.Net.Interface("lo") == nil {
		t.Errorf("after the namespace appeared: network %v %p", s.Network, s.Net)
	}
}
