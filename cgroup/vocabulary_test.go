package cgroup

import (
	"errors"
	iofs "io/fs"
	"os"
	"reflect"
	"testing"
)

// TestIOCounters: a device counter whose row (v1) or key (v2) the kernel
// did not print is Unavailable, never 0, and the IOStats totals follow one
// rule: Unavailable when the file was not read or devices had I/O but none
// gave the counter, else the sum of the Known device values (Known 0 with
// no device).
func TestIOCounters(t *testing.T) {
	k := known
	t.Run("v1 rows missing", func(t *testing.T) {
		var io IOStats
		// 8:0 has Read and Write rows in both files, 8:16 only a Read row
		// in the bytes file and none in the ops file: no Discard rows at
		// all (a kernel before 4.19).
		if err := parseBlkio([]byte("8:0 Read 10\n8:0 Write 7\n8:16 Read 5\n8:0 Total 17\nTotal 22\n"), true, &io); err != nil {
			t.Fatal(err)
		}
		if err := parseBlkio([]byte("8:0 Read 2\n8:0 Write 1\n8:0 Total 3\nTotal 3\n"), false, &io); err != nil {
			t.Fatal(err)
		}
		want := IOStats{
			ReadBytes: k(15), WriteBytes: k(7), ReadOps: k(2), WriteOps: k(1),
			Devices: []IODevice{
				{Major: 8, ReadBytes: k(10), WriteBytes: k(7), ReadOps: k(2), WriteOps: k(1)},
				{Major: 8, Minor: 16, ReadBytes: k(5)},
			},
		}
		if !reflect.DeepEqual(io, want) {
			t.Errorf("got  %+v\nwant %+v", io, want)
		}
		if v := io.Devices[1].WriteOps; v.Available() {
			t.Errorf("8:16 write ops = %v, want unavailable (no row)", v)
		}
	})
	t.Run("v2 keys missing", func(t *testing.T) {
		var io IOStats
		// An io.stat without discard keys (before Linux 5.0).
		if err := parseIOStat([]byte("8:0 rbytes=4096 wbytes=0 rios=1 wios=0\n8:16 rbytes=512 rios=1\n"), &io); err != nil {
			t.Fatal(err)
		}
		want := IOStats{
			ReadBytes: k(4608), WriteBytes: k(0), ReadOps: k(2), WriteOps: k(0),
			Devices: []IODevice{
				{Major: 8, ReadBytes: k(4096), WriteBytes: k(0), ReadOps: k(1), WriteOps: k(0)},
				{Major: 8, Minor: 16, ReadBytes: k(512), ReadOps: k(1)},
			},
		}
		if !reflect.DeepEqual(io, want) {
			t.Errorf("got  %+v\nwant %+v", io, want)
		}
	})
	t.Run("read with no I/O", func(t *testing.T) {
		var io IOStats
		if err := parseBlkio([]byte("Total 0\n"), true, &io); err != nil {
			t.Fatal(err)
		}
		want := IOStats{ReadBytes: k(0), WriteBytes: k(0), DiscardBytes: k(0)} // ops file not read
		if !reflect.DeepEqual(io, want) {
			t.Errorf("got  %+v\nwant %+v", io, want)
		}
	})
	t.Run("not read", func(t *testing.T) {
		ctx := t.Context()
		fs, err := NewFS(ctx, WithRoot(fixtureRoot(t, "cgroup2-kernel6.18", nil)))
		if err != nil {
			t.Fatal(err)
		}
		g, err := fs.Open(ctx, "/fixture_load", CPU|Memory)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		var s Stats
		if err := g.Stat(ctx, &s); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(s.IO, IOStats{Devices: s.IO.Devices}) || len(s.IO.Devices) != 0 {
			t.Errorf("IO without the io controller: %+v, want all unavailable", s.IO)
		}
		if len(s.Hugetlb.Sizes) != 0 || s.Pressure.CPU.Some.Available() {
			t.Errorf("hugetlb %+v, pressure %+v: want none without their controllers", s.Hugetlb, s.Pressure)
		}
	})
}

// TestErrorVocabulary: the sentinels match the standard library's classes
// and a parse error names its file once, with no package prefix.
func TestErrorVocabulary(t *testing.T) {
	ctx := t.Context()
	fs, err := NewFS(ctx, WithRoot(fixtureRoot(t, "cgroup2-kernel6.18", nil)))
	if err != nil {
		t.Fatal(err)
	}
	g, err := fs.Open(ctx, "/fixture_load", All)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	var s Stats
	if err := g.Stat(ctx, &s); !errors.Is(err, ErrClosed) || !errors.Is(err, os.ErrClosed) || err.Error() != "cgroup.Group closed" {
		t.Errorf("Stat after Close: %v, want ErrClosed matching os.ErrClosed", err)
	}
	for _, err := range []error{ErrNotExist, ErrOutsideMount} {
		if !errors.Is(err, iofs.ErrNotExist) || errors.Is(err, os.ErrClosed) {
			t.Errorf("%v: want it to match fs.ErrNotExist only", err)
		}
	}
	if ErrNotExist.Error() != "cgroup does not exist" {
		t.Errorf("ErrNotExist = %q", ErrNotExist)
	}
}
