package cgroup

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/internal/pread"
)

// OOMWatcher reports the OOM kills of the Groups it watches as the kernel
// reports them, rather than at the next Stat: a container whose only
// process the OOM killer killed is gone, its group removed, before a
// periodic reader comes back, and its kill with it (cAdvisor's
// container_oom_events_total has stayed 0 for that reason:
// google/cadvisor#3015).
//
// On cgroup v2 it watches each group's memory.events with inotify (the
// kernel notifies a change of the file); on cgroup v1 it registers an
// eventfd for memory.oom_control through the group's cgroup.event_control
// (the kernel signals it when the group is under OOM, and when the group is
// removed). At each notification it reads the group's count of OOM kills
// (memory.events oom_kill; v1: memory.oom_control oom_kill, Linux 4.13+)
// through the descriptor the Group keeps, and reports what it has not
// reported yet. The kernel notifies before the kill is counted (v1) or
// rate-limits a second notification to one per 20 ms (v2), so when a
// notification shows an OOM but no new kill, the watcher reads again after
// 1, 4, 16, 64 and 256 ms.
//
// Every group shares one goroutine, one epoll instance and one inotify
// descriptor; a v1 group costs one eventfd, a v2 group an inotify watch.
// The handler runs on that goroutine: it must return quickly and must not
// call the watcher.
type OOMWatcher struct {
	handler func(OOMKill)
	log     *slog.Logger

	epfd, inofd, wakefd int
	done                chan struct{}

	mu      sync.Mutex // guards what follows and every oomWatch
	byGroup map[*Group]*oomWatch
	byWD    map[int32][]*oomWatch // v2: inotify watch descriptor
	byFD    map[int32]*oomWatch   // v1: eventfd
	closed  bool

	localOnce   sync.Once
	localEvents bool // cgroup2 is mounted with memory_localevents
}

// oomSettle are the delays after a notification at which a watcher reads a
// group again while it shows an OOM but no new kill.
var oomSettle = [...]time.Duration{time.Millisecond, 4 * time.Millisecond, 16 * time.Millisecond, 64 * time.Millisecond, 256 * time.Millisecond}

type oomWatch struct {
	g    *Group
	file int   // index in g.files of memory.events (v2) or memory.oom_control (v1)
	v1   bool  // registered through cgroup.event_control
	wd   int32 // v2: inotify watch descriptor
	efd  int   // v1: eventfd

	kills   uint64 // the count last reported (or read at Watch)
	ooms    uint64 // v2: memory.events oom, last read
	settle  int    // reads again done after the last notification
	next    time.Time
	gone    bool // the group was removed or closed: nothing more to read
	removed bool // Unwatch or Close

	// v2: the parent's oom_kill count, read just before the group's
	// last successful read (parentOK: it could be read). memory.events
	// counts the events of a group's descendants too, so when the group
	// is gone and the parent's count has not moved since, no kill
	// happened in the group after that read: a notification that can no
	// longer be read lost nothing.
	parentKills uint64
	parentOK    bool
}

// NewOOMWatcher starts a watcher whose reports go to handler. Close it to
// stop its goroutine and release its descriptors. log (nil: discard) gets
// the failures of the goroutine itself, which are rare (epoll_wait or
// reading inotify failing).
func NewOOMWatcher(handler func(OOMKill), log *slog.Logger) (*OOMWatcher, error) {
	if handler == nil {
		return nil, errors.New("cgroup: NewOOMWatcher: nil handler")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &OOMWatcher{handler: handler, log: log, epfd: -1, inofd: -1, wakefd: -1, done: make(chan struct{}),
		byGroup: make(map[*Group]*oomWatch), byWD: make(map[int32][]*oomWatch), byFD: make(map[int32]*oomWatch)}
	var err error
	if w.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("cgroup: epoll_create1: %w", err)
	}
	if w.inofd, err = unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK); err != nil {
		w.closeFDs()
		return nil, fmt.Errorf("cgroup: inotify_init1: %w", err)
	}
	if w.wakefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		w.closeFDs()
		return nil, fmt.Errorf("cgroup: eventfd: %w", err)
	}
	for _, fd := range []int{w.inofd, w.wakefd} {
		if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			w.closeFDs()
			return nil, fmt.Errorf("cgroup: epoll_ctl: %w", err)
		}
	}
	go w.run()
	return w, nil
}

