//go:build !linux

package main

// trimBinary: MADV_PAGEOUT is Linux's.
func trimBinary() int { return 0 }
