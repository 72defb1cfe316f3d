package netns

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// What net/sockstat counts per namespace and what for the whole host, as the
// Sockets type says, on the running kernel: two test namespaces, one with
// sockets and an IPv4 fragment awaiting reassembly, one empty, and the
// host's own file.
func TestSockstatScope(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	busy, empty := newNS(t), newNS(t)
	const conns, udps = 10, 3
	var fragLen int
	inNS(t, busy, func() error {
		// Plain TCP: Go's listeners use MPTCP by default where the kernel
		// has it, a second socket per listener.
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		ln, err := lc.Listen(ctx, "tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		l := ln.(*net.TCPListener)
		t.Cleanup(func() { l.Close() })
		for range conns {
			c, err := net.DialTCP("tcp4", nil, l.Addr().(*net.TCPAddr))
			if err != nil {
				return err
			}
			t.Cleanup(func() { c.Close() })
			s, err := l.AcceptTCP()
			if err != nil {
				return err
			}
			t.Cleanup(func() { s.Close() })
		}
		for range udps {
			u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return err
			}
			t.Cleanup(func() { u.Close() })
		}
		// The first fragment of a datagram whose rest never comes: it waits
		// in a reassembly queue (net.ipv4.ipfrag_time, 30 s).
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		pkt := make([]byte, 20+512)
		pkt[0], pkt[8], pkt[9] = 0x45, 64, unix.IPPROTO_UDP // IPv4, TTL, protocol
		binary.BigEndian.PutUint16(pkt[4:], 0x6d64)         // ID
		binary.BigEndian.PutUint16(pkt[6:], 0x2000)         // more fragments, offset 0
		copy(pkt[12:], []byte{127, 0, 0, 1, 127, 0, 0, 1})
		fragLen = len(pkt)
		return unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	})

	p := newTestPool(t)
	open := func(ns string, parts Parts) *Handle {
		h, err := p.Open(ctx, TargetPath(nsPath(ns)), parts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	// hb reads TCP states too: its sock_diag socket is made in busy.
	ha, hb, he := open(busy, TierCheap), open(busy, TierCheap|PartTCPStates), open(empty, TierCheap|PartTCPStates)

	// The namespace's own figures. Used: the test's sockets (2 per
	// connection, the listener, the UDP sockets) and hb's sock_diag socket,
	// which hb leaves out (ha cannot tell it from the test's). he leaves
	// out its own in empty. (The netlink sockets of the ip commands that
	// made the namespaces are freed after an RCU grace period: wait.)
	var a, b, e Stats
	want := uint64(2*conns + 1 + udps)
	waitFor(10*time.Second, func() bool {
		for _, x := range []struct {
			h *Handle
			s *Stats
		}{{ha, &a}, {hb, &b}, {he, &e}} {
			if err := x.h.Stat(ctx, x.s); err != nil {
				t.Fatal(err)
			}
		}
		return a.Sockets.Used == known(want+1) && b.Sockets.Used == known(want) && e.Sockets.Used == known(0)
	})
	if a.Sockets.Used != known(want+1) || b.Sockets.Used != known(want) || e.Sockets.Used != known(0) {
		t.Errorf("sockets used: busy %v without a diag socket of its own, %v with one; empty %v; want %d, %d, 0", a.Sockets.Used, b.Sockets.Used, e.Sockets.Used, want+1, want)
	}
	// Another process reading the file in busy counts hb's socket too.
	var catView Sockets
	if err := parseSockstat(fileSockstat, []byte(run(t, "ip", "netns", "exec", busy, "cat", "/proc/net/sockstat")), &catView); err != nil {
		t.Fatal(err)
	}
	if catView.Used != known(want+1) {
		t.Errorf("cat in busy: sockets used %v, want %d (the test's and hb's diag socket)", catView.Used, want+1)
	}
	if a.Sockets.TCPInUse != known(2*conns+1) || a.Sockets.UDPInUse != known(udps) || e.Sockets.TCPInUse != known(0) || e.Sockets.UDPInUse != known(0) {
		t.Errorf("inuse: busy TCP %v UDP %v, empty TCP %v UDP %v", a.Sockets.TCPInUse, a.Sockets.UDPInUse, e.Sockets.TCPInUse, e.Sockets.UDPInUse)
	}
	if e.Sockets.TCPTimeWait != known(0) || e.Sockets.FragInUse != known(0) || e.Sockets.FragMemory != known(0) {
		t.Errorf("empty: tw %v, frag inuse %v memory %v; want 0", e.Sockets.TCPTimeWait, e.Sockets.FragInUse, e.Sockets.FragMemory)
	}
	// FRAG memory is bytes: at least the fragment's own length (as a page
	// count it would be 0 or 1).
	if a.Sockets.FragInUse != known(1) || a.Sockets.FragMemory.V < uint64(fragLen) {
		t.Errorf("busy: frag inuse %v memory %v; want 1 queue holding at least %d bytes", a.Sockets.FragInUse, a.Sockets.FragMemory, fragLen)
	}

	// The host-wide figures: the same in both namespaces and in the host's
	// own file, read back to back until no socket elsewhere on the machine
	// changed them in between.
	var host Sockets
	for try := 0; ; try++ {
		for _, x := range []struct {
			h *Handle
			s *Stats
		}{{ha, &a}, {he, &e}} {
			if err := x.h.Stat(ctx, x.s); err != nil {
				t.Fatal(err)
			}
		}
		f, err := os.ReadFile("/proc/thread-self/net/sockstat")
		if err != nil {
			t.Fatal(err)
		}
		host = Sockets{}
		if err := parseSockstat(fileSockstat, f, &host); err != nil {
			t.Fatal(err)
		}
		if a.Sockets.Host == e.Sockets.Host && e.Sockets.Host == host.Host {
			break
		}
		if try == 200 {
			t.Fatalf("host-wide figures differ: busy %+v, empty %+v, host %+v", a.Sockets.Host, e.Sockets.Host, host.Host)
		}
	}
	if h := e.Sockets.Host; !h.TCPOrphan.Available() || !h.TCPMem.Available() || !h.UDPMem.Available() || h.TCPAlloc.V < 2*conns+1 {
		t.Errorf("empty namespace's host-wide figures %+v: want busy's %d TCP sockets among alloc", h, 2*conns+1)
	}
}
