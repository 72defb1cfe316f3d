package netns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/internal/pread"
)

// The files a Handle keeps open, by index.
const (
	fDev = iota
	fSockstat
	fSockstat6
	fSNMP
	fSNMP6
	fNetstat
	nFiles
)

var fileNames = [nFiles]string{fileDev, fileSockstat, fileSockstat6, fileSNMP, fileSNMP6, fileNetstat}

var fileParts = [nFiles]Parts{PartDev, PartSockstat, PartSockstat, PartSNMP, PartSNMP6, PartNetstat}

// fileWhole says which files the kernel generates whole at each read
// (proc_create_net_single: one show call, into a buffer grown until the
// content fits): a read that returns less than asked for returned all of
// it. net/dev is a record per device, handed out a page at a time, so only
// a read returning 0 ends it.
var fileWhole = [nFiles]bool{fDev: false, fSockstat: true, fSockstat6: true, fSNMP: true, fSNMP6: true, fNetstat: true}

// The files are read raw (internal/pread) only while they prove cheap on
// this host: pread.Adaptive turns a file to the ordinary system call from
// its first read over pread.SlowRead. None is cheap by construction:
// net/dev costs in proportion to the namespace's devices and the CPUs
// (with 1,000 veth devices, 18 µs at best and 100 µs on average for one
// page on a 2-vCPU VM, against 2 µs with 3); snmp, snmp6 and netstat fold
// every per-CPU MIB counter (netstat 34 µs on that VM); sockstat sums
// percpu counters, one under its spinlock with interrupts off (in one
// benchmark run on the loaded VM its reads averaged 134 µs of CPU, against
// 3.4 µs in the runs either side). docs/BENCHMARKS.md ("Raw or ordinary
// reads").

// Handle holds the descriptors of one network namespace, opened inside it by
// a hop: its /proc/thread-self/net files and, for PartTCPStates, a
// NETLINK_SOCK_DIAG socket. Stat re-reads them with pread at offset 0, with
// no setns. The descriptors keep the namespace alive, so Close the Handle
// as soon as its container is gone. A Handle is safe for concurrent use;
// Stats are serialized.
type Handle struct {
	id   ID
	home bool

	mu     sync.Mutex
	parts  Parts
	fds    [nFiles]int
	slow   [nFiles]bool // a raw read of the file took longer than pread.SlowRead
	diag   int
	closed bool
	bufs   *sync.Pool // the Pool's read buffers, lent for one Stat; nil: own buffer
	buf    []byte
	nlbuf  []byte
	req    [nlmsgHdrLen + 60]byte
	seq    uint32
	pfd    [1]unix.PollFd
	// abandoned is set when a dump ended before its NLMSG_DONE (an error,
	// a cancelled context): the kernel keeps it open and refuses the next
	// request with EBUSY until what is left of it has been read.
	abandoned bool
	// ipv6 is whether the namespace has IPv6 (net/snmp6 exists), found at
	// open time.
	ipv6 bool
	// perFamily is set once the kernel refused the single dump of both
	// families (TCPDIAG_GETSOCK); Stat then dumps AF_INET and AF_INET6
	// separately with SOCK_DIAG_BY_FAMILY.
	perFamily bool

	snmpCache, netstatCache pairCache
}

func newHandle(id ID, home bool, bufs *sync.Pool) *Handle {
	h := &Handle{id: id, home: home, diag: -1, bufs: bufs}
	for i := range h.fds {
		h.fds[i] = -1
	}
	return h
}

// ID is the namespace's identity.
func (h *Handle) ID() ID { return h.id }

// IsHome reports whether the namespace is the pool's home namespace (the
// host's, for a program running in it): a container started with
// --net=host.
func (h *Handle) IsHome() bool { return h.home }

// Parts is what the Handle reads: the parts asked for at Open that the
// namespace has.
func (h *Handle) Parts() Parts {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.parts
}

