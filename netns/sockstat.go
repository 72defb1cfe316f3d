package netns

import "github.com/metricsd/metricsd/internal/parse"

// Sockets is net/sockstat and net/sockstat6: sockets in use per protocol.
// Mem fields are in pages, as the kernel prints them. Used ("sockets: used")
// is the kernel's count for the whole host on many kernels, not the
// namespace's.
type Sockets struct {
	Used Value

	TCPInUse, TCPOrphan, TCPTimeWait, TCPAlloc, TCPMem Value
	UDPInUse, UDPMem                                   Value
	UDPLiteInUse, RawInUse, FragInUse, FragMemory      Value

	TCP6InUse, UDP6InUse, UDPLite6InUse, Raw6InUse, Frag6InUse, Frag6Memory Value
}

const (
	fileSockstat  = "net/sockstat"
	fileSockstat6 = "net/sockstat6"
)

func (s *Sockets) field(proto, key []byte) *Value {
	switch string(proto) {
	case "sockets":
		if string(key) == "used" {
			return &s.Used
		}
	case "TCP":
		switch string(key) {
		case "inuse":
			return &s.TCPInUse
		case "orphan":
			return &s.TCPOrphan
		case "tw":
			return &s.TCPTimeWait
		case "alloc":
			return &s.TCPAlloc
		case "mem":
			return &s.TCPMem
		}
	case "UDP":
		switch string(key) {
		case "inuse":
			return &s.UDPInUse
		case "mem":
			return &s.UDPMem
		}
	case "UDPLITE":
		if string(key) == "inuse" {
			return &s.UDPLiteInUse
		}
	case "RAW":
		if string(key) == "inuse" {
			return &s.RawInUse
		}
	case "FRAG":
		switch string(key) {
		case "inuse":
			return &s.FragInUse
		case "memory":
			return &s.FragMemory
		}
	case "TCP6":
		if string(key) == "inuse" {
			return &s.TCP6InUse
		}
	case "UDP6":
		if string(key) == "inuse" {
			return &s.UDP6InUse
		}
	case "UDPLITE6":
		if string(key) == "inuse" {
			return &s.UDPLite6InUse
		}
	case "RAW6":
		if string(key) == "inuse" {
			return &s.Raw6InUse
		}
	case "FRAG6":
		switch string(key) {
		case "inuse":
			return &s.Frag6InUse
		case "memory":
			return &s.Frag6Memory
		}
	}
	return nil
}

// parseSockstat parses net/sockstat or net/sockstat6 (file names which) into
// s, lines of "PROTO: key value key value ...". Unknown protocols and keys
// are skipped; a negative value leaves its field unavailable.
func parseSockstat(file string, b []byte, s *Sockets) error {
	if len(parse.TrimSpace(b)) == 0 {
		return parseErr(file, 0, parse.ErrSyntax)
	}
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b = parse.Line(b)
		if len(parse.TrimSpace(line)) == 0 {
			continue
		}
		proto, kv, ok := parse.Cut(line, ':')
		if !ok || len(proto) == 0 {
			return parseErr(file, n, parse.ErrSyntax)
		}
		for {
			var k, v []byte
			k, kv = parse.Field(kv)
			if len(k) == 0 {
				break
			}
			v, kv = parse.Field(kv)
			x, err := parse.Uint(v)
			if err == parse.ErrNegative {
				continue
			}
			if err != nil {
				return parseErr(file, n, err)
			}
			if f := s.field(proto, k); f != nil {
				*f = known(x)
			}
		}
	}
	return nil
}
