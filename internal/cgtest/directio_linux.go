package cgtest

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// directIO writes n bytes to a new file in dir with O_DIRECT, syncs, then
// reads them back with O_DIRECT, so the bytes reach the block device and are
// charged to the caller's blkio/io group.
func directIO(dir string, n int) error {
	const chunk = 1 << 20
	buf, err := unix.Mmap(-1, 0, chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	defer unix.Munmap(buf)
	for i := range buf {
		buf[i] = byte(i)
	}
	name := filepath.Join(dir, "cgtest-directio")
	defer os.Remove(name)
	fd, err := unix.Open(name, unix.O_CREAT|unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for off := 0; off < n; off += chunk {
		if _, err := unix.Pwrite(fd, buf, int64(off)); err != nil {
			return err
		}
	}
	if err := unix.Fsync(fd); err != nil {
		return err
	}
	for off := 0; off < n; off += chunk {
		if _, err := unix.Pread(fd, buf, int64(off)); err != nil {
			return err
		}
	}
	return nil
}

// hugeAlloc maps n bytes of anonymous 2 MiB huge pages and touches each
// page, so that they are charged to the caller's hugetlb group. The mapping
// is never unmapped.
func hugeAlloc(n int) error {
	const huge = 2 << 20
	n = (n + huge - 1) / huge * huge
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE|unix.MAP_HUGETLB|21<<unix.MAP_HUGE_SHIFT)
	if err != nil {
		return fmt.Errorf("mmap %d bytes of 2 MiB huge pages: %w", n, err)
	}
	for i := 0; i < n; i += huge {
		b[i] = 1
	}
	return nil // the mapping stays until the process exits
}

// DevOf returns "major:minor" of the block device holding path.
func DevOf(t interface {
	Helper()
	Fatal(...any)
}, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
}
