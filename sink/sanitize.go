package sink

import (
	"sync/atomic"
	"unicode/utf8"

	"github.com/metricsd/metricsd/netns"
)

// Limits bound what containers control in a sink's output: how long a tag
// or label value may be and how many network interfaces of one namespace
// are written. A container may name itself, label itself, call an image
// and create interfaces (NET_ADMIN in its own namespace allows a thousand
// dummies) as it likes; without bounds one container can make a server
// refuse a batch (InfluxDB's 64 KiB series key) or multiply the series of
// a host.
//
// A zero Limits is DefaultLimits; a field that is zero takes its default,
// and a negative one means no bound.
type Limits struct {
	// MaxValueLen is the most bytes of a tag, label or attribute value
	// (default DefaultMaxValueLen). Longer values are cut on a character
	// boundary. Mimir refuses label values over 2,048 bytes by default.
	MaxValueLen int
	// MaxInterfaces is the most network interfaces written per namespace
	// (default DefaultMaxInterfaces): the first ones in the kernel's order
	// (net/dev's, the order they were made: lo and the runtime's eth0
	// come first), after a sink's interface filter.
	MaxInterfaces int
}

const (
	// DefaultMaxValueLen is the default Limits.MaxValueLen.
	DefaultMaxValueLen = 1024
	// DefaultMaxInterfaces is the default Limits.MaxInterfaces: above the
	// 110 pods a kubelet runs by default, one veth each, in a Kubernetes
	// node run as a container (kind).
	DefaultMaxInterfaces = 128
)

// DefaultLimits returns the default bounds.
func DefaultLimits() Limits {
	return Limits{MaxValueLen: DefaultMaxValueLen, MaxInterfaces: DefaultMaxInterfaces}
}

// Sanitized counts what sinks changed or left out of what containers gave
// them, so that nothing is altered unseen. A value is counted once per
// snapshot a sink writes it in.
type Sanitized struct {
	// Replaced is the number of values in which bytes were replaced:
	// invalid UTF-8, control characters, and for line protocol a
	// trailing backslash.
	Replaced uint64
	// Truncated is the number of values cut to Limits.MaxValueLen.
	Truncated uint64
	// Interfaces is the number of interfaces left out: past
	// Limits.MaxInterfaces in their namespace, or named, once sanitised,
	// as an interface before them.
	Interfaces uint64
}

// Add returns the sum of s and o.
func (s Sanitized) Add(o Sanitized) Sanitized {
	return Sanitized{Replaced: s.Replaced + o.Replaced, Truncated: s.Truncated + o.Truncated, Interfaces: s.Interfaces + o.Interfaces}
}

// SanitizeReporter is implemented by the sinks that sanitise (all of this
// module's): Sanitized returns their counts so far. The collector reports
// the sum in Self.Sanitized.
type SanitizeReporter interface {
	Sanitized() Sanitized
}

// Sanitizer makes what containers give a sink safe for its output under
// Limits, the same way in every sink, and counts what it changed:
//
//   - a value is made valid UTF-8 without control characters: each maximal
//     run of invalid bytes and control characters (U+0000 to U+001F,
//     U+007F) becomes one U+FFFD;
//   - for line protocol (NewLineProtocolSanitizer), a trailing backslash,
//     which no InfluxDB reads back, becomes U+FFFD too;
//   - a value longer than MaxValueLen bytes is cut on a character boundary;
//   - of a namespace's interfaces at most MaxInterfaces are written, and
//     one whose sanitised name is that of an interface before it (u\xff
//     and u\xfe are both u\uFFFD) is left out: it would be a duplicate
//     series, which a Prometheus registry refuses.
//
// A value that needs no change costs one pass over its bytes and no
// allocation. Its methods are safe for concurrent use.
type Sanitizer struct {
	maxLen, maxIfaces int
	lineProtocol      bool

	replaced, truncated, ifaces atomic.Uint64
}

// NewSanitizer returns a Sanitizer that applies l.
func NewSanitizer(l Limits) *Sanitizer {
	z := &Sanitizer{maxLen: l.MaxValueLen, maxIfaces: l.MaxInterfaces}
	if z.maxLen == 0 {
		z.maxLen = DefaultMaxValueLen
	}
	if z.maxIfaces == 0 {
		z.maxIfaces = DefaultMaxInterfaces
	}
	return z
}

