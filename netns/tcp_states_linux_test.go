package netns

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ss state names -> kernel states.
var ssStates = map[string]TCPState{
	"ESTAB": TCPEstablished, "SYN-SENT": TCPSynSent, "SYN-RECV": TCPSynRecv,
	"FIN-WAIT-1": TCPFinWait1, "FIN-WAIT-2": TCPFinWait2, "TIME-WAIT": TCPTimeWait,
	"UNCONN": TCPClose, "CLOSE-WAIT": TCPCloseWait, "LAST-ACK": TCPLastAck,
	"LISTEN": TCPListen, "CLOSING": TCPClosing,
}

// ssCounts runs `ss -Htan -4|-6` inside ns and counts sockets by state.
func ssCounts(t *testing.T, ns, family string) TCPStateCounts {
	t.Helper()
	var c TCPStateCounts
	c.dumped()
	for _, l := range strings.Split(strings.TrimSpace(run(t, "ip", "netns", "exec", ns, "ss", "-Htan", family)), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		st, ok := ssStates[f[0]]
		if !ok {
			t.Fatalf("ss state %q", f[0])
		}
		c[st].V++
	}
	return c
}

func fmtCounts(c TCPStateCounts) string {
	var b strings.Builder
	for i, n := range c {
		if n.V != 0 || n.State != Known && TCPState(i) >= TCPEstablished && TCPState(i) <= TCPClosing {
			fmt.Fprintf(&b, "%v=%v ", TCPState(i), n)
		}
	}
	return b.String()
}

// 200 TCP connections (100 IPv4, 100 IPv6) in a test namespace, some of
// them half or fully closed: the sock_diag counts match what ss reports
// there, and what the test made.
func TestTCPStatesMatchSS(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("needs ss (iproute2)")
	}
	ctx := context.Background()
	ns := newNS(t)

	const n = 100
	var l4, l6 *net.TCPListener
	var c4, c6 []*net.TCPConn
	inNS(t, ns, func() (err error) {
		if l4, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			return err
		}
		if l6, err = net.ListenTCP("tcp6", &net.TCPAddr{IP: net.IPv6loopback}); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			a, err := net.DialTCP("tcp4", nil, l4.Addr().(*net.TCPAddr))
			if err != nil {
				return err
			}
			c4 = append(c4, a)
			b, err := net.DialTCP("tcp6", nil, l6.Addr().(*net.TCPAddr))
			if err != nil {
				return err
			}
			c6 = append(c6, b)
		}
		return nil
	})
	accept := func(l *net.TCPListener) map[string]*net.TCPConn {
		m := map[string]*net.TCPConn{}
		for i := 0; i < n; i++ {
			c, err := l.AcceptTCP()
			if err != nil {
				t.Fatal(err)
			}
			m[c.RemoteAddr().String()] = c
		}
		return m
	}
	s4, s6 := accept(l4), accept(l6)
	t.Cleanup(func() {
		for _, cs := range [][]*net.TCPConn{c4, c6} {
			for _, c := range cs {
				c.Close()
			}
		}
		for _, m := range []map[string]*net.TCPConn{s4, s6} {
			for _, c := range m {
				c.Close()
			}
		}
		l4.Close()
		l6.Close()
	})
	// 20 IPv4 connections closed by the client first: TIME_WAIT on its side.
	for _, c := range c4[:20] {
		srv := s4[c.LocalAddr().String()]
		c.Close()
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := srv.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("server read after client close: %v", err)
		}
		srv.Close()
	}
	// 10 IPv6 connections closed by the client only: FIN_WAIT2 / CLOSE_WAIT.
	for _, c := range c6[:10] {
		c.Close()
	}

	// Every state is Known, 0 where the test made no socket.
	want4, want6 := TCPStateCounts{}, TCPStateCounts{}
	want4.dumped()
	want6.dumped()
	want4[TCPListen].V, want4[TCPEstablished].V, want4[TCPTimeWait].V = 1, 2*(n-20), 20
	want6[TCPListen].V, want6[TCPEstablished].V, want6[TCPFinWait2].V, want6[TCPCloseWait].V = 1, 2*(n-10), 10, 10

	p := newTestPool(t)
	h, err := p.Open(ctx, TargetPath(nsPath(ns)), PartTCPStates)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var a, b Stats
	var ss4, ss6 TCPStateCounts
	settled := waitFor(10*time.Second, func() bool {
		if err := h.Stat(ctx, &a); err != nil {
			t.Fatal(err)
		}
		ss4, ss6 = ssCounts(t, ns, "-4"), ssCounts(t, ns, "-6")
		if err := h.Stat(ctx, &b); err != nil {
			t.Fatal(err)
		}
		return a.TCPStates == b.TCPStates && b.TCPStates.V4 == want4 && b.TCPStates.V6 == want6
	})
	got := b.TCPStates
	if !settled {
		t.Fatalf("sock_diag v4 %s v6 %s; made v4 %s v6 %s", fmtCounts(got.V4), fmtCounts(got.V6), fmtCounts(want4), fmtCounts(want6))
	}
	if got.V4 != ss4 || got.V6 != ss6 {
		t.Fatalf("sock_diag v4 %s v6 %s; ss -tan: v4 %s v6 %s",
			fmtCounts(got.V4), fmtCounts(got.V6), fmtCounts(ss4), fmtCounts(ss6))
	}
	if b.Parts != PartTCPStates || got.V4.Total().V+got.V6.Total().V != 2+4*n-20 || got.V6.Total().State != Known {
		t.Fatalf("parts %v, total v4 %v v6 %v", b.Parts, got.V4.Total(), got.V6.Total())
	}
	// The fallback, one SOCK_DIAG_BY_FAMILY dump per family, counts the same.
	h.mu.Lock()
	h.perFamily = true
	h.mu.Unlock()
	var c Stats
	if err := h.Stat(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if c.TCPStates != got {
		t.Fatalf("per-family dumps v4 %s v6 %s; single dump v4 %s v6 %s",
			fmtCounts(c.TCPStates.V4), fmtCounts(c.TCPStates.V6), fmtCounts(got.V4), fmtCounts(got.V6))
	}
	// Steady state with ~400 sockets: the dump reuses its buffer.
	if allocs := testing.AllocsPerRun(20, func() { _ = h.Stat(ctx, &b) }); allocs != 0 {
		t.Fatalf("%v allocations per Stat", allocs)
	}
}