func (w *OOMWatcher) closeFDs() {
	for _, fd := range []*int{&w.inofd, &w.wakefd, &w.epfd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// Watch starts watching g's OOM kills. It reads g's count now: kills before
// it are in the Total of later reports, but not reported themselves. A
// group watched already is left as it is. It fails with ErrNoOOMCount when
// g has no count to watch, ErrClosed after g.Close, and with the kernel's
// error when the notification can not be set up (a v1 host whose
// cgroup.event_control is not writable: the process is not root).
func (w *OOMWatcher) Watch(g *Group) error {
	w.mu.Lock()
	closed, dup := w.closed, w.byGroup[g] != nil
	w.mu.Unlock()
	switch {
	case closed:
		return errOOMWatcherClosed
	case dup:
		return nil
	}
	ow, err := w.prepare(g)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.byGroup[g] != nil {
		w.undoLocked(ow)
		if w.closed {
			return errOOMWatcherClosed
		}
		return nil
	}
	w.byGroup[g] = ow
	if ow.v1 {
		w.byFD[int32(ow.efd)] = ow
	} else {
		w.byWD[ow.wd] = append(w.byWD[ow.wd], ow)
	}
	// A notification between the kernel's setting up and now found no
	// watch: have the goroutine read the group once more, soon.
	ow.next = time.Now()
	w.wakeLocked()
	return nil
}

var errOOMWatcherClosed = errors.New("cgroup: OOMWatcher closed")

// prepare sets up the kernel's notification for g and reads its count.
func (w *OOMWatcher) prepare(g *Group) (*oomWatch, error) {
	ow, setUp, err := w.prepareGroup(g)
	if err != nil && setUp {
		w.mu.Lock() // not under g.mu: the goroutine takes w.mu, then g.mu
		w.undoLocked(ow)
		w.mu.Unlock()
	}
	return ow, err
}

// prepareGroup does prepare's work under g.mu; setUp says whether the
// kernel's notification was set up.
func (w *OOMWatcher) prepareGroup(g *Group) (ow *oomWatch, setUp bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, false, ErrClosed
	}
	idx := -1
	for i, f := range g.files {
		if f.fd >= 0 && (f.kind == kMemEvents || f.kind == kOOMControl) {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil, false, ErrNoOOMCount
	}
	f := &g.files[idx]
	ow = &oomWatch{g: g, file: idx, v1: f.kind == kOOMControl, efd: -1, wd: -1}
	if ow.v1 {
		if err := w.registerV1(g, f, ow); err != nil {
			return nil, false, err
		}
	} else {
		// The file the Group keeps, by its descriptor: the path could name
		// a group made again at the same place.
		wd, err := unix.InotifyAddWatch(w.inofd, "/proc/self/fd/"+strconv.Itoa(int(f.fd)), unix.IN_MODIFY)
		if err != nil {
			return nil, false, &os.PathError{Op: "inotify_add_watch", Path: g.path(f), Err: err}
		}
		ow.wd = int32(wd)
	}
	if !ow.v1 {
		ow.parentKills, ow.parentOK = w.parentKills(filepath.Join(filepath.Dir(filepath.Dir(g.path(f))), "memory.events"))
	}
	kills, ooms, err := g.readOOMLocked(f)
	if err != nil {
		return ow, true, err
	}
	ow.kills, ow.ooms = kills, ooms
	return ow, true, nil
}

// undoLocked releases what prepare set up for a watch that is not kept.
func (w *OOMWatcher) undoLocked(ow *oomWatch) {
	if ow.v1 {
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, ow.efd, nil)
		unix.Close(ow.efd)
		return
	}
	if len(w.byWD[ow.wd]) == 0 { // the same file watched for another Group keeps its watch
		_, _ = unix.InotifyRmWatch(w.inofd, uint32(ow.wd))
	}
}

// wakeLocked makes the goroutine look at its schedule again.
func (w *OOMWatcher) wakeLocked() {
	var one [8]byte
	one[0] = 1
	_, _ = unix.Write(w.wakefd, one[:])
}

// registerV1 makes an eventfd that the kernel signals when g's memory
// controller is under OOM (g.mu is held).
func (w *OOMWatcher) registerV1(g *Group, f *file, ow *oomWatch) error {
	d := g.dirs[f.dir]
	dir, err := g.fs.openDir(d.point, d.rel)
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Join(d.point, d.rel), Err: fmt.Errorf("%w (%w)", ErrNotExist, err)}
	}
	defer unix.Close(dir)
	var st unix.Stat_t
	if err := unix.Fstat(dir, &st); err != nil {
		return err
	}
	if st.Ino != d.ino {
		return &os.PathError{Op: "open", Path: filepath.Join(d.point, d.rel), Err: fmt.Errorf("%w (made again)", ErrNotExist)}
	}
	ctl, err := unix.Openat(dir, "cgroup.event_control", unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Join(d.point, d.rel, "cgroup.event_control"), Err: err}
	}
	defer unix.Close(ctl)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("cgroup: eventfd: %w", err)
	}
	// "<event_fd> <fd of memory.oom_control>": the kernel takes the
	// control file's descriptor for the registration only.
	line := strconv.Itoa(efd) + " " + strconv.Itoa(int(f.fd))
	if _, err := unix.Write(ctl, []byte(line)); err != nil {
		unix.Close(efd)
		return &os.PathError{Op: "write", Path: filepath.Join(d.point, d.rel, "cgroup.event_control"), Err: err}
	}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		unix.Close(efd) // closing it unregisters the event
		return fmt.Errorf("cgroup: epoll_ctl: %w", err)
	}
	ow.efd = efd
	return nil
}

