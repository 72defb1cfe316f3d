package netns

import (
	"context"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkHandleStat reads one part of a test namespace per iteration
// through a kept Handle: pread of the kept descriptors plus parsing.
func BenchmarkHandleStat(b *testing.B) {
	requireRoot(b)
	ctx := context.Background()
	ns := newNS(b)
	p := newTestPool(b)
	for _, c := range []struct {
		name  string
		parts Parts
	}{
		{"dev", PartDev}, {"sockstat", PartSockstat}, {"snmp", PartSNMP}, {"snmp6", PartSNMP6},
		{"netstat", PartNetstat}, {"tcpstates", PartTCPStates}, {"cheap", TierCheap}, {"all", TierAll},
	} {
		b.Run(c.name, func(b *testing.B) {
			h, err := p.Open(ctx, TargetPath(nsPath(ns)), c.parts)
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			var s Stats
			b.ReportAllocs()
			for b.Loop() {
				if err := h.Stat(ctx, &s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen is one hop: hand the job to a locked thread, setns there
// and back, open the cheap tier's files, and Close.
func BenchmarkOpen(b *testing.B) {
	requireRoot(b)
	ctx := context.Background()
	ns := newNS(b)
	p := newTestPool(b)
	b.ReportAllocs()
	for b.Loop() {
		h, err := p.Open(ctx, TargetPath(nsPath(ns)), TierCheap)
		if err != nil {
			b.Fatal(err)
		}
		h.Close()
	}
}

// BenchmarkTCPStatesOwnEhash is the TCP state dump of an empty namespace
// that has its own TCP hash table (net.ipv4.tcp_child_ehash_entries = 1024,
// set in a test namespace that is then its parent), against one that shares
// the host's table: the dump walks the whole table either way.
func BenchmarkTCPStatesOwnEhash(b *testing.B) {
	requireRoot(b)
	ctx := context.Background()
	parent := newNS(b)
	run(b, "ip", "netns", "exec", parent, "sysctl", "-q", "-w", "net.ipv4.tcp_child_ehash_entries=1024")
	var childFD int
	inNS(b, parent, func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return err
		}
		fd, err := unix.Open(threadNetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		childFD = fd
		return err
	})
	defer unix.Close(childFD)
	shared := newNS(b)
	p := newTestPool(b)
	for _, c := range []struct{ name, path string }{
		{"shared", nsPath(shared)},
		{"own", "/proc/self/fd/" + strconv.Itoa(childFD)},
	} {
		b.Run(c.name, func(b *testing.B) {
			h, err := p.Open(ctx, TargetPath(c.path), PartTCPStates)
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			var s Stats
			b.ReportAllocs()
			for b.Loop() {
				if err := h.Stat(ctx, &s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
