package netns

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// lineKeys is the first field of every line: what stays the same between
// two reads of a file whose counters move.
func lineKeys(b []byte) []string {
	var keys []string
	for _, l := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		f := bytes.Fields(l)
		if len(f) == 0 {
			keys = append(keys, "")
			continue
		}
		keys = append(keys, string(f[0]))
	}
	return keys
}

// TestReadWhole reads every file of a Handle through read, with buffers
// from far smaller than the files to larger, and compares with os.ReadFile
// of the same file: the same lines, in the same order, whether read to a
// 0-length pread (net/dev) or ended by the first short read (the files the
// kernel generates whole). As root the namespace is a test one with 60
// links (veth pairs), so that its net/dev (~8 KB) comes a page per read: a short
// read there is not the end. Otherwise it is this process's own.
func TestReadWhole(t *testing.T) {
	ctx := context.Background()
	p := newTestPool(t)
	target := TargetPID(os.Getpid())
	readFile := func(name string) ([]byte, error) { return os.ReadFile("/proc/thread-self/" + name) }
	if os.Geteuid() == 0 {
		ns := newNS(t)
		var batch strings.Builder
		for i := range 30 { // (this kernel has no dummy links)
			fmt.Fprintf(&batch, "link add mda%d type veth peer name mdb%d\n", i, i)
		}
		cmd := exec.Command("ip", "-n", ns, "-batch", "-")
		cmd.Stdin = strings.NewReader(batch.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ip -batch: %v %s", err, out)
		}
		target = TargetPath(nsPath(ns))
		readFile = func(name string) (b []byte, err error) {
			inNS(t, ns, func() error { b, err = os.ReadFile("/proc/thread-self/" + name); return nil })
			return b, err
		}
	}
	h, err := p.Open(ctx, target, TierAll&^PartTCPStates)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for i := range nFiles {
		if h.fds[i] < 0 {
			continue
		}
		want, err := readFile(fileNames[i])
		if err != nil {
			t.Fatal(err)
		}
		if i == fDev && os.Geteuid() == 0 && len(want) < 6000 {
			t.Fatalf("net/dev of the test namespace has %d bytes, want more than a page", len(want))
		}
		for _, size := range []int{7, 100, 1000, 4096, 8 << 10, 64 << 10} {
			h.mu.Lock()
			h.buf = make([]byte, size)
			got, err := h.read(i)
			got = bytes.Clone(got)
			h.buf = nil
			h.mu.Unlock()
			if err != nil {
				t.Fatalf("%s with a %d-byte buffer: %v", fileNames[i], size, err)
			}
			if g, w := lineKeys(got), lineKeys(want); !slices.Equal(g, w) {
				t.Errorf("%s with a %d-byte buffer: %d lines %q, os.ReadFile %d lines %q", fileNames[i], size, len(g), g, len(w), w)
			}
		}
	}
}
