package netns

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vns "github.com/vishvananda/netns"
)

// The leader-thread trap: a hop's handle must show only the target
// namespace's interfaces, whichever way the target is named.
func TestOpenShowsOnlyTargetInterfaces(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	ns := newNS(t)
	// (no dummy driver on every kernel: a veth pair with both ends in ns)
	run(t, "ip", "-n", ns, "link", "add", "mdx0", "type", "veth", "peer", "name", "mdx1")
	want := pathID(t, nsPath(ns))

	// A process living in ns, for TargetPID.
	cmd := exec.Command("ip", "netns", "exec", ns, "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if !waitFor(5*time.Second, func() bool {
		id, err := statID("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net")
		return err == nil && id == want // ip has switched namespace (then execs sleep)
	}) {
		t.Fatal("process never entered the namespace")
	}
	vh, err := vns.GetFromPath(nsPath(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer vh.Close()

	// The names the kernel gives inside ns, read by iproute2.
	var links []struct{ Ifname string }
	if err := json.Unmarshal([]byte(run(t, "ip", "-n", ns, "-j", "link", "show")), &links); err != nil {
		t.Fatal(err)
	}
	var wantNames []string
	for _, l := range links {
		wantNames = append(wantNames, l.Ifname)
	}
	sort.Strings(wantNames)

	// The host's own interfaces, which must not show up.
	hostDev, err := os.ReadFile("/proc/self/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	var host Stats
	if err := parseDev(hostDev, &host); err != nil {
		t.Fatal(err)
	}

	p := newTestPool(t)
	for _, tg := range []Target{TargetPath(nsPath(ns)), TargetPID(cmd.Process.Pid), TargetHandle(vh)} {
		t.Run(tg.String(), func(t *testing.T) {
			h, err := p.Open(ctx, tg, TierCheap)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			if h.ID() != want || h.IsHome() || h.ID() == p.Home() {
				t.Fatalf("ID %v (home %v, IsHome %v), want %v", h.ID(), p.Home(), h.IsHome(), want)
			}
			ref, err := p.Identify(ctx, tg)
			if err != nil || ref.ID != want {
				t.Fatalf("Identify = %v, %v; want %v", ref, err, want)
			}
			ref.Close()
			var s Stats
			if err := h.Stat(ctx, &s); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range s.Interfaces {
				got = append(got, it.Name)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(wantNames, ",") {
				t.Fatalf("interfaces %v, want %v (ip -n %s link show)", got, wantNames, ns)
			}
			for _, hi := range host.Interfaces {
				if hi.Name != "lo" && s.Interface(hi.Name) != nil {
					t.Fatalf("host interface %s seen through the handle", hi.Name)
				}
			}
			if s.ID != want || s.Parts != TierCheap || !s.Sockets.TCPInUse.Available() {
				t.Fatalf("Stats ID %v parts %v sockets %+v", s.ID, s.Parts, s.Sockets)
			}
		})
	}
}

// The process's own namespace is recognised as home and read without setns.
func TestOpenHome(t *testing.T) {
	ctx := context.Background()
	p := newTestPool(t)
	h, err := p.Open(ctx, TargetPID(os.Getpid()), TierCheap)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if !h.IsHome() || h.ID() != p.Home() || h.ID() != pathID(t, "/proc/self/ns/net") {
		t.Fatalf("home handle: IsHome %v ID %v pool home %v", h.IsHome(), h.ID(), p.Home())
	}
	var s Stats
	if err := h.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	var ref Stats
	if err := parseDev(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(s.Interfaces) != len(ref.Interfaces) {
		t.Fatalf("%d interfaces, /proc/self/net/dev has %d", len(s.Interfaces), len(ref.Interfaces))
	}
}

// ipLink is the part of `ip -s -s -j link show` compared with net/dev.
type ipLink struct {
	Ifname  string
	Stats64 struct {
		RX struct {
			Bytes, Packets, Errors, Dropped, Multicast, Compressed uint64
			OverErrors                                             uint64 `json:"over_errors"`
			LengthErrors                                           uint64 `json:"length_errors"`
			CRCErrors                                              uint64 `json:"crc_errors"`
			FrameErrors                                            uint64 `json:"frame_errors"`
			FIFOErrors                                             uint64 `json:"fifo_errors"`
			MissedErrors                                           uint64 `json:"missed_errors"`
		} `json:"rx"`
		TX struct {
			Bytes, Packets, Errors, Dropped, Collisions, Compressed uint64
			CarrierErrors                                           uint64 `json:"carrier_errors"`
			AbortedErrors                                           uint64 `json:"aborted_errors"`
			FIFOErrors                                              uint64 `json:"fifo_errors"`
			WindowErrors                                            uint64 `json:"window_errors"`
			HeartbeatErrors                                         uint64 `json:"heartbeat_errors"`
		} `json:"tx"`
	} `json:"stats64"`
}

// asNetDev folds iproute2's counters the way the kernel folds them into
// net/dev (dev_seq_printf_stats).
func (l *ipLink) asNetDev() [16]uint64 {
	rx, tx := &l.Stats64.RX, &l.Stats64.TX
	return [16]uint64{rx.Bytes, rx.Packets, rx.Errors, rx.Dropped + rx.MissedErrors, rx.FIFOErrors,
		rx.LengthErrors + rx.OverErrors + rx.CRCErrors + rx.FrameErrors, rx.Compressed, rx.Multicast,
		tx.Bytes, tx.Packets, tx.Errors, tx.Dropped, tx.FIFOErrors, tx.Collisions,
		tx.CarrierErrors + tx.AbortedErrors + tx.WindowErrors + tx.HeartbeatErrors, tx.Compressed}
}

func ipLinks(t *testing.T, ns string) map[string]*ipLink {
	t.Helper()
	var ls []*ipLink
	if err := json.Unmarshal([]byte(run(t, "ip", "-n", ns, "-s", "-s", "-j", "link", "show")), &ls); err != nil {
		t.Fatal(err)
	}
	m := map[string]*ipLink{}
	for _, l := range ls {
		m[l.Ifname] = l
	}
	return m
}

// Traffic between two namespaces moves both ends' counters by at least what
// was sent, and every net/dev field agrees with `ip -s -s -j link show`
// (netlink, an independent reader) in the same namespace.
func TestTrafficAndIPLinkAgree(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	a, b := newNS(t), newNS(t)
	vethPair(t, a, b)
	p := newTestPool(t)
	hs, err := p.OpenAll(ctx, []Target{TargetPath(nsPath(a)), TargetPath(nsPath(b))}, TierAll)
	if err != nil {
		t.Fatal(err)
	}
	defer hs[0].Close()
	defer hs[1].Close()
	var sa0, sb0, sa1, sb1 Stats
	for _, x := range []struct {
		h *Handle
		s *Stats
	}{{hs[0], &sa0}, {hs[1], &sb0}} {
		if err := x.h.Stat(ctx, x.s); err != nil {
			t.Fatal(err)
		}
	}

	// Send n datagrams of size bytes from a to b and receive them all.
	const n, size = 300, 1000
	var rx, tx *net.UDPConn
	inNS(t, b, func() (err error) {
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 213, 0, 2), Port: 0})
		return err
	})
	defer rx.Close()
	inNS(t, a, func() (err error) {
		tx, err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		return err
	})
	defer tx.Close()
	payload := make([]byte, size)
	got := 0
	buf := make([]byte, 2*size)
	rx.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < n; i++ {
		if _, err := tx.Write(payload); err != nil {
			t.Fatal(err)
		}
		// Lock-step, so that no datagram is dropped by a full socket buffer.
		m, err := rx.Read(buf)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", got, err)
		}
		if m != size {
			t.Fatalf("read %d bytes", m)
		}
		got++
	}

	for _, x := range []struct {
		h *Handle
		s *Stats
	}{{hs[0], &sa1}, {hs[1], &sb1}} {
		if err := x.h.Stat(ctx, x.s); err != nil {
			t.Fatal(err)
		}
	}
	// On the wire each datagram is size + 8 (UDP) + 20 (IP) + 14 (Ethernet).
	txa0, txa1 := sa0.Interface("md0"), sa1.Interface("md0")
	rxb0, rxb1 := sb0.Interface("md1"), sb1.Interface("md1")
	if txa0 == nil || txa1 == nil || rxb0 == nil || rxb1 == nil {
		t.Fatalf("veth ends missing: %+v %+v", sa1.Interfaces, sb1.Interfaces)
	}
	if d := txa1.TxBytes.V - txa0.TxBytes.V; d < n*(size+42) {
		t.Errorf("md0 tx bytes moved %d, sent %d", d, n*(size+42))
	}
	if d := txa1.TxPackets.V - txa0.TxPackets.V; d < n {
		t.Errorf("md0 tx packets moved %d, sent %d", d, n)
	}
	if d := rxb1.RxBytes.V - rxb0.RxBytes.V; d < n*(size+42) {
		t.Errorf("md1 rx bytes moved %d, received %d", d, n*(size+42))
	}
	if d := rxb1.RxPackets.V - rxb0.RxPackets.V; d < n {
		t.Errorf("md1 rx packets moved %d, received %d", d, n)
	}
	// The protocol counters saw the same traffic.
	if d := sa1.UDP.OutDatagrams.V - sa0.UDP.OutDatagrams.V; d < n || !sa1.UDP.OutDatagrams.Available() {
		t.Errorf("a Udp OutDatagrams moved %d, sent %d", d, n)
	}
	if d := sb1.UDP.InDatagrams.V - sb0.UDP.InDatagrams.V; d < n {
		t.Errorf("b Udp InDatagrams moved %d, received %d", d, n)
	}
	if d := sa1.IPExt.OutOctets.V - sa0.IPExt.OutOctets.V; d < n*(size+28) {
		t.Errorf("a IpExt OutOctets moved %d", d)
	}
	if d := sb1.IP.InDelivers.V - sb0.IP.InDelivers.V; d < n {
		t.Errorf("b Ip InDelivers moved %d", d)
	}

	// Every field against iproute2. Counters may move between the two
	// readers (ARP), so ours is read before and after ip and must bracket it.
	for _, x := range []struct {
		ns string
		h  *Handle
	}{{a, hs[0]}, {b, hs[1]}} {
		var before, after Stats
		if err := x.h.Stat(ctx, &before); err != nil {
			t.Fatal(err)
		}
		links := ipLinks(t, x.ns)
		if err := x.h.Stat(ctx, &after); err != nil {
			t.Fatal(err)
		}
		if len(links) != len(after.Interfaces) {
			t.Fatalf("%s: %d interfaces, ip shows %d", x.ns, len(after.Interfaces), len(links))
		}
		names := [16]string{"RxBytes", "RxPackets", "RxErrors", "RxDropped", "RxFIFO", "RxFrame", "RxCompressed", "RxMulticast",
			"TxBytes", "TxPackets", "TxErrors", "TxDropped", "TxFIFO", "TxCollisions", "TxCarrier", "TxCompressed"}
		for i := range after.Interfaces {
			it := &after.Interfaces[i]
			l, ok := links[it.Name]
			if !ok {
				t.Fatalf("%s: %s not in ip link show", x.ns, it.Name)
			}
			lo, hi, ref := ifaceValues(t, before.Interface(it.Name)), ifaceValues(t, it), l.asNetDev()
			for k := range ref {
				if ref[k] < lo[k] || ref[k] > hi[k] {
					t.Errorf("%s %s %s: ip says %d, ours %d..%d", x.ns, it.Name, names[k], ref[k], lo[k], hi[k])
				}
			}
		}
	}
}