// open runs inside the target namespace, on the hop thread: it opens the
// files and the netlink socket and nothing else.
func (h *Handle) open(parts Parts) error {
	for i, name := range fileNames {
		if parts&fileParts[i] == 0 {
			continue
		}
		fd, err := unix.Open("/proc/thread-self/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT && i != fDev && i != fSockstat {
			continue // no IPv6, or a kernel without that file: unavailable
		}
		if err != nil {
			return fmt.Errorf("open /proc/thread-self/%s: %w", name, err)
		}
		h.fds[i] = fd
		h.parts |= fileParts[i]
	}
	if parts&PartTCPStates != 0 {
		// Non-blocking: Stat waits for replies with poll, for as long as
		// its context allows.
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_SOCK_DIAG)
		if err != nil {
			return fmt.Errorf("sock_diag socket: %w", err)
		}
		h.diag = fd
		if err := unix.Connect(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fmt.Errorf("sock_diag connect: %w", err)
		}
		h.ipv6 = unix.Access("/proc/thread-self/net/snmp6", unix.F_OK) == nil
		h.parts |= PartTCPStates
	}
	return nil
}

// Stat reads the Handle's parts into s. It fills s.ID and sets s.Parts to
// the parts read; every other part's fields are reset to unavailable. A part
// that fails (a *ParseError, a read error) is left out of s.Parts and its
// error is returned, joined with the others; the remaining parts are still
// read. After Close it returns ErrClosed (which matches os.ErrClosed).
//
// ctx bounds the TCP state dump: Stat waits for the kernel's replies until
// ctx is done (at most 5 s for a ctx without a deadline), and a ctx
// cancelled halfway through a dump ends it there, failing the part with
// ctx.Err(); the next Stat reads and drops the rest of that dump before it
// asks again. A dump the kernel flags as interrupted (NLM_F_DUMP_INTR) is
// counted again once, then fails with ErrDumpInterrupted; an error the
// kernel reports at the end of a dump fails the part.
func (h *Handle) Stat(ctx context.Context, s *Stats) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if h.bufs != nil {
		// Borrow the read buffer for this Stat: a collector with many
		// namespaces keeps as many buffers as it reads at once, not one
		// per Handle.
		bp := h.bufs.Get().(*[]byte)
		h.buf = *bp
		defer func() { *bp, h.buf = h.buf, nil; h.bufs.Put(bp) }()
	}
	s.ID, s.Parts = h.id, 0
	var errs []error
	fail := func(err error) { errs = append(errs, err) }

	if b, err := h.read(fDev); err != nil {
		s.Interfaces = s.Interfaces[:0]
		fail(err)
	} else if b != nil {
		if err := parseDev(b, s); err != nil {
			s.Interfaces = s.Interfaces[:0] // no half-read list
			fail(err)
		} else {
			s.Parts |= PartDev
		}
	} else {
		s.Interfaces = s.Interfaces[:0]
	}

	s.Sockets = Sockets{}
	if b, err := h.read(fSockstat); err != nil {
		fail(err)
	} else if b != nil {
		err := parseSockstat(fileSockstat, b, &s.Sockets)
		if err == nil {
			if b, err = h.read(fSockstat6); err == nil && b != nil {
				err = parseSockstat(fileSockstat6, b, &s.Sockets)
			}
		}
		if err != nil {
			s.Sockets = Sockets{}
			fail(err)
		} else {
			if u := &s.Sockets.Used; h.diag >= 0 && u.State == Known && u.V > 0 {
				u.V-- // our own sock_diag socket, made in the namespace
			}
			s.Parts |= PartSockstat
		}
	}

	h.readInto(fSNMP, PartSNMP, s, func(b []byte, s *Stats) error { return parseSNMP(b, s, &h.snmpCache) }, &errs)
	h.readInto(fSNMP6, PartSNMP6, s, parseSNMP6, &errs)
	h.readInto(fNetstat, PartNetstat, s, func(b []byte, s *Stats) error { return parseNetstat(b, s, &h.netstatCache) }, &errs)
	if s.Parts&PartSNMP == 0 {
		s.IP, s.ICMP, s.TCP, s.UDP = IP{}, ICMP{}, TCP{}, UDP{}
	}
	if s.Parts&PartSNMP6 == 0 {
		s.IP6, s.ICMP6, s.UDP6 = IP6{}, ICMP6{}, UDP{}
	}
	if s.Parts&PartNetstat == 0 {
		s.TCPExt, s.IPExt = TCPExt{}, IPExt{}
	}

	s.TCPStates = TCPStates{}
	if h.diag >= 0 {
		if err := h.tcpStates(ctx, &s.TCPStates); err != nil {
			s.TCPStates = TCPStates{}
			fail(err)
		} else {
			s.Parts |= PartTCPStates
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

func (h *Handle) readInto(i int, part Parts, s *Stats, parse func([]byte, *Stats) error, errs *[]error) {
	b, err := h.read(i)
	if err == nil && b != nil {
		err = parse(b, s)
		if err == nil {
			s.Parts |= part
		}
	}
	if err != nil {
		*errs = append(*errs, err)
	}
}

// read returns the whole content of file i, or nil when it is not open.
// seq_file hands out at most about a page per read for net/dev, so it reads
// until pread returns 0, or, for a file generated whole (fileWhole), until
// a read returns less than the buffer had room for; the buffer grows (and
// stays grown) when full.
func (h *Handle) read(i int) ([]byte, error) {
	fd := h.fds[i]
	if fd < 0 {
		return nil, nil
	}
	if h.buf == nil {
		h.buf = make([]byte, 8<<10)
	}
	n := 0
	for {
		if n == len(h.buf) {
			nb := make([]byte, 2*len(h.buf))
			copy(nb, h.buf)
			h.buf = nb
		}
		m, err := pread.Adaptive(fd, h.buf[n:], int64(n), &h.slow[i])
		if err != nil {
			return nil, fmt.Errorf("netns: read %s: %w", fileNames[i], err)
		}
		if m == 0 || fileWhole[i] && n+m < len(h.buf) {
			return h.buf[:n+m], nil
		}
		n += m
	}
}

// tcpStates counts the namespace's TCP sockets by state. It asks for both
// families in one dump with the old TCPDIAG_GETSOCK request, which the
// kernel serves with one walk of the TCP hash tables: the walk, not the
// sockets, is most of the cost in a namespace with few sockets, because the
// tables are shared by every namespace (262144 buckets on the test VM). If
// the kernel refuses that request it falls back to one SOCK_DIAG_BY_FAMILY
// dump per family.
func (h *Handle) tcpStates(ctx context.Context, st *TCPStates) error {
	if h.nlbuf == nil {
		// The kernel builds each dump datagram in at most 32 KiB less skb
		// overhead (netlink_recvmsg caps max_recvmsg_len), so this never
		// truncates one; countDiag would report it if it did.
		h.nlbuf = make([]byte, 32<<10)
	}
	if !h.perFamily {
		err := h.dump(ctx, tcpdiagGetSock, 0, st)
		if err == nil {
			return nil
		}
		if err != unix.EINVAL && err != unix.ENOENT && err != unix.EOPNOTSUPP {
			return fmt.Errorf("netns: sock_diag dump: %w", err)
		}
		h.perFamily = true
		*st = TCPStates{}
	}
	if err := h.dump(ctx, sockDiagType, unix.AF_INET, st); err != nil {
		return fmt.Errorf("netns: sock_diag dump AF_INET: %w", err)
	}
	if h.ipv6 {
		if err := h.dump(ctx, sockDiagType, unix.AF_INET6, st); err != nil {
			return fmt.Errorf("netns: sock_diag dump AF_INET6: %w", err)
		}
	}
	return nil
}

// dump counts the sockets of one dump request into st, whose counts for
// the families dumped it resets first. typ is tcpdiagGetSock (both
// families) or sockDiagType (family). A dump the kernel flags
// NLM_F_DUMP_INTR is counted again from scratch, once; a second
// interrupted dump is ErrDumpInterrupted.
func (h *Handle) dump(ctx context.Context, typ uint16, family uint8, st *TCPStates) error {
	for try := 0; ; try++ {
		if typ == tcpdiagGetSock || family == unix.AF_INET {
			st.V4.dumped()
		}
		if typ == tcpdiagGetSock && h.ipv6 || family == unix.AF_INET6 {
			st.V6.dumped()
		}
		intr, err := h.dumpOnce(ctx, typ, family, st)
		if err != nil || !intr {
			return err
		}
		if try == 1 {
			return ErrDumpInterrupted
		}
	}
}

// dumpOnce sends one dump request and counts the replies: struct
// inet_diag_req for tcpdiagGetSock, struct inet_diag_req_v2 for
// sockDiagType. A request the kernel refuses with EBUSY (a dump of an
// earlier request is still open) is sent again once, after draining.
func (h *Handle) dumpOnce(ctx context.Context, typ uint16, family uint8, st *TCPStates) (intr bool, err error) {
	if h.abandoned {
		h.drain()
	}
	for try := 0; ; try++ {
		intr, err = h.request(ctx, typ, family, st)
		if err != unix.EBUSY || try == 1 {
			return intr, err
		}
		h.drain()
	}
}

func (h *Handle) request(ctx context.Context, typ uint16, family uint8, st *TCPStates) (intr bool, err error) {
	h.seq++
	ne := binary.NativeEndian
	r := h.req[:]
	clear(r)
	ne.PutUint16(r[4:], typ)
	ne.PutUint16(r[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(r[8:], h.seq)
	if typ == tcpdiagGetSock {
		// struct inet_diag_req: family, src_len, dst_len, ext, sockid (48
		// bytes), states, dbs. The kernel ignores family for a dump.
		r[16] = unix.AF_INET
		ne.PutUint32(r[16+4+48:], diagStates)
	} else {
		// struct inet_diag_req_v2: family, protocol, ext, pad, states, sockid.
		r = r[:nlmsgHdrLen+56]
		r[16], r[17] = family, unix.IPPROTO_TCP
		ne.PutUint32(r[20:], diagStates)
	}
	ne.PutUint32(r[0:], uint32(len(r)))
	for {
		_, err := unix.Write(h.diag, r)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, err
		}
		break
	}
	// Until its NLMSG_DONE, the dump is open in the kernel.
	h.abandoned = true
	for {
		n, err := unix.Read(h.diag, h.nlbuf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			if err := h.wait(ctx); err != nil {
				return intr, err
			}
			continue
		}
		if err != nil {
			return intr, err
		}
		if n == 0 {
			return intr, errDiagTruncated
		}
		done, in, err := countDiag(h.nlbuf[:n], h.seq, st)
		intr = intr || in
		if done {
			h.abandoned = false
			return intr, err
		}
		if err != nil {
			return intr, err
		}
		// Between datagrams: a cancelled Stat ends here, and the next
		// one drains the rest.
		if err := ctx.Err(); err != nil {
			return intr, err
		}
	}
}

// maxDiagWait bounds the wait for a reply when ctx has no deadline. The
// kernel makes each part of a dump while the read before returns, so a
// reply not queued at once means it is not coming.
const maxDiagWait = 5 * time.Second

// wait waits until the diag socket is readable, ctx is done, or, for a ctx
// without a deadline, maxDiagWait has passed (unix.EAGAIN).
func (h *Handle) wait(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(maxDiagWait)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			if ok {
				return context.DeadlineExceeded
			}
			return fmt.Errorf("no reply in %v: %w", maxDiagWait, unix.EAGAIN)
		}
		// Wake at least every 50 ms to notice a cancelled ctx.
		ms := int(min(left, 50*time.Millisecond)/time.Millisecond) + 1
		h.pfd[0] = unix.PollFd{Fd: int32(h.diag), Events: unix.POLLIN}
		n, err := unix.Poll(h.pfd[:], ms)
		if err != nil && err != unix.EINTR {
			return err
		}
		if n > 0 {
			return nil
		}
	}
}

// drain reads and drops what is left of an abandoned dump, so that the
// kernel takes the next request. Each read of a datagram makes the kernel
// queue the dump's next one before the read returns, so a read that finds
// nothing queued (EAGAIN) means the dump has ended.
func (h *Handle) drain() {
	for {
		n, err := unix.Read(h.diag, h.nlbuf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			break
		}
	}
	h.abandoned = false
}

// Close releases the descriptors, letting the namespace go if nothing else
// holds it. It is safe to call more than once.
func (h *Handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	var errs []error
	for i, fd := range h.fds {
		if fd >= 0 {
			if err := unix.Close(fd); err != nil {
				errs = append(errs, err)
			}
			h.fds[i] = -1
		}
	}
	if h.diag >= 0 {
		if err := unix.Close(h.diag); err != nil {
			errs = append(errs, err)
		}
		h.diag = -1
	}
	h.buf, h.nlbuf = nil, nil
	h.snmpCache, h.netstatCache = pairCache{}, pairCache{}
	return errors.Join(errs...)
}
