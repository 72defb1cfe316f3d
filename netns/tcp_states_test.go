package netns

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"
)

const nlmFMulti = 0x2 // NLM_F_MULTI

// diagMsg builds one netlink message of type typ carrying an inet_diag_msg
// head (family, state) or, for NLMSG_ERROR, an errno. Synthetic: the real
// dumps are tested against ss in TestTCPStatesMatchSS; this covers the
// framing cases a kernel does not produce on demand.
func diagMsg(typ uint16, seq uint32, payload []byte) []byte {
	return diagMsgFlags(typ, 0, seq, payload)
}

func diagMsgFlags(typ, flags uint16, seq uint32, payload []byte) []byte {
	l := nlmsgHdrLen + len(payload)
	b := make([]byte, (l+3)&^3)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(l))
	ne.PutUint16(b[4:], typ)
	ne.PutUint16(b[6:], flags)
	ne.PutUint32(b[8:], seq)
	copy(b[nlmsgHdrLen:], payload)
	return b
}

func sock(family, state byte) []byte {
	p := make([]byte, 72)
	p[0], p[1] = family, state
	return p
}

func TestCountDiag(t *testing.T) {
	var in []byte
	in = append(in, diagMsg(tcpdiagGetSock, 7, sock(afInet, byte(TCPListen)))...)
	in = append(in, diagMsg(tcpdiagGetSock, 7, sock(afInet6, byte(TCPEstablished)))...)
	in = append(in, diagMsg(tcpdiagGetSock, 6, sock(afInet, byte(TCPEstablished)))...) // stale
	in = append(in, diagMsg(sockDiagType, 7, sock(afInet, byte(TCPTimeWait)))...)
	in = append(in, diagMsg(tcpdiagGetSock, 7, sock(1, byte(TCPListen)))...) // not inet: skipped
	var st TCPStates
	st.V4.dumped()
	st.V6.dumped()
	done, intr, err := countDiag(in, 7, &st)
	if err != nil || done || intr {
		t.Fatalf("done %v intr %v err %v", done, intr, err)
	}
	if st.V4[TCPListen] != known(1) || st.V4[TCPTimeWait] != known(1) || st.V4[TCPEstablished] != known(0) || st.V6[TCPEstablished] != known(1) || st.V4.Total().V+st.V6.Total().V != 3 {
		t.Fatalf("v4 %v v6 %v", st.V4, st.V6)
	}
	// A family that was not dumped (no IPv6) is Unavailable, not 0.
	var v4only TCPStates
	v4only.V4.dumped()
	if _, _, err := countDiag(diagMsg(tcpdiagGetSock, 7, sock(afInet, byte(TCPListen))), 7, &v4only); err != nil {
		t.Fatal(err)
	}
	if v4only.V4.Total() != known(1) || v4only.V6.Total().Available() || v4only.V6[TCPListen].Available() {
		t.Fatalf("v4 %v v6 %v, want v6 unavailable", v4only.V4, v4only.V6)
	}
	if done, _, err := countDiag(diagMsg(nlmsgDone, 7, make([]byte, 4)), 7, &st); !done || err != nil {
		t.Fatalf("DONE: %v %v", done, err)
	}
	if done, _, err := countDiag(diagMsg(nlmsgDone, 7, nil), 7, &st); !done || err != nil {
		t.Fatalf("DONE without a status: %v %v", done, err)
	}
	if done, _, err := countDiag(diagMsg(nlmsgError, 7, errno(syscall.EINVAL)), 7, &st); !done || !errors.Is(err, syscall.EINVAL) || err != syscall.EINVAL {
		t.Fatalf("ERROR: %v %v", done, err)
	}
	// The kernel puts the dump's own error (e.g. -ENOBUFS, -EMSGSIZE) in
	// NLMSG_DONE: the counts are incomplete. Synthetic: no test can make
	// a real dump fail halfway.
	if done, _, err := countDiag(diagMsg(nlmsgDone, 7, errno(syscall.ENOBUFS)), 7, &st); !done || !errors.Is(err, syscall.ENOBUFS) || err == syscall.ENOBUFS {
		t.Fatalf("DONE with -ENOBUFS: done %v err %v, want a wrapped ENOBUFS", done, err)
	}
	// NLM_F_DUMP_INTR on any message of the dump is reported (and only on
	// this request's messages).
	intrIn := append(diagMsgFlags(tcpdiagGetSock, nlmFMulti, 7, sock(afInet, 1)), diagMsgFlags(tcpdiagGetSock, nlmFMulti|nlmFDumpIntr, 7, sock(afInet, 1))...)
	if done, intr, err := countDiag(intrIn, 7, &st); done || !intr || err != nil {
		t.Fatalf("DUMP_INTR: done %v intr %v err %v", done, intr, err)
	}
	if _, intr, _ := countDiag(diagMsgFlags(nlmsgDone, nlmFDumpIntr, 6, make([]byte, 4)), 7, &st); intr {
		t.Fatal("DUMP_INTR of another request counted")
	}
	if _, _, err := countDiag(diagMsg(sockDiagType, 7, sock(afInet, 1))[:20], 7, &st); err != errDiagTruncated {
		t.Fatalf("truncated: %v", err)
	}
	if TCPTimeWait.String() != "TIME_WAIT" || TCPState(99).String() != "TCPState(99)" {
		t.Fatal("TCPState.String")
	}
}

// errno is a netlink error or status payload: -e as a native int32.
func errno(e syscall.Errno) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, uint32(-int32(e)))
	return b
}

func FuzzCountDiag(f *testing.F) {
	f.Add(diagMsg(tcpdiagGetSock, 1, sock(afInet, 1)), uint32(1))
	f.Add(append(diagMsg(sockDiagType, 1, sock(afInet6, 10)), diagMsg(nlmsgDone, 1, make([]byte, 4))...), uint32(1))
	f.Add(diagMsg(nlmsgError, 1, []byte{0xea, 0xff, 0xff, 0xff}), uint32(1))
	f.Add([]byte{}, uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, seq uint32) {
		var st TCPStates
		done, _, err := countDiag(b, seq, &st)
		if err != nil && err != errDiagTruncated {
			var errno syscall.Errno
			if !errors.As(err, &errno) || !done {
				t.Fatalf("unexpected error %v (done %v)", err, done)
			}
		}
		if n := st.V4.Total().V + st.V6.Total().V; n > uint64(len(b)/nlmsgHdrLen) {
			t.Fatalf("%d sockets counted from %d bytes", n, len(b))
		}
	})
}