// Unwatch stops watching g and releases what watching it took (on v1 its
// eventfd, whose close also ends the kernel's registration). It reads g's
// count a last time: last reports the kills not reported yet (ok is false
// when there were none, or g could not be read: removed or closed). A
// report the watcher's goroutine was making meanwhile may still reach the
// handler after Unwatch returns; each kill is reported once, by one or the
// other.
func (w *OOMWatcher) Unwatch(g *Group) (last OOMKill, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ow := w.byGroup[g]
	if ow == nil {
		return OOMKill{}, false
	}
	if !ow.gone {
		last, ok = w.readLocked(ow)
	}
	w.dropLocked(ow)
	return last, ok && last.Err == nil
}

// dropLocked forgets a watch and releases what it holds.
func (w *OOMWatcher) dropLocked(ow *oomWatch) {
	ow.removed = true
	delete(w.byGroup, ow.g)
	if ow.v1 {
		if ow.efd >= 0 {
			delete(w.byFD, int32(ow.efd))
			_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, ow.efd, nil)
			unix.Close(ow.efd)
			ow.efd = -1
		}
		return
	}
	list := w.byWD[ow.wd]
	for i, o := range list {
		if o == ow {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) > 0 {
		w.byWD[ow.wd] = list
		return
	}
	delete(w.byWD, ow.wd)
	// EINVAL when the kernel removed the watch already (the file went).
	_, _ = unix.InotifyRmWatch(w.inofd, uint32(ow.wd))
}

// Watching returns how many groups the watcher watches.
func (w *OOMWatcher) Watching() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.byGroup)
}