// The snmp, snmp6, netstat and sockstat parts agree with the kernel files
// read directly inside the namespace by another process (ip netns exec cat),
// bracketed by two of our Stats.
func TestPartsMatchKernelFiles(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	a, b := newNS(t), newNS(t)
	vethPair(t, a, b)
	// Three datagrams to a closed port of b: b answers ICMP port
	// unreachable. (An unconnected socket, which ignores those errors.)
	var c *net.UDPConn
	inNS(t, a, func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 213, 0, 1)})
		return err
	})
	defer c.Close()
	for i := 0; i < 3; i++ {
		if _, err := c.WriteToUDP([]byte("x"), &net.UDPAddr{IP: net.IPv4(10, 213, 0, 2), Port: 9}); err != nil {
			t.Fatal(err)
		}
	}
	p := newTestPool(t)
	h, err := p.Open(ctx, TargetPath(nsPath(a)), TierAll)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Parts() != TierAll {
		t.Fatalf("parts %v, want all", h.Parts())
	}
	var s Stats
	if !waitFor(5*time.Second, func() bool { return h.Stat(ctx, &s) == nil && s.ICMP.InDestUnreachs.V >= 1 }) {
		t.Fatalf("ICMP InDestUnreachs %v after datagrams to a closed port", s.ICMP.InDestUnreachs)
	}
	if s.UDP.OutDatagrams.V < 3 {
		t.Fatalf("UDP OutDatagrams %v after sending 3", s.UDP.OutDatagrams)
	}
	var lo, hi Stats
	if err := h.Stat(ctx, &lo); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range []string{"snmp", "snmp6", "netstat"} {
		files[f] = []byte(run(t, "ip", "netns", "exec", a, "cat", "/proc/net/"+f))
	}
	if err := h.Stat(ctx, &hi); err != nil {
		t.Fatal(err)
	}
	if hi.Parts != TierAll {
		t.Fatalf("Stat parts %v", hi.Parts)
	}
	var ref Stats
	if err := parseSNMP(files["snmp"], &ref, nil); err != nil {
		t.Fatal(err)
	}
	if err := parseSNMP6(files["snmp6"], &ref); err != nil {
		t.Fatal(err)
	}
	if err := parseNetstat(files["netstat"], &ref, nil); err != nil {
		t.Fatal(err)
	}
	// The reference parse is ours too; check it against the independent
	// reader first, so that the bracket below compares kernel numbers.
	pairs := refPairs(t, files["snmp"])
	checkCounters(t, "ref TCP", &ref.TCP, "", pairs["Tcp"])
	checkCounters(t, "ref IPExt", &ref.IPExt, "", refPairs(t, files["netstat"])["IpExt"])

	bracket(t, "IP", &lo.IP, &ref.IP, &hi.IP)
	bracket(t, "ICMP", &lo.ICMP, &ref.ICMP, &hi.ICMP)
	bracket(t, "TCP", &lo.TCP, &ref.TCP, &hi.TCP)
	bracket(t, "UDP", &lo.UDP, &ref.UDP, &hi.UDP)
	bracket(t, "IP6", &lo.IP6, &ref.IP6, &hi.IP6)
	bracket(t, "ICMP6", &lo.ICMP6, &ref.ICMP6, &hi.ICMP6)
	bracket(t, "UDP6", &lo.UDP6, &ref.UDP6, &hi.UDP6)
	bracket(t, "TCPExt", &lo.TCPExt, &ref.TCPExt, &hi.TCPExt)
	bracket(t, "IPExt", &lo.IPExt, &ref.IPExt, &hi.IPExt)

	// Socket counts are gauges, not counters: compare them when two of our
	// reads around the kernel file agree.
	for try := 0; ; try++ {
		if err := h.Stat(ctx, &lo); err != nil {
			t.Fatal(err)
		}
		var ref Sockets
		if err := parseSockstat(fileSockstat, []byte(run(t, "ip", "netns", "exec", a, "cat", "/proc/net/sockstat")), &ref); err != nil {
			t.Fatal(err)
		}
		if err := parseSockstat(fileSockstat6, []byte(run(t, "ip", "netns", "exec", a, "cat", "/proc/net/sockstat6")), &ref); err != nil {
			t.Fatal(err)
		}
		if err := h.Stat(ctx, &hi); err != nil {
			t.Fatal(err)
		}
		// cat counts the Handle's sock_diag socket, made in a; the
		// Handle leaves it out.
		ref.Used.V--
		if lo.Sockets != hi.Sockets && try < 50 {
			continue
		}
		if hi.Sockets != ref || !ref.TCPInUse.Available() || !ref.UDP6InUse.Available() {
			t.Fatalf("sockets: ours %+v, kernel file %+v", hi.Sockets, ref)
		}
		if hi.Sockets.UDPInUse.V < 1 {
			t.Fatalf("UDP inuse %v with a UDP socket open", hi.Sockets.UDPInUse)
		}
		break
	}
}