// NewLineProtocolSanitizer is NewSanitizer for InfluxDB line protocol,
// where a tag value may not end in a backslash either.
func NewLineProtocolSanitizer(l Limits) *Sanitizer {
	z := NewSanitizer(l)
	z.lineProtocol = true
	return z
}

// Sanitized returns the counts so far.
func (z *Sanitizer) Sanitized() Sanitized {
	return Sanitized{Replaced: z.replaced.Load(), Truncated: z.truncated.Load(), Interfaces: z.ifaces.Load()}
}

// Clean reports whether s is written as it is.
func (z *Sanitizer) Clean(s string) bool {
	if z.maxLen >= 0 && len(s) > z.maxLen {
		return false
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	if !ascii && !utf8.ValidString(s) {
		return false
	}
	return !z.lineProtocol || len(s) == 0 || s[len(s)-1] != '\\'
}

// Value returns s as a sink writes it, counting a change. It allocates
// only when s changes.
func (z *Sanitizer) Value(s string) string {
	if z.Clean(s) {
		return s
	}
	return string(z.appendChanged(nil, s))
}

// AppendValue appends s, as a sink writes it, to dst, counting a change.
func (z *Sanitizer) AppendValue(dst []byte, s string) []byte {
	if z.Clean(s) {
		return append(dst, s...)
	}
	return z.appendChanged(dst, s)
}

func (z *Sanitizer) appendChanged(dst []byte, s string) []byte {
	start := len(dst)
	max := z.maxLen
	if max < 0 {
		max = len(s) + 3*len(s) // no bound: U+FFFD is 3 bytes
	}
	replaced, truncated := false, false
	bad := false // in a run of bad bytes
	for i := 0; i < len(s); {
		c := s[i]
		var add string
		switch r, w := utf8.DecodeRuneInString(s[i:]); {
		case c < 0x20 || c == 0x7f || r == utf8.RuneError && w == 1:
			i++
			replaced = true
			if bad {
				continue
			}
			bad, add = true, "\uFFFD"
		default:
			bad, add = false, s[i:i+w]
			i += w
		}
		if len(dst)-start+len(add) > max {
			truncated = true
			break
		}
		dst = append(dst, add...)
	}
	for z.lineProtocol && len(dst) > start && dst[len(dst)-1] == '\\' {
		replaced = true
		dst = dst[:len(dst)-1]
		if len(dst)-start+3 <= max {
			dst = append(dst, "\uFFFD"...)
		} else {
			truncated = true
		}
	}
	if replaced {
		z.replaced.Add(1)
	}
	if truncated {
		z.truncated.Add(1)
	}
	return dst
}

// Interface is a network interface a sink writes: its index in
// netns.Stats.Interfaces and the name it is written under.
type Interface struct {
	Index int
	Name  string
}

// Interfaces appends to dst the interfaces of ifs that a sink writes: those
// keep accepts (every one when keep is nil; it is given the name the
// kernel gave), in order, at most MaxInterfaces, each name sanitised as
// Value does; one whose sanitised name is taken by an interface before it
// is left out. Those left out are counted. It allocates only for names
// that change.
func (z *Sanitizer) Interfaces(dst []Interface, ifs []netns.Interface, keep func(string) bool) []Interface {
	start := len(dst)
	changed := false
	var left uint64
	for i := range ifs {
		name := ifs[i].Name
		if keep != nil && !keep(name) {
			continue
		}
		if z.maxIfaces >= 0 && len(dst)-start >= z.maxIfaces {
			left++
			continue
		}
		if !z.Clean(name) {
			name = z.Value(name)
			changed = true
		}
		if changed && taken(dst[start:], name) {
			// The kernel keeps names unique in a namespace: only a
			// sanitised one can meet another.
			left++
			continue
		}
		dst = append(dst, Interface{Index: i, Name: name})
	}
	if left > 0 {
		z.ifaces.Add(left)
	}
	return dst
}

func taken(kept []Interface, name string) bool {
	for _, k := range kept {
		if k.Name == name {
			return true
		}
	}
	return false
}