// Close stops the watcher's goroutine, waits for it (a handler call in
// progress finishes first) and releases every descriptor. Reports not made
// by then are not made; Unwatch each group first to have them. A second
// Close does nothing.
func (w *OOMWatcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	var one [8]byte
	one[0] = 1
	_, err := unix.Write(w.wakefd, one[:])
	w.mu.Unlock()
	// The goroutine may have ended on its own (epoll_wait failing): then
	// done is closed already.
	if err == nil {
		<-w.done
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ow := range w.byGroup {
		w.dropLocked(ow)
	}
	w.closeFDs()
	if err != nil {
		return fmt.Errorf("cgroup: waking the OOM watcher: %w", err)
	}
	return nil
}

// run is the watcher's goroutine.
func (w *OOMWatcher) run() {
	defer close(w.done)
	evs := make([]unix.EpollEvent, 64)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	var due []*oomWatch
	var reports []OOMKill
	for {
		timeout := w.nextTimeout()
		n, err := unix.EpollWait(w.epfd, evs, timeout)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			w.log.Error("cgroup: OOM watcher: epoll_wait failed; OOM kills are read at Stat only from now on", "err", err)
			return
		}
		due = due[:0]
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return
		}
		for _, ev := range evs[:n] {
			switch fd := ev.Fd; {
			case int(fd) == w.wakefd:
				var b [8]byte
				_, _ = unix.Read(w.wakefd, b[:])
			case int(fd) == w.inofd:
				due = w.inotifyLocked(buf, due)
			default:
				if ow := w.byFD[fd]; ow != nil {
					var b [8]byte
					_, _ = unix.Read(int(fd), b[:]) // reset the eventfd
					ow.settle, ow.next = 0, time.Time{}
					due = append(due, ow)
				}
			}
		}
		now := time.Now()
		for _, ow := range w.byGroup {
			if !ow.next.IsZero() && !now.Before(ow.next) {
				due = append(due, ow)
			}
		}
		reports = reports[:0]
		for _, ow := range due {
			if ow.removed || ow.gone {
				continue
			}
			if r, ok := w.readLocked(ow); ok {
				reports = append(reports, r)
			}
		}
		w.mu.Unlock()
		for _, r := range reports {
			w.handler(r)
		}
	}
}

// inotifyLocked reads the pending inotify events and appends the watches
// they name to due.
func (w *OOMWatcher) inotifyLocked(buf []byte, due []*oomWatch) []*oomWatch {
	for {
		n, err := unix.Read(w.inofd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			if err != nil && err != unix.EAGAIN {
				w.log.Error("cgroup: OOM watcher: reading inotify failed", "err", err)
			}
			return due
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				// Events were lost: read every group.
				for _, ow := range w.byGroup {
					if !ow.v1 {
						due = append(due, ow)
					}
				}
				continue
			}
			for _, ow := range w.byWD[ev.Wd] {
				if ev.Mask&unix.IN_IGNORED != 0 {
					ow.gone = true // the file went: its group was removed
					continue
				}
				ow.settle, ow.next = 0, time.Time{}
				due = append(due, ow)
			}
		}
	}
}

// nextTimeout is epoll_wait's timeout in milliseconds: until the earliest
// read again, -1 when none is due.
func (w *OOMWatcher) nextTimeout() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for _, ow := range w.byGroup {
		if !ow.next.IsZero() && (first.IsZero() || ow.next.Before(first)) {
			first = ow.next
		}
	}
	if first.IsZero() {
		return -1
	}
	d := time.Until(first)
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// readLocked reads ow's count and returns the report to make, if any; it
// schedules the next read again while an OOM shows without a new kill.
func (w *OOMWatcher) readLocked(ow *oomWatch) (OOMKill, bool) {
	g := ow.g
	g.mu.Lock()
	var kills, ooms, parentKills uint64
	var parentOK bool
	var parentPath string
	var err error
	if g.closed {
		err = ErrClosed
	} else {
		if !ow.v1 {
			parentPath = filepath.Join(filepath.Dir(filepath.Dir(g.path(&g.files[ow.file]))), "memory.events")
			parentKills, parentOK = w.parentKills(parentPath)
		}
		kills, ooms, err = g.readOOMLocked(&g.files[ow.file])
	}
	var gone bool
	if err != nil && errors.Is(err, ErrNotExist) {
		gone, _ = g.dirGone(g.files[ow.file].dir)
	}
	g.mu.Unlock()
	now := time.Now()
	if err != nil {
		ow.next = time.Time{}
		if errors.Is(err, ErrClosed) || gone {
			ow.gone = true
		}
		if gone && !ow.v1 && ow.parentOK {
			// Read again now that the group is gone: a kill before
			// its removal shows in the parent's count by now.
			if pk, ok := w.parentKills(parentPath); ok && pk == ow.parentKills {
				return OOMKill{}, false
			}
		}
		// v1 signals the eventfd when the group is removed: reading it
		// then is the expected end, unless an OOM it notified has not
		// shown as a kill yet (the kernel notifies before it kills). On
		// v2 a notification that can no longer be read was a memory event
		// (maybe an OOM kill) of a group removed meanwhile. Both are
		// reported: a kill may have gone uncounted.
		if gone && (!ow.v1 || ow.settle > 0) {
			return OOMKill{Group: g, Total: ow.kills, Time: now, Err: err}, true
		}
		if !gone && !errors.Is(err, ErrClosed) {
			w.log.Warn("cgroup: OOM watcher: reading the OOM kill count failed", "err", err)
		}
		return OOMKill{}, false
	}
	oomSeen := ow.v1 || ooms > ow.ooms
	ow.ooms = ooms
	ow.parentKills, ow.parentOK = parentKills, parentOK
	switch {
	case kills > ow.kills:
		r := OOMKill{Group: g, Kills: kills - ow.kills, Total: kills, Time: now}
		ow.kills = kills
		ow.settle, ow.next = 0, time.Time{}
		return r, true
	case kills < ow.kills:
		ow.kills = kills // can not be the same group; keep counting from here
	}
	if oomSeen && ow.settle < len(oomSettle) {
		ow.next = now.Add(oomSettle[ow.settle])
		ow.settle++
	} else {
		ow.next = time.Time{}
	}
	return OOMKill{}, false
}

