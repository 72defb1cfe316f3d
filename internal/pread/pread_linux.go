package pread

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Pseudo reads from the kernel pseudo-file fd at offset off into b, as
// pread(2) does, retrying when interrupted. See the package doc for when it
// may be used.
func Pseudo(fd int, b []byte, off int64) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(p), uintptr(len(b)), uintptr(off), 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, e
	}
}
