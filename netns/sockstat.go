package netns

import "github.com/metricsd/metricsd/internal/parse"

// Sockets is net/sockstat and net/sockstat6: sockets in use per protocol in
// the namespace. Every field but those in Host counts the namespace's own
// sockets (Used since Linux 4.16; before, the kernel printed the host's
// total there).
type Sockets struct {
	// Used is "sockets: used": sockets of every family open in the
	// namespace. A Handle that reads PartTCPStates leaves out its own
	// sock_diag socket, which the kernel counts there. Units: sockets.
	Used Value

	// TCP, UDP, UDP-Lite and raw sockets in use, and TCP sockets in
	// TIME_WAIT (TCP: inuse, tw; UDP, UDPLITE, RAW: inuse). Units:
	// sockets.
	TCPInUse, TCPTimeWait, UDPInUse, UDPLiteInUse, RawInUse Value
	// FragInUse is IPv4 datagrams awaiting reassembly (FRAG: inuse).
	// Units: reassembly queues.
	FragInUse Value
	// FragMemory is the memory those fragments hold (FRAG: memory).
	// Units: bytes.
	FragMemory Value

	// The same for IPv6, from net/sockstat6. Units: sockets; Frag6InUse:
	// reassembly queues; Frag6Memory: bytes.
	TCP6InUse, UDP6InUse, UDPLite6InUse, Raw6InUse, Frag6InUse, Frag6Memory Value

	// Host is the part of net/sockstat that the kernel counts for the
	// whole host, whichever namespace reads it.
	Host HostSockets
}

// HostSockets is the part of net/sockstat that is host-wide: every
// namespace reads the same numbers, the host's totals. Report them once per
// host, never as one container's figures.
type HostSockets struct {
	// TCPOrphan is TCP sockets no longer attached to any process (closed,
	// still finishing), TCPAlloc TCP sockets allocated, in any state
	// (TCP: orphan, alloc). Units: sockets.
	TCPOrphan, TCPAlloc Value
	// TCPMem and UDPMem are the memory charged to TCP and UDP socket
	// buffers, against net.ipv4.tcp_mem and udp_mem (TCP: mem, UDP: mem).
	// Units: pages.
	TCPMem, UDPMem Value
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
			return &s.Host.TCPOrphan
		case "tw":
			return &s.TCPTimeWait
		case "alloc":
			return &s.Host.TCPAlloc
		case "mem":
			return &s.Host.TCPMem
		}
	case "UDP":
		switch string(key) {
		case "inuse":
			return &s.UDPInUse
		case "mem":
			return &s.Host.UDPMem
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
