package netns

import "testing"

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
	v.set(42)
	if n, ok := v.Get(); !ok || n != 42 || v.String() != "42" {
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
	e := &TargetError{Target: TargetPID(3), Err: ErrNotExist}
	if e.Error() != "netns: pid 3: "+ErrNotExist.Error() || e.Unwrap() != ErrNotExist {
		t.Fatal(e.Error())
	}
	pe := &ParseError{File: "net/dev", Line: 3, Err: ErrNotExist}
	if pe.Error() != "netns: parse net/dev line 3: "+ErrNotExist.Error() {
		t.Fatal(pe.Error())
	}
	if (&ParseError{File: "net/snmp", Err: ErrNotExist}).Error() != "netns: parse net/snmp: "+ErrNotExist.Error() {
		t.Fatal("ParseError without line")
	}
}
