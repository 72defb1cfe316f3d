package netns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The helpers below make real namespaces with iproute2. Everything a test
// creates is named mdtest-<random> (namespaces) and removed in t.Cleanup;
// addresses live only inside veth pairs between test namespaces.

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces with ip netns add")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip): ", err)
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// newNS creates a namespace with loopback up and returns its name.
func newNS(t testing.TB) string {
	t.Helper()
	name := "mdtest-" + randHex(5)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		// Already gone when the test deleted it itself.
		if _, err := os.Stat("/run/netns/" + name); err == nil {
			if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v %s", name, err, out)
			}
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

func nsPath(name string) string { return "/run/netns/" + name }

// vethPair links namespaces a and b with a veth pair md0 (in a,
// 10.213.0.1/30) and md1 (in b, 10.213.0.2/30), IPv6 off on both so that
// no router solicitation moves the counters behind the test's back.
func vethPair(t testing.TB, a, b string) {
	t.Helper()
	run(t, "ip", "-n", a, "link", "add", "md0", "type", "veth", "peer", "name", "md1", "netns", b)
	for _, x := range []struct{ ns, dev, addr string }{{a, "md0", "10.213.0.1/30"}, {b, "md1", "10.213.0.2/30"}} {
		run(t, "ip", "netns", "exec", x.ns, "sysctl", "-q", "-w", "net.ipv6.conf."+x.dev+".disable_ipv6=1")
		run(t, "ip", "-n", x.ns, "addr", "add", x.addr, "dev", x.dev)
		run(t, "ip", "-n", x.ns, "link", "set", x.dev, "up")
	}
}

// inNS runs f on a thread that is inside namespace ns for the duration of f:
// sockets f creates belong to ns. f must only make sockets (no goroutines
// that need to be in ns). The thread is checked to be home afterwards and
// disposed of (goroutine exits locked) if not.
func inNS(t testing.TB, ns string, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := unix.Open(threadNetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(home)
		target, err := unix.Open(nsPath(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := f()
		if err := unix.Setns(home, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns home: %w", err) // thread dies locked
			return
		}
		var st1, st2 unix.Stat_t
		if unix.Fstat(home, &st1) != nil || unix.Stat(threadNetNS, &st2) != nil || st1.Ino != st2.Ino || st1.Dev != st2.Dev {
			errc <- fmt.Errorf("test thread not home") // thread dies locked
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or d passes. It is for kernel work that
// finishes asynchronously (namespace teardown, thread exit, TCP state
// changes), never to time anything.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func pathID(t testing.TB, p string) ID {
	t.Helper()
	id, err := statID(p)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newTestPool(t testing.TB, opts ...Option) *Pool {
	t.Helper()
	p, err := NewPool(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
