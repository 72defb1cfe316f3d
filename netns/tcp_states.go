package netns

import (
	"encoding/binary"
	"errors"
	"strconv"
	"syscall"
)

// TCPState is a TCP socket state as the kernel numbers it (TCP_ESTABLISHED
// = 1 ... TCP_BOUND_INACTIVE = 13).
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
	// TCPNewSynRecv is the kernel's state of a request socket, a
	// connection a listener has answered but not yet made a socket for.
	// sock_diag reports request sockets as TCPSynRecv (as ss shows them),
	// so TCPStateCounts never counts this state.
	TCPNewSynRecv
	// TCPBoundInactive (Linux 6.8+) selects sockets that only called
	// bind() in a sock_diag request; the kernel reports them as TCPClose.
	// Handle does not ask for them, as ss -a does not: they hold a port but
	// no connection.
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

// TCPStateCounts counts sockets by state, indexed by TCPState, as ss -tan
// shows them. Connections a listener has not yet completed (request
// sockets) are counted under TCPSynRecv, as the kernel reports them; a
// socket that only called bind() is not counted.
//
// Once its family was dumped, every state from TCPEstablished through
// TCPClosing is Known, 0 when no socket is in it; TCPNewSynRecv,
// TCPBoundInactive and the other indexes are Unavailable unless the kernel
// reported a socket there. A family not dumped (IPv6 in a kernel without
// it, or the part not read) is Unavailable throughout.
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

// dumped marks every state a dump reports Known 0, before a dump.
func (c *TCPStateCounts) dumped() {
	for s := TCPEstablished; s <= TCPClosing; s++ {
		c[s] = known(0)
	}
}

// diagStates is the state mask of a dump request: the states iproute2's
// ss -a asks for (TCPF_ESTABLISHED through TCPF_NEW_SYN_RECV). It leaves
// out TCPF_BOUND_INACTIVE (1<<13): since Linux 6.8 that bit adds every
// bind()-only socket, reported as TCP_CLOSE. (The kernel reports request
// sockets, asked for by TCPF_SYN_RECV or TCPF_NEW_SYN_RECV, as SYN_RECV.)
const diagStates = 1<<(TCPNewSynRecv+1) - 1<<TCPEstablished

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

// nlmFDumpIntr is NLM_F_DUMP_INTR: the kernel's tables changed during the
// dump, so it may have missed or repeated sockets.
const nlmFDumpIntr = 0x10

// countDiag counts the inet_diag_msg replies in one netlink read, adding to
// st those that belong to request seq, by their family (AF_INET, AF_INET6)
// and state. It reports whether the dump is done and whether any of its
// messages carried NLM_F_DUMP_INTR. A netlink error reply gives its errno;
// an NLMSG_DONE that carries an error (a dump the kernel cut short) gives
// that errno wrapped, so that it is not taken for a refused request.
func countDiag(b []byte, seq uint32, st *TCPStates) (done, intr bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:4]))
		typ := ne.Uint16(b[4:6])
		flags := ne.Uint16(b[6:8])
		s := ne.Uint32(b[8:12])
		if l < nlmsgHdrLen || l > len(b) {
			return false, intr, errDiagTruncated
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
		if flags&nlmFDumpIntr != 0 {
			intr = true
		}
		switch typ {
		case nlmsgDone:
			// The payload is the dump's end status (an int, 0 or a
			// negative errno); extended ACK attributes may follow.
			if len(msg) >= 4 {
				if e := int32(ne.Uint32(msg[0:4])); e < 0 {
					return true, intr, &dumpError{Errno: syscall.Errno(-e)}
				}
			}
			return true, intr, nil
		case nlmsgError:
			if len(msg) < 4 {
				return false, intr, errDiagTruncated
			}
			if e := int32(ne.Uint32(msg[0:4])); e != 0 {
				return true, intr, syscall.Errno(-e)
			}
			return true, intr, nil
		case sockDiagType, tcpdiagGetSock:
			if len(msg) < 2 {
				return false, intr, errDiagTruncated
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
	return false, intr, nil
}

// dumpError is the error an NLMSG_DONE carried: the kernel ended the dump
// early, so the counts are incomplete.
type dumpError struct{ Errno syscall.Errno }

func (e *dumpError) Error() string { return "dump ended with error: " + e.Errno.Error() }

func (e *dumpError) Unwrap() error { return e.Errno }
