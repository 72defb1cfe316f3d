package wire

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// TestRev writes nested messages backwards, past the first buffer's size,
// and reads them back with protowire.
func TestRev(t *testing.T) {
	var w Rev
	long := strings.Repeat("z", 5000)
	outer := w.Len()
	w.Double(4, math.Pi)
	inner := w.Len()
	w.String(2, long)
	w.Uvarint(1, 300)
	w.Message(3, inner)
	w.String(2, "a\uFFFDb")
	w.Fixed64(1, 42)
	w.Message(7, outer)
	b := w.Bytes()

	num, typ, n := protowire.ConsumeTag(b)
	if num != 7 || typ != protowire.BytesType {
		t.Fatalf("outer tag %d %d", num, typ)
	}
	msg, m := protowire.ConsumeBytes(b[n:])
	if n+m != len(b) {
		t.Fatalf("outer length: %d+%d of %d", n, m, len(b))
	}
	var got []any
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		msg = msg[n:]
		switch typ {
		case protowire.Fixed64Type:
			v, k := protowire.ConsumeFixed64(msg)
			got = append(got, num, v)
			msg = msg[k:]
		case protowire.BytesType:
			v, k := protowire.ConsumeBytes(msg)
			got = append(got, num, string(v))
			msg = msg[k:]
		default:
			t.Fatalf("field %d type %d", num, typ)
		}
	}
	want := []any{protowire.Number(1), uint64(42), protowire.Number(2), "a\uFFFDb", protowire.Number(3), "", protowire.Number(4), math.Float64bits(math.Pi)}
	if len(got) != len(want) {
		t.Fatalf("fields %v", got)
	}
	for i := range want {
		if i == 5 {
			continue // the inner message, checked below
		}
		if got[i] != want[i] {
			t.Errorf("field %d: %v, want %v", i, got[i], want[i])
		}
	}
	in := []byte(got[5].(string))
	var exp []byte
	exp = protowire.AppendTag(exp, 1, protowire.VarintType)
	exp = protowire.AppendVarint(exp, 300)
	exp = protowire.AppendTag(exp, 2, protowire.BytesType)
	exp = protowire.AppendString(exp, long)
	if !bytes.Equal(in, exp) {
		t.Errorf("inner message differs")
	}
	// Forward helpers agree with protowire.
	var f, p []byte
	f = AppendString(AppendDouble(AppendVarint(f, 1<<40), 3, 2.5), 9, "x")
	p = protowire.AppendString(protowire.AppendTag(protowire.AppendFixed64(protowire.AppendTag(protowire.AppendVarint(p, 1<<40), 3, protowire.Fixed64Type), math.Float64bits(2.5)), 9, protowire.BytesType), "x")
	if !bytes.Equal(f, p) {
		t.Errorf("forward: %x, want %x", f, p)
	}
	for _, v := range []uint64{0, 1, 127, 128, 1 << 14, 1<<63 + 5} {
		if SizeVarint(v) != protowire.SizeVarint(v) {
			t.Errorf("SizeVarint(%d) = %d", v, SizeVarint(v))
		}
	}
}
