package bench

import (
	"context"
	"net"
	"os"
	goruntime "runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	cadvisorcontainer "github.com/google/cadvisor/lib/container"
	"github.com/prometheus/procfs"

	"github.com/metricsd/metricsd/netns"
)

// tcpConns is how many loopback connections BenchmarkTCPStatesScale makes
// (two sockets each, half over IPv4 and half over IPv6);
// METRICSD_BENCH_TCP_CONNS changes it.
func tcpConns(b *testing.B) int {
	n := 5000
	if v := os.Getenv("METRICSD_BENCH_TCP_CONNS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 {
			b.Fatalf("METRICSD_BENCH_TCP_CONNS=%q: want a number >= 2", v)
		}
	}
	return n
}

// BenchmarkTCPStatesScale counts TCP sockets by state in a namespace with
// about 10,000 of them: 5,000 established loopback connections (2,500 over
// IPv4, 2,500 over IPv6) and two listeners, made by the benchmark in a test
// namespace of its own and closed, with the namespace, when it ends. The
// peers, on the same namespace in the same run:
//
//   - metricsd: a Handle with PartTCPStates (a sock_diag dump over a
//     netlink socket made inside the namespace, counted as it is read);
//   - procfs: prometheus/procfs NetTCP + NetTCP6 (/proc/<pid>/net/tcp{,6}
//     read and parsed whole, one struct per socket), counted by state;
//   - cadvisor: cAdvisor's Handler with the tcp metric kind (it scans the
//     same two files and counts states);
//   - metricsd-empty: the same dump of a namespace with no socket: the walk
//     of the TCP hash table, which every namespace shares, that no reader
//     can avoid.
//
// Each reports the process's user and system CPU time per read (user-ns/op,
// sys-ns/op from getrusage): the system time is the kernel's own cost.
//
//	cd bench && sudo go test -run '^$' -bench TCPStatesScale -benchmem -count 5
func BenchmarkTCPStatesScale(b *testing.B) {
	path, pid := netnsForBench(b)
	emptyPath, _ := netnsForBench(b)
	conns := tcpConns(b)
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	if lim.Cur < uint64(2*conns+1000) {
		b.Skipf("RLIMIT_NOFILE is %d; %d connections need %d descriptors", lim.Cur, conns, 2*conns+1000)
	}
	makeConns(b, path, conns)
	want := uint64(2*conns + 2) // both ends of each, and the two listeners

	ctx := context.Background()
	pool, err := netns.NewPool()
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()

	b.Run("metricsd", func(b *testing.B) {
		h, err := pool.Open(ctx, netns.TargetPath(path), netns.PartTCPStates)
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		var s netns.Stats
		if err := h.Stat(ctx, &s); err != nil {
			b.Fatal(err)
		}
		checkStates(b, s.TCPStates, want)
		cpuLoop(b, func() error { return h.Stat(ctx, &s) })
	})
	b.Run("procfs", func(b *testing.B) {
		fs, err := procfs.NewFS("/proc/" + strconv.Itoa(pid))
		if err != nil {
			b.Fatal(err)
		}
		st, err := procfsTCPStates(fs)
		if err != nil {
			b.Fatal(err)
		}
		checkStates(b, st, want)
		cpuLoop(b, func() error { _, err := procfsTCPStates(fs); return err })
	})
	b.Run("cadvisor", func(b *testing.B) {
		h := cadvisorNetHandler(b, pid, cadvisorMetricSet{cadvisorcontainer.NetworkTcpUsageMetrics: {}})
		st, err := h.GetStats()
		if err != nil {
			b.Fatal(err)
		}
		if got := uint64(st.Network.Tcp.Established + st.Network.Tcp6.Established); got != uint64(2*conns) {
			b.Fatalf("cAdvisor counts %d established sockets, want %d", got, 2*conns)
		}
		cpuLoop(b, func() error { _, err := h.GetStats(); return err })
	})
	b.Run("metricsd-empty", func(b *testing.B) {
		h, err := pool.Open(ctx, netns.TargetPath(emptyPath), netns.PartTCPStates)
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		var s netns.Stats
		if err := h.Stat(ctx, &s); err != nil {
			b.Fatal(err)
		}
		checkStates(b, s.TCPStates, 0)
		cpuLoop(b, func() error { return h.Stat(ctx, &s) })
	})
}

// checkStates fails b unless st counts want sockets, all established but
// for the two listeners.
func checkStates(b *testing.B, st netns.TCPStates, want uint64) {
	b.Helper()
	got := st.V4.Total().V + st.V6.Total().V
	est := st.V4[netns.TCPEstablished].V + st.V6[netns.TCPEstablished].V
	if got != want || (want > 0 && est != want-2) {
		b.Fatalf("counted %d sockets, %d established; want %d, %d", got, est, want, want-2)
	}
}

// cpuLoop runs read b.N times, reporting the process's user and system CPU
// time per read.
func cpuLoop(b *testing.B, read func() error) {
	b.Helper()
	b.ReportAllocs()
	u0, s0 := rusage()
	b.ResetTimer()
	for b.Loop() {
		if err := read(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	u1, s1 := rusage()
	b.ReportMetric(float64(u1-u0)/float64(b.N), "user-ns/op")
	b.ReportMetric(float64(s1-s0)/float64(b.N), "sys-ns/op")
}

// makeConns opens n loopback TCP connections inside the namespace at path
// (half over IPv4, half over IPv6), from a goroutine locked to a thread
// that enters the namespace and returns; a socket stays in the namespace it
// was made in. Every socket is closed when b ends. It gives up after 2
// minutes.
func makeConns(b *testing.B, path string, n int) {
	b.Helper()
	var socks []net.Conn
	var ls []net.Listener
	b.Cleanup(func() {
		for _, c := range socks {
			c.Close()
		}
		for _, l := range ls {
			l.Close()
		}
	})
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		// Unlocked only when the thread is back home: otherwise the
		// goroutine ends locked and the runtime discards the thread.
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(home)
		target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		err = dialAll(&socks, &ls, n)
		if err2 := unix.Setns(home, unix.CLONE_NEWNET); err2 != nil {
			errc <- err2 // the thread stays locked and is discarded
			return
		}
		goruntime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

// dialAll listens on 127.0.0.1 and ::1 and dials n connections to them in
// turn, accepting each; the sockets are made in the calling thread's
// network namespace.
func dialAll(socks *[]net.Conn, ls *[]net.Listener, n int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		*ls = append(*ls, l)
	}
	for i := 0; i < n; i++ {
		if time.Now().After(deadline) {
			return os.ErrDeadlineExceeded
		}
		l := (*ls)[i%2]
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			return err
		}
		*socks = append(*socks, c)
		a, err := l.Accept()
		if err != nil {
			return err
		}
		*socks = append(*socks, a)
	}
	return nil
}
