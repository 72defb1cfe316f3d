//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package pread

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw says whether Pseudo makes a raw system call (64-bit Linux) or is
// Ordinary.
const Raw = true

// Pseudo reads from the kernel pseudo-file fd at offset off into b, as
// pread(2) does, retrying when interrupted, as a raw system call: the
// goroutine keeps its P while the kernel reads. See the package doc for
// which files it may be used on.
//
// On these 64-bit architectures pread64 takes the offset in one register;
// 32-bit ones split it in two (and arm and mips pad it to an even register
// pair), which unix.Pread does for Pseudo's other build.
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