// parentKills reads the oom_kill count of a v2 group's parent from its
// memory.events at path (the rare notifications only: opened, read and
// closed). ok is false where that count can not tell of the group's kills:
// the parent is the root (no memory.events), or cgroup2 is mounted with
// memory_localevents (a group's counts leave out its descendants').
func (w *OOMWatcher) parentKills(path string) (kills uint64, ok bool) {
	w.localOnce.Do(func() { w.localEvents = localEvents() })
	if w.localEvents {
		return 0, false
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	var buf [512]byte
	n, err := pread.Ordinary(fd, buf[:], 0)
	if err != nil {
		return 0, false
	}
	var e MemoryEvents
	if parseMemoryEvents(buf[:n], &e) != nil {
		return 0, false
	}
	return e.OOMKill.Get()
}

// localEvents reports whether a cgroup2 file system here is mounted with
// memory_localevents (or mountinfo can not be read: then the parent's
// count is not trusted either).
func localEvents() bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	for _, l := range strings.Split(string(b), "\n") {
		if _, post, ok := strings.Cut(l, " - "); ok && strings.HasPrefix(post, "cgroup2 ") && strings.Contains(post, "memory_localevents") {
			return true
		}
	}
	return false
}

// readOOMLocked reads a group's OOM kill count, and on v2 its count of OOM
// events (g.mu is held).
func (g *Group) readOOMLocked(f *file) (kills, ooms uint64, err error) {
	if f.fd < 0 {
		return 0, 0, ErrNoOOMCount
	}
	var buf [512]byte
	n, err := pread.Ordinary(int(f.fd), buf[:], 0)
	if err != nil {
		if err == unix.ENODEV || err == unix.ENOENT {
			return 0, 0, &os.PathError{Op: "read", Path: g.path(f), Err: fmt.Errorf("%w (%w)", ErrNotExist, err)}
		}
		return 0, 0, &os.PathError{Op: "read", Path: g.path(f), Err: err}
	}
	var e MemoryEvents
	if f.kind == kOOMControl {
		err = parseOOMControl(buf[:n], &e)
	} else {
		err = parseMemoryEvents(buf[:n], &e)
	}
	if err != nil {
		return 0, 0, withFile(g.path(f), err)
	}
	k, ok := e.OOMKill.Get()
	if !ok {
		return 0, 0, fmt.Errorf("%w: %s has no oom_kill (Linux 4.13+)", ErrNoOOMCount, g.path(f))
	}
	o, _ := e.OOM.Get()
	return k, o, nil
}
