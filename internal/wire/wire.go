// Package wire appends protobuf wire format for the push sinks'
// hand-written encoders (sink/remotewrite, sink/otlp), which write a
// snapshot straight into bytes instead of building generated message
// structs (an allocation per series) and marshalling them.
//
// Forward appenders (AppendTag, AppendVarint, ...) need a field's length
// before its contents, which the caller computes (Size* helpers). Rev is a
// writer that fills a buffer from its end, for deeply nested messages: it
// writes a message's contents first and then its length, with no second
// pass and no copy.
//
// Strings from containers are hostile input: the encoders sanitise them
// first (sink.Sanitizer).
package wire

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// Wire types.
const (
	Varint  = 0
	Fixed64 = 1
	Bytes   = 2
	Fixed32 = 5
)

// SizeVarint is the encoded length of v.
func SizeVarint(v uint64) int { return 1 + (bits.Len64(v|1)-1)/7 }

// SizeTag is the encoded length of a tag of field num.
func SizeTag(num int) int { return SizeVarint(uint64(num) << 3) }

// SizeBytes is the encoded length of a length-delimited field num of n
// bytes.
func SizeBytes(num, n int) int { return SizeTag(num) + SizeVarint(uint64(n)) + n }

// AppendVarint appends v as a varint.
func AppendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// AppendTag appends the tag of field num with wire type typ.
func AppendTag(b []byte, num, typ int) []byte {
	return AppendVarint(b, uint64(num)<<3|uint64(typ))
}

// AppendString appends field num holding s.
func AppendString(b []byte, num int, s string) []byte {
	b = AppendTag(b, num, Bytes)
	b = AppendVarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendDouble appends field num holding f (fixed64).
func AppendDouble(b []byte, num int, f float64) []byte {
	b = AppendTag(b, num, Fixed64)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// Rev writes protobuf backwards: the buffer fills from its end, so that a
// message's contents are written before its length. Len is how much has
// been written; Bytes the result. Writes grow the buffer as needed.
//
//	m := w.Len()
//	w.Double(2, v)        // the fields in reverse order
//	w.String(1, name)
//	w.Message(3, m)       // then the length and tag of the message
type Rev struct {
	buf []byte
	i   int // buf[i:] is written
}

// Reset empties w, keeping its buffer.
func (w *Rev) Reset() { w.i = len(w.buf) }

// Len is the number of bytes written.
func (w *Rev) Len() int { return len(w.buf) - w.i }

// Bytes returns what was written; valid until the next write or Reset.
func (w *Rev) Bytes() []byte { return w.buf[w.i:] }

// room makes room for n more bytes in front.
func (w *Rev) room(n int) {
	if w.i >= n {
		return
	}
	used := len(w.buf) - w.i
	size := max(2*len(w.buf), used+n, 4096)
	nb := make([]byte, size)
	copy(nb[size-used:], w.buf[w.i:])
	w.buf, w.i = nb, size-used
}

// Front reserves n bytes in front and returns them, to be filled in
// forward order: a record whose size is known written in one piece.
func (w *Rev) Front(n int) []byte {
	w.room(n)
	w.i -= n
	return w.buf[w.i : w.i+n : w.i+n]
}

// Varint writes v in front.
func (w *Rev) Varint(v uint64) {
	if v < 0x80 && w.i > 0 { // tags and short lengths
		w.i--
		w.buf[w.i] = byte(v)
		return
	}
	n := SizeVarint(v)
	w.room(n)
	w.i -= n
	b := w.buf[w.i : w.i+n]
	for j := 0; j < n-1; j++ {
		b[j] = byte(v) | 0x80
		v >>= 7
	}
	b[n-1] = byte(v)
}

// Tag writes the tag of field num with wire type typ in front.
func (w *Rev) Tag(num, typ int) { w.Varint(uint64(num)<<3 | uint64(typ)) }

// Raw writes p in front.
func (w *Rev) Raw(p []byte) {
	w.room(len(p))
	w.i -= len(p)
	copy(w.buf[w.i:], p)
}

// RawString writes s in front.
func (w *Rev) RawString(s string) {
	w.room(len(s))
	w.i -= len(s)
	copy(w.buf[w.i:], s)
}

// String writes field num holding s.
func (w *Rev) String(num int, s string) {
	w.RawString(s)
	w.Varint(uint64(len(s)))
	w.Tag(num, Bytes)
}

// Fixed64 writes field num holding v (fixed64, sfixed64).
func (w *Rev) Fixed64(num int, v uint64) {
	w.room(8)
	w.i -= 8
	binary.LittleEndian.PutUint64(w.buf[w.i:], v)
	w.Tag(num, Fixed64)
}

// Double writes field num holding f.
func (w *Rev) Double(num int, f float64) { w.Fixed64(num, math.Float64bits(f)) }

// Uvarint writes field num holding v as a varint (uint64, int64 >= 0,
// enum, bool).
func (w *Rev) Uvarint(num int, v uint64) {
	w.Varint(v)
	w.Tag(num, Varint)
}

// Message closes a message field num whose contents were written since
// Len was start: it writes their length and the tag in front.
func (w *Rev) Message(num, start int) {
	w.Varint(uint64(w.Len() - start))
	w.Tag(num, Bytes)
}
