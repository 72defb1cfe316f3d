package netns

import (
	"encoding/binary"
	"errors"
	"strconv"
	"syscall"
)

// TCPState is a TCP socket state as the kernel numbers it (TCP_ESTABLISHED
// = 1 ... TCP_NEW_SYN_RECV = 12).
type TCPState uint8

// The kernel's TCP states (include/net/tcp_states.h).
const (
	TCPEstablished TCPState = 1 + iota
	TCPSynSent
	TCPSynRecv
	TCPFinWait1
	TCPFinWait2
	TCPTimeWait
	TCPClose
	TCPCloseWait
	TCPLastAck
	TCPListen
	TCPClosing
	TCPNewSynRecv
	TCPBoundInactive
)

var tcpStateNames = [...]string{
	TCPEstablished:   "ESTABLISHED",
	TCPSynSent:       "SYN_SENT",
	TCPSynRecv:       "SYN_RECV",
	TCPFinWait1:      "FIN_WAIT1",
	TCPFinWait2:      "FIN_WAIT2",
	TCPTimeWait:      "TIME_WAIT",
	TCPClose:         "CLOSE",
	TCPCloseWait:     "CLOSE_WAIT",
	TCPLastAck:       "LAST_ACK",
	TCPListen:        "LISTEN",
	TCPClosing:       "CLOSING",
	TCPNewSynRecv:    "NEW_SYN_RECV",
	TCPBoundInactive: "BOUND_INACTIVE",
}

// String returns the kernel's name for s, e.g. "TIME_WAIT".
func (s TCPState) String() string {
	if int(s) < len(tcpStateNames) && tcpStateNames[s] != "" {
		return tcpStateNames[s]
	}
	return "TCPState(" + strconv.Itoa(int(s)) + ")"
}

// TCPStateCounts counts sockets by state, indexed by TCPState.
// Connections not yet accepted by a listener that the kernel keeps as
// request sockets are counted under TCPNewSynRecv (ss shows them as
// SYN-RECV).
//
// Once its family was dumped, every state the kernel defines
// (TCPEstablished through TCPBoundInactive) is Known, 0 when no socket is in
// it; the other indexes are Unavailable unless the kernel reported a socket
// there. A family not dumped (IPv6 in a kernel without it, or the part not
// read) is Unavailable throughout.
type TCPStateCounts [16]Value

// Total is the number of sockets of every state: Known when the family was
// dumped, else Unavailable.
func (c *TCPStateCounts) Total() Value {
	var n Value
	for _, x := range c {
		if x.State == Known {
			n = known(n.V + x.V)
		}
	}
	return n
}

// dumped marks every state the kernel defines Known 0, before a dump.
func (c *TCPStateCounts) dumped() {
	for s := TCPEstablished; s <= TCPBoundInactive; s++ {
		c[s] = known(0)
	}
}

// TCPStates is TCP sockets by state for IPv4 and IPv6, dumped through
// NETLINK_SOCK_DIAG. IPv6 sockets that carry IPv4-mapped traffic are counted
// under V6, as the kernel lists them. V6 is Unavailable throughout when the
// namespace's kernel has no IPv6.
type TCPStates struct {
	V4, V6 TCPStateCounts
}

// Netlink and socket constants, here so that the parser builds on every
// platform.
const (
	nlmsgHdrLen     = 16
	nlmsgError      = 2
	nlmsgDone       = 3
	sockDiagType    = 20 // SOCK_DIAG_BY_FAMILY
	tcpdiagGetSock  = 18 // TCPDIAG_GETSOCK, the request before sock_diag
	afInet, afInet6 = 2, 10
)

var errDiagTruncated = errors.New("truncated sock_diag message")

// countDiag counts the inet_diag_msg replies in one netlink read, adding to
// st those that belong to request seq, by their family (AF_INET, AF_INET6)
// and state. It reports whether the dump is done. A netlink error reply
// gives its errno.
func countDiag(b []byte, seq uint32, st *TCPStates) (done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:4]))
		typ := ne.Uint16(b[4:6])
		s := ne.Uint32(b[8:12])
		if l < nlmsgHdrLen || l > len(b) {
			return false, errDiagTruncated
		}
		msg := b[nlmsgHdrLen:l]
		if al := (l + 3) &^ 3; al < len(b) {
			b = b[al:]
		} else {
			b = nil
		}
		if s != seq {
			continue // left over from an earlier, abandoned dump
		}
		switch typ {
		case nlmsgDone:
			return true, nil
		case nlmsgError:
			if len(msg) < 4 {
				return false, errDiagTruncated
			}
			if e := int32(ne.Uint32(msg[0:4])); e != 0 {
				return true, syscall.Errno(-e)
			}
			return true, nil
		case sockDiagType, tcpdiagGetSock:
			if len(msg) < 2 {
				return false, errDiagTruncated
			}
			c := &st.V4
			switch msg[0] {
			case afInet:
			case afInet6:
				c = &st.V6
			default:
				continue
			}
			if s := msg[1]; int(s) < len(c) {
				c[s] = known(c[s].V + 1)
			}
		}
	}
	return false, nil
}
