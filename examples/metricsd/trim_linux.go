//go:build linux

package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// trimBinary gives back the pages of the daemon's own executable that it
// has mapped and that steady state does not use: flag parsing, package
// initialisation, runtime detection and the first listings touch most of
// the static binary once, and the kernel maps every page of it already in
// the page cache in the 64 KB around each fault (and reads ahead around a
// fault that misses it), so that a minute after start ~15 MB of the
// binary's ~16 MB of code, read-only data and function tables are resident
// while a minute of collections at 1 s references ~4.5 MB of them (their
// accessed bits, after /proc/<pid>/clear_refs).
//
// For each read-only mapping of the executable it sets MADV_RANDOM (a later
// fault that misses the page cache reads the page alone, not the
// read-ahead window around it) and then MADV_PAGEOUT: the kernel unmaps
// the pages only this process maps and reclaims those that are clean
// (another process's mappings of the file are left alone). It first writes
// back the file's dirty pages (fdatasync; none unless it was just built or
// copied), which the kernel would not reclaim. What a later collection,
// the minute's listing or an HTTP request needs faults back in, from the
// page cache or the disk. A kernel before 5.4 (no MADV_PAGEOUT) or a
// process that may not page the file out (neither its owner nor
// CAP_FOWNER) leaves the mappings as they were. It returns the bytes of
// the mappings it paged out.
func trimBinary() int {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0
	}
	if f, err := os.Open(exe); err == nil {
		unix.Fdatasync(int(f.Fd()))
		f.Close()
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0
	}
	defer f.Close()
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path: the path is the rest of
		// the line (it may hold spaces).
		line := sc.Bytes()
		fields := bytes.Fields(line)
		if len(fields) < 6 || len(fields[1]) < 2 || fields[1][1] == 'w' {
			continue
		}
		if i := bytes.Index(line, []byte(" /")); i < 0 || string(line[i+1:]) != exe {
			continue
		}
		r := bytes.SplitN(fields[0], []byte("-"), 2)
		if len(r) != 2 {
			continue
		}
		start, err1 := strconv.ParseUint(string(r[0]), 16, 64)
		end, err2 := strconv.ParseUint(string(r[1]), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		n := uintptr(end - start)
		unix.Syscall(unix.SYS_MADVISE, uintptr(start), n, unix.MADV_RANDOM)
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(start), n, unix.MADV_PAGEOUT); e == 0 {
			total += int(n)
		}
	}
	return total
}
