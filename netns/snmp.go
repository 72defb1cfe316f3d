package netns

import (
	"bytes"

	"github.com/metricsd/metricsd/internal/parse"
)

const fileSNMP = "net/snmp"

// parseSNMP parses net/snmp into s.IP, s.ICMP, s.TCP and s.UDP. c, when not
// nil, is the Handle's cache of the file's header lines (see pairCache).
func parseSNMP(b []byte, s *Stats, c *pairCache) error {
	s.IP, s.ICMP, s.TCP, s.UDP = IP{}, ICMP{}, TCP{}, UDP{}
	return parsePairs(fileSNMP, b, s, c, func(proto, key []byte) *Value {
		switch string(proto) {
		case "Ip":
			return s.IP.field(key)
		case "Icmp":
			return s.ICMP.field(key)
		case "Tcp":
			return s.TCP.field(key)
		case "Udp":
			return s.UDP.field(key)
		}
		return nil
	})
}

// pairCache remembers, for one Handle's net/snmp or net/netstat, the header
// lines it last parsed and the field of s each key went to. The headers
// never change while a kernel runs, so in steady state a Stat compares each
// header line with the cached copy and parses the values straight into
// their fields, with no lookup by key. A header that differs, or another
// Stats, rebuilds the cache.
type pairCache struct {
	s     *Stats
	heads [][]byte
	slots [][]*Value
}

// parsePairs walks a file made of line pairs, a header "Proto: k1 k2 ..."
// followed by "Proto: v1 v2 ..." (net/snmp, net/netstat), and stores each
// value whose field returns a place for it. Unknown protocols and keys are
// skipped; a negative value leaves its field unavailable. A header without
// its value line, a value line for another protocol, or a count of values
// that differs from the count of keys is a *ParseError.
func parsePairs(file string, b []byte, s *Stats, c *pairCache, field func(proto, key []byte) *Value) error {
	if len(parse.TrimSpace(b)) == 0 {
		return parseErr(file, 0, parse.ErrSyntax)
	}
	if c != nil && c.s != s {
		c.s, c.heads, c.slots = s, c.heads[:0], c.slots[:0]
	}
	k := 0 // pair index
	for n := 1; len(b) > 0; n, k = n+2, k+1 {
		var head, vals []byte
		head, b = parse.Line(b)
		if len(parse.TrimSpace(head)) == 0 && len(parse.TrimSpace(b)) == 0 {
			break // trailing newline
		}
		if len(b) == 0 {
			return c.fail(parseErr(file, n, parse.ErrSyntax)) // header without values
		}
		vals, b = parse.Line(b)
		hp, keys, ok1 := parse.Cut(head, ':')
		vp, nums, ok2 := parse.Cut(vals, ':')
		if !ok1 || len(hp) == 0 {
			return c.fail(parseErr(file, n, parse.ErrSyntax))
		}
		if !ok2 || string(hp) != string(vp) {
			return c.fail(parseErr(file, n+1, parse.ErrSyntax))
		}
		var err error
		if c != nil && k < len(c.heads) && bytes.Equal(head, c.heads[k]) {
			err = setValues(nums, c.slots[k])
		} else {
			err = lookUpValues(hp, keys, nums, field, c, k, head)
		}
		if err != nil {
			return c.fail(parseErr(file, n+1, err))
		}
	}
	if c != nil {
		c.heads, c.slots = c.heads[:k], c.slots[:k]
	}
	return nil
}

// setValues is the cached path: slots[j] is where value j goes (nil: skip).
func setValues(nums []byte, slots []*Value) error {
	for j := 0; ; j++ {
		var v []byte
		v, nums = parse.Field(nums)
		if len(v) == 0 {
			if j != len(slots) {
				return parse.ErrSyntax // fewer values than keys
			}
			return nil
		}
		if j >= len(slots) {
			return parse.ErrSyntax // more values than keys
		}
		if f := slots[j]; f != nil {
			if err := setValue(f, v); err != nil {
				return err
			}
		}
	}
}

// lookUpValues is the first-time path: each key is looked up with field. If
// c is not nil it records the header line and the slots as pair k.
func lookUpValues(proto, keys, nums []byte, field func(proto, key []byte) *Value, c *pairCache, k int, head []byte) error {
	var slots []*Value
	if c != nil {
		for len(c.heads) <= k {
			c.heads, c.slots = append(c.heads, nil), append(c.slots, nil)
		}
		c.heads[k] = append(c.heads[k][:0], head...)
		slots = c.slots[k][:0]
		defer func() { c.slots[k] = slots }()
	}
	for {
		var key, v []byte
		key, keys = parse.Field(keys)
		v, nums = parse.Field(nums)
		if len(key) == 0 && len(v) == 0 {
			return nil
		}
		if len(key) == 0 || len(v) == 0 { // more keys than values or the reverse
			return parse.ErrSyntax
		}
		f := field(proto, key)
		if c != nil {
			slots = append(slots, f)
		}
		if f == nil {
			continue
		}
		if err := setValue(f, v); err != nil {
			return err
		}
	}
}

// setValue parses v into f; a negative number leaves f unavailable.
func setValue(f *Value, v []byte) error {
	x, err := parse.Uint(v)
	if err == parse.ErrNegative {
		return nil
	}
	if err != nil {
		return err
	}
	*f = known(x)
	return nil
}

// fail forgets the cache after a parse error, so that a half-built entry is
// never used, and returns err.
func (c *pairCache) fail(err error) error {
	if c != nil {
		c.s, c.heads, c.slots = nil, c.heads[:0], c.slots[:0]
	}
	return err
}