// rawSocket makes a TCP socket of family (unix.AF_INET or AF_INET6) bound
// to loopback port 0 and returns it with its port. The test closes it.
func rawSocket(t *testing.T, family int) (fd, port int) {
	t.Helper()
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if family == unix.AF_INET6 {
		sa = &unix.SockaddrInet6{Addr: [16]byte{15: 1}}
	}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		port = a.Port
	case *unix.SockaddrInet6:
		port = a.Port
	}
	return fd, port
}

// connectTo starts a non-blocking connect of a new socket of family to
// loopback port.
func connectTo(t *testing.T, family, port int) {
	t.Helper()
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}
	if family == unix.AF_INET6 {
		sa = &unix.SockaddrInet6{Addr: [16]byte{15: 1}, Port: port}
	}
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		t.Fatal(err)
	}
}

// Sockets that only called bind() are not counted (since Linux 6.8 a dump
// that asks for TCPF_BOUND_INACTIVE returns them as CLOSE; ss -tan does not
// show them), and half-open connections are counted as ss shows them: the
// clients of a listener whose accept queue is full in SYN_SENT (the
// listener drops their SYNs), and connections a listener has answered but
// not completed (request sockets; here held by TCP_DEFER_ACCEPT, which
// ignores the handshake's bare ACK) in SYN_RECV.
func TestTCPStatesBindOnlyAndHalfOpen(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("needs ss (iproute2)")
	}
	ctx := context.Background()
	ns := newNS(t)
	const full, deferred4, deferred6 = 3, 3, 2
	inNS(t, ns, func() error {
		rawSocket(t, unix.AF_INET) // bind() only
		rawSocket(t, unix.AF_INET6)

		// A listener with a backlog of 1 that never accepts: two
		// connections fill its accept queue, the next SYNs are dropped.
		lfull, pfull := rawSocket(t, unix.AF_INET)
		if err := unix.Listen(lfull, 1); err != nil {
			return err
		}
		for range 2 + full {
			connectTo(t, unix.AF_INET, pfull)
		}
		// Listeners that keep each connection a request socket until data
		// arrives (a minute at most).
		for _, x := range []struct{ family, n int }{{unix.AF_INET, deferred4}, {unix.AF_INET6, deferred6}} {
			l, port := rawSocket(t, x.family)
			if err := unix.SetsockoptInt(l, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 60); err != nil {
				return err
			}
			if err := unix.Listen(l, 16); err != nil {
				return err
			}
			for range x.n {
				connectTo(t, x.family, port)
			}
		}
		return nil
	})

	var want4, want6 TCPStateCounts
	want4.dumped()
	want6.dumped()
	want4[TCPListen].V, want4[TCPEstablished].V, want4[TCPSynSent].V, want4[TCPSynRecv].V = 2, 2*2+deferred4, full, deferred4
	want6[TCPListen].V, want6[TCPEstablished].V, want6[TCPSynRecv].V = 1, deferred6, deferred6

	p := newTestPool(t)
	h, err := p.Open(ctx, TargetPath(nsPath(ns)), PartTCPStates)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var a, b Stats
	var ss4, ss6 TCPStateCounts
	settled := waitFor(10*time.Second, func() bool {
		if err := h.Stat(ctx, &a); err != nil {
			t.Fatal(err)
		}
		ss4, ss6 = ssCounts(t, ns, "-4"), ssCounts(t, ns, "-6")
		if err := h.Stat(ctx, &b); err != nil {
			t.Fatal(err)
		}
		return a.TCPStates == b.TCPStates && ss4 == want4 && ss6 == want6
	})
	got := b.TCPStates
	if !settled {
		t.Fatalf("ss -tan v4 %s v6 %s; made v4 %s v6 %s", fmtCounts(ss4), fmtCounts(ss6), fmtCounts(want4), fmtCounts(want6))
	}
	if got.V4 != want4 || got.V6 != want6 {
		t.Fatalf("sock_diag v4 %s v6 %s; ss -tan and the test: v4 %s v6 %s",
			fmtCounts(got.V4), fmtCounts(got.V6), fmtCounts(want4), fmtCounts(want6))
	}
	if got.V4[TCPNewSynRecv].Available() || got.V4[TCPBoundInactive].Available() || got.V6[TCPClose] != known(0) {
		t.Fatalf("NEW_SYN_RECV %v BOUND_INACTIVE %v CLOSE %v, want unavailable, unavailable, 0",
			got.V4[TCPNewSynRecv], got.V4[TCPBoundInactive], got.V6[TCPClose])
	}
}
