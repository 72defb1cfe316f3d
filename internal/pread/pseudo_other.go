//go:build linux && !(amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package pread

// Raw says whether Pseudo makes a raw system call (64-bit Linux) or is
// Ordinary.
const Raw = false

// Pseudo reads from the kernel pseudo-file fd at offset off into b, as
// pread(2) does. On this architecture it is Ordinary: the raw path passes
// the offset in one register, which only 64-bit ones take (see the package
// doc).
func Pseudo(fd int, b []byte, off int64) (int, error) { return Ordinary(fd, b, off) }