func TestStatNoAllocs(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	ns := newNS(t)
	p := newTestPool(t)
	h, err := p.Open(ctx, TargetPath(nsPath(ns)), TierAll)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var s Stats
	if err := h.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(50, func() {
		if err := h.Stat(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per Stat in steady state, want 0", n)
	}
}

// Many goroutines hop at once while others check, on whatever thread they
// run, that the thread is in the home namespace: a hop thread is never
// handed back to the scheduler outside home.
func TestConcurrentHopsStayHome(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	const nNS, hoppers, rounds, checkers = 3, 12, 15, 4
	var names []string
	var ids []ID
	for i := 0; i < nNS; i++ {
		ns := newNS(t)
		run(t, "ip", "-n", ns, "link", "add", "mdd"+strconv.Itoa(i), "type", "veth", "peer", "name", "mdp"+strconv.Itoa(i))
		names = append(names, ns)
		ids = append(ids, pathID(t, nsPath(ns)))
	}
	p := newTestPool(t, WithSize(2))
	home := p.Home()

	var stop atomic.Bool
	var checks atomic.Int64
	var cwg sync.WaitGroup
	errc := make(chan error, hoppers+checkers)
	for c := 0; c < checkers; c++ {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for !stop.Load() {
				id, err := statID(threadNetNS)
				if err != nil {
					errc <- err
					return
				}
				if id != home {
					errc <- errors.New("a goroutine's thread is outside the home namespace")
					return
				}
				checks.Add(1)
			}
		}()
	}
	var hwg sync.WaitGroup
	for g := 0; g < hoppers; g++ {
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			var s Stats
			for r := 0; r < rounds; r++ {
				i := (g + r) % nNS
				var h *Handle
				var err error
				if r%3 == 0 { // several namespaces in one job
					var hs []*Handle
					hs, err = p.OpenAll(ctx, []Target{TargetPath(nsPath(names[i])), TargetPath(nsPath(names[(i+1)%nNS]))}, TierCheap)
					if err == nil {
						if hs[1].ID() != ids[(i+1)%nNS] {
							err = errors.New("OpenAll: second handle has the wrong ID")
						}
						hs[1].Close()
						h = hs[0]
					}
				} else {
					h, err = p.Open(ctx, TargetPath(nsPath(names[i])), TierCheap)
				}
				if err != nil {
					errc <- err
					return
				}
				err = h.Stat(ctx, &s)
				h.Close()
				if err != nil {
					errc <- err
					return
				}
				if s.ID != ids[i] || len(s.Interfaces) != 3 || s.Interface("mdd"+strconv.Itoa(i)) == nil {
					errc <- errors.New("handle read the wrong namespace: " + s.ID.String())
					return
				}
			}
		}()
	}
	hwg.Wait()
	stop.Store(true)
	cwg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if checks.Load() == 0 {
		t.Fatal("the checkers never ran")
	}
}

