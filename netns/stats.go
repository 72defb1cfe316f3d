package netns

import "strings"

// Parts is a set of the statistics a Handle reads. Pick them at Open: each
// part costs descriptors kept open and kernel time per Stat (measured on
// Linux 6.18: net/dev ~2.6 us, sockstat ~2.2 us, snmp ~16 us, snmp6 ~22 us,
// netstat ~41 us; the TCP state dump grows with the number of sockets).
type Parts uint32

const (
	// PartDev is net/dev: per-interface counters, in Stats.Interfaces.
	PartDev Parts = 1 << iota
	// PartSockstat is net/sockstat and net/sockstat6, in Stats.Sockets.
	PartSockstat
	// PartSNMP is net/snmp: Stats.IP, ICMP, TCP, UDP.
	PartSNMP
	// PartSNMP6 is net/snmp6: Stats.IP6, ICMP6, UDP6. Unavailable in a
	// kernel without IPv6.
	PartSNMP6
	// PartNetstat is net/netstat: Stats.TCPExt and IPExt.
	PartNetstat
	// PartTCPStates is TCP connections counted by state through a
	// NETLINK_SOCK_DIAG socket made inside the namespace: Stats.TCPStates.
	PartTCPStates

	// TierCheap is what to read every interval for every container.
	TierCheap = PartDev | PartSockstat
	// TierAll is every part.
	TierAll = PartDev | PartSockstat | PartSNMP | PartSNMP6 | PartNetstat | PartTCPStates
)

var partNames = [...]string{"dev", "sockstat", "snmp", "snmp6", "netstat", "tcpstates"}

// Has reports whether every part of q is in p.
func (p Parts) Has(q Parts) bool { return p&q == q }

// String lists the parts, e.g. "dev|sockstat".
func (p Parts) String() string {
	var b strings.Builder
	for i, n := range partNames {
		if p&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(n)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// Stats is the network statistics of one namespace. The caller owns it and
// passes the same Stats to Handle.Stat every interval: the Interfaces slice
// and the interface names are reused, so a Stat in steady state allocates
// nothing.
//
// Parts says which parts this Stat filled. A part asked for at Open but
// missing here was unavailable (no IPv6: no snmp6) or failed to parse (Stat
// returned the error); its fields are then zero and unavailable, never a
// stale or silent value.
type Stats struct {
	ID    ID
	Parts Parts

	// Interfaces from net/dev, every interface in kernel order (loopback
	// included; see DefaultInterfaceFilter for cAdvisor's choice).
	Interfaces []Interface

	// Sockets from net/sockstat and net/sockstat6.
	Sockets Sockets

	// From net/snmp.
	IP   IP
	ICMP ICMP
	TCP  TCP
	UDP  UDP

	// From net/snmp6.
	IP6   IP6
	ICMP6 ICMP6
	UDP6  UDP

	// From net/netstat.
	TCPExt TCPExt
	IPExt  IPExt

	// TCP connections by state, from sock_diag.
	TCPStates TCPStates
}

// Interface returns the interface named name, or nil.
func (s *Stats) Interface(name string) *Interface {
	for i := range s.Interfaces {
		if s.Interfaces[i].Name == name {
			return &s.Interfaces[i]
		}
	}
	return nil
}
