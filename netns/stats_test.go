package netns

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"testing"
)

func TestPartsString(t *testing.T) {
	for p, want := range map[Parts]string{
		0: "none", TierCheap: "dev|sockstat", PartSNMP6: "snmp6",
		TierAll: "dev|sockstat|snmp|snmp6|netstat|tcpstates",
	} {
		if got := p.String(); got != want {
			t.Errorf("%#x: %q, want %q", uint32(p), got, want)
		}
	}
	if !TierAll.Has(TierCheap) || TierCheap.Has(PartSNMP) {
		t.Fatal("Has")
	}
}

func TestValue(t *testing.T) {
	var v Value
	if _, ok := v.Get(); ok || v.String() != "unavailable" {
		t.Fatal("zero Value must be unavailable")
	}
	v = known(42)
	if n, ok := v.Get(); !ok || n != 42 || v.String() != "42" || v.State != Known {
		t.Fatalf("%v", v)
	}
}

func TestIDAndTarget(t *testing.T) {
	if !(ID{}).IsZero() || (ID{Dev: 4, Ino: 4026531840}).String() != "net:[4026531840]@4" {
		t.Fatal("ID")
	}
	for tg, want := range map[Target]string{
		TargetPID(12): "pid 12", TargetPath("/run/netns/x"): "path /run/netns/x", TargetHandle(5): "handle fd 5", {}: "no target",
	} {
		if tg.String() != want {
			t.Errorf("%q, want %q", tg.String(), want)
		}
	}
}

// TestErrorText: the package name shows once in an error's text, the
// sentinels are bare, and they match the standard library's classes.
func TestErrorText(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&TargetError{Target: TargetPID(3), Err: ErrNotExist}, "netns: pid 3: network namespace does not exist"},
		{&TargetError{Target: TargetPID(3), Err: ErrRestore}, "netns: pid 3: hop thread failed to return home"},
		{&ParseError{File: "net/dev", Line: 3, Err: strconv.ErrSyntax}, "parse net/dev line 3: invalid syntax"},
		{&ParseError{File: "net/snmp", Err: strconv.ErrRange}, "parse net/snmp: value out of range"},
		{ErrClosed, "netns handle closed"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
	e := &TargetError{Target: TargetPID(3), Err: ErrNotExist}
	if e.Unwrap() != ErrNotExist || !errors.Is(e, ErrNotExist) || !errors.Is(e, fs.ErrNotExist) {
		t.Errorf("%v does not match ErrNotExist and fs.ErrNotExist", e)
	}
	if !errors.Is(ErrClosed, os.ErrClosed) || errors.Is(ErrClosed, fs.ErrNotExist) || errors.Is(ErrNotExist, os.ErrClosed) {
		t.Error("ErrClosed must match os.ErrClosed only, ErrNotExist fs.ErrNotExist only")
	}
}
