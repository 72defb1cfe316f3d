// Package parse holds the byte-level scanners that the cgroup and netns
// parsers share: allocation-free number parsing and line/field iteration over
// the buffer a pread filled.
//
// Every function here works on a []byte and never allocates; errors are the
// sentinels below, so callers can wrap them with the file and line they came
// from.
package parse

import (
	"errors"
	"strconv"
)

var (
	// ErrSyntax is returned for empty input or a byte that is not part of a
	// number. It is strconv.ErrSyntax, so errors.Is works with either.
	ErrSyntax = strconv.ErrSyntax
	// ErrRange is returned for a number that does not fit the target type.
	// It is strconv.ErrRange.
	ErrRange = strconv.ErrRange
	// ErrNegative is returned by Uint for a well-formed negative number, which
	// some kernels have printed for counters that should never go below zero.
	ErrNegative = errors.New("negative value")
)

// Uint parses a decimal unsigned integer. A leading '-' followed by digits
// gives ErrNegative; a value above 1<<64-1 gives ErrRange.
func Uint(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, ErrSyntax
	}
	if b[0] == '-' {
		if _, err := Uint(b[1:]); err != nil && err != ErrRange {
			return 0, err
		}
		return 0, ErrNegative
	}
	var n uint64
	for _, c := range b {
		d := c - '0'
		if d > 9 {
			return 0, ErrSyntax
		}
		if n > (1<<64-1)/10 {
			return 0, ErrRange
		}
		n *= 10
		if n+uint64(d) < n {
			return 0, ErrRange
		}
		n += uint64(d)
	}
	return n, nil
}

// Int parses a decimal signed integer with an optional leading '-'.
func Int(b []byte) (int64, error) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	u, err := Uint(b)
	if err != nil {
		if err == ErrNegative { // "--5"
			return 0, ErrSyntax
		}
		return 0, err
	}
	if neg {
		if u > 1<<63 {
			return 0, ErrRange
		}
		return -int64(u), nil
	}
	if u > 1<<63-1 {
		return 0, ErrRange
	}
	return int64(u), nil
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// Decimal parses a non-negative decimal such as "11.23" (the PSI averages) with
// at most 15 significant digits, and returns the correctly rounded float64, the
// same value strconv.ParseFloat would give.
func Decimal(b []byte) (float64, error) {
	if len(b) == 0 {
		return 0, ErrSyntax
	}
	var mant uint64
	digits, frac := 0, -1
	for i, c := range b {
		if c == '.' {
			if frac >= 0 || i == 0 || i == len(b)-1 {
				return 0, ErrSyntax
			}
			frac = 0
			continue
		}
		d := c - '0'
		if d > 9 {
			return 0, ErrSyntax
		}
		if mant != 0 || d != 0 {
			digits++
		}
		if digits > 15 {
			return 0, ErrRange
		}
		mant = mant*10 + uint64(d)
		if frac >= 0 {
			frac++
		}
	}
	if frac <= 0 {
		return float64(mant), nil
	}
	if frac >= len(pow10) {
		return 0, ErrRange
	}
	// Both operands are exact in float64, so the quotient is correctly rounded.
	return float64(mant) / pow10[frac], nil
}

// Line returns the next line of b (without its '\n') and the rest after it.
// The last line need not end in '\n'.
func Line(b []byte) (line, rest []byte) {
	for i, c := range b {
		if c == '\n' {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

// Field returns the first space- or tab-separated field of b, skipping leading
// blanks, and the rest after it.
func Field(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' {
		j++
	}
	return b[i:j], b[j:]
}

// Cut splits b around the first sep, like bytes.Cut.
func Cut(b []byte, sep byte) (before, after []byte, found bool) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

// TrimSpace trims ASCII blanks and newlines from both ends of b.
func TrimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Dev parses a "major:minor" device number.
func Dev(b []byte) (major, minor uint32, err error) {
	ma, mi, ok := Cut(b, ':')
	if !ok {
		return 0, 0, ErrSyntax
	}
	a, err := Uint(ma)
	if err != nil {
		return 0, 0, err
	}
	c, err := Uint(mi)
	if err != nil {
		return 0, 0, err
	}
	if a > 1<<32-1 || c > 1<<32-1 {
		return 0, 0, ErrRange
	}
	return uint32(a), uint32(c), nil
}