// A namespace deleted while a handle is open stays alive (the descriptors
// pin it: the veth peer in the other namespace stays) and Stat keeps
// working; Close releases every descriptor, after which the namespace goes
// and takes the peer with it.
func TestDeletedNamespace(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	a, b := newNS(t), newNS(t)
	vethPair(t, a, b)
	p := newTestPool(t)

	fds0 := countFDs(t)
	h, err := p.Open(ctx, TargetPath(nsPath(a)), TierAll)
	if err != nil {
		t.Fatal(err)
	}
	want := 1 // the netlink socket, plus each file this kernel has
	for _, f := range fileNames {
		if _, err := os.Stat("/proc/thread-self/" + f); err == nil {
			want++
		}
	}
	if got := countFDs(t) - fds0; got != want {
		t.Errorf("handle holds %d descriptors, want %d", got, want)
	}
	run(t, "ip", "netns", "del", a)
	if _, err := p.Open(ctx, TargetPath(nsPath(a)), TierCheap); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Open of a deleted namespace: %v, want ErrNotExist", err)
	}
	var te *TargetError
	if _, err := p.Open(ctx, TargetPath(nsPath(a)), TierCheap); !errors.As(err, &te) || te.Target.String() != "path "+nsPath(a) {
		t.Fatalf("want *TargetError naming the path, got %v", err)
	}

	var s Stats
	for i := 0; i < 3; i++ {
		if err := h.Stat(ctx, &s); err != nil {
			t.Fatalf("Stat after ip netns del: %v", err)
		}
		if s.Interface("md0") == nil || s.Parts != TierAll {
			t.Fatalf("Stat after ip netns del: parts %v, interfaces %+v", s.Parts, s.Interfaces)
		}
	}
	if _, err := exec.Command("ip", "-n", b, "link", "show", "md1").CombinedOutput(); err != nil {
		t.Fatalf("veth peer gone while the handle pins the namespace: %v", err)
	}

	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := countFDs(t); got != fds0 {
		t.Errorf("%d descriptors after Close, %d before Open", got, fds0)
	}
	if err := h.Stat(ctx, &s); !errors.Is(err, ErrClosed) {
		t.Fatalf("Stat after Close: %v", err)
	}
	if !waitFor(20*time.Second, func() bool {
		return exec.Command("ip", "-n", b, "link", "show", "md1").Run() != nil
	}) {
		t.Fatal("veth peer still there 20s after Close: the namespace leaked")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	p := newTestPool(t)
	// A PID that does not exist (above pid_max on any default system).
	if _, err := p.Open(ctx, TargetPID(1<<30), TierCheap); !errors.Is(err, ErrNotExist) {
		t.Fatalf("missing pid: %v", err)
	}
	if _, err := p.Identify(ctx, TargetPath("/nonexistent/netns")); !errors.Is(err, ErrNotExist) {
		t.Fatalf("missing path: %v", err)
	}
	if _, err := p.Open(ctx, Target{}, TierCheap); !errors.Is(err, ErrNotExist) {
		t.Fatalf("empty target: %v", err)
	}
	if _, err := p.Open(ctx, TargetHandle(vns.None()), TierCheap); !errors.Is(err, ErrNotExist) {
		t.Fatalf("closed handle: %v", err)
	}
	// A file that is not a namespace: setns refuses it, the thread stays home.
	if _, err := p.Open(ctx, TargetPath("/proc/self/status"), TierCheap); err == nil {
		t.Fatal("Open of a non-namespace file succeeded")
	}
	hs, err := p.OpenAll(ctx, []Target{TargetPID(os.Getpid()), TargetPID(1 << 30)}, TierCheap)
	if len(hs) != 2 || hs[0] == nil || hs[1] != nil || !errors.Is(err, ErrNotExist) {
		t.Fatalf("OpenAll with one bad target: %v %v", hs, err)
	}
	hs[0].Close()

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Open(cctx, TargetPID(os.Getpid()), TierCheap); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if err := (&Handle{closed: true}).Stat(cctx, &Stats{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stat with cancelled ctx: %v", err)
	}
	p.Close()
	if _, err := p.Open(ctx, TargetPID(os.Getpid()), TierCheap); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// Stat racing Close on one Handle: every Stat either reads or reports
// ErrClosed, and the descriptors are released once.
func TestHandleStatCloseRace(t *testing.T) {
	ctx := context.Background()
	p := newTestPool(t)
	fds0 := countFDs(t)
	h, err := p.Open(ctx, TargetPID(os.Getpid()), TierAll&^PartTCPStates)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var closedSeen atomic.Int64
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s Stats
			for i := 0; i < 200; i++ {
				switch err := h.Stat(ctx, &s); {
				case err == nil:
					if s.Parts&PartDev == 0 {
						t.Errorf("Stat without dev: %v", s.Parts)
						return
					}
				case errors.Is(err, ErrClosed):
					closedSeen.Add(1)
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(time.Millisecond)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("%d of 800 Stats saw the Handle closed", closedSeen.Load())
	if got := countFDs(t); got != fds0 {
		t.Fatalf("%d descriptors after Close, %d before Open", got, fds0)
	}
	if err := h.Stat(ctx, &Stats{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Stat after Close: %v", err)
	}
}

// WithRoot: a PID is looked up under the host root (here a directory whose
// proc is this system's /proc, as a host /proc bind-mounted elsewhere).
func TestWithRoot(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	if err := os.Symlink("/proc", root+"/proc"); err != nil {
		t.Fatal(err)
	}
	p := newTestPool(t, WithRoot(root), WithSize(2))
	ref, err := p.Identify(ctx, TargetPID(os.Getpid()))
	if err != nil || ref.ID != pathID(t, "/proc/self/ns/net") {
		t.Fatalf("Identify under root: %v, %v", ref, err)
	}
	ref.Close()
	empty := newTestPool(t, WithRoot(t.TempDir()))
	if _, err := empty.Open(ctx, TargetPID(os.Getpid()), TierCheap); !errors.Is(err, ErrNotExist) {
		t.Fatalf("root without proc: %v, want ErrNotExist", err)
	}
	// A path target is used as given, whatever the root.
	if ref, err := empty.Identify(ctx, TargetPath("/proc/self/ns/net")); err != nil {
		t.Fatal(err)
	} else {
		ref.Close()
	}
}
