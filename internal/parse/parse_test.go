package parse

import (
	"errors"
	"math"
	"strconv"
	"testing"
)

func TestUint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  error
	}{
		{"0", 0, nil},
		{"127635456", 127635456, nil},
		{"18446744073709551615", math.MaxUint64, nil},
		{"18446744073709551616", 0, ErrRange},
		{"99999999999999999999", 0, ErrRange},
		{"", 0, ErrSyntax},
		{"12a", 0, ErrSyntax},
		{"-4096", 0, ErrNegative},
		{"-", 0, ErrSyntax},
		{"-x", 0, ErrSyntax},
		{" 1", 0, ErrSyntax},
	} {
		got, err := Uint([]byte(tc.in))
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("Uint(%q) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  error
	}{
		{"-1", -1, nil},
		{"30000", 30000, nil},
		{"-9223372036854775808", math.MinInt64, nil},
		{"9223372036854775808", 0, ErrRange},
		{"--1", 0, ErrSyntax},
		{"", 0, ErrSyntax},
	} {
		got, err := Int([]byte(tc.in))
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("Int(%q) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestDecimalMatchesParseFloat(t *testing.T) {
	for _, s := range []string{"0.00", "11.23", "2.02", "0.42", "99.99", "100.00", "7", "0.1", "123456.789012"} {
		got, err := Decimal([]byte(s))
		if err != nil {
			t.Fatalf("Decimal(%q): %v", s, err)
		}
		want, _ := strconv.ParseFloat(s, 64)
		if got != want {
			t.Errorf("Decimal(%q) = %v, want %v", s, got, want)
		}
	}
	for _, s := range []string{"", ".", "1.", ".5", "1.2.3", "a", "-1.0"} {
		if _, err := Decimal([]byte(s)); err == nil {
			t.Errorf("Decimal(%q) succeeded, want error", s)
		}
	}
}

func FuzzUint(f *testing.F) {
	for _, s := range []string{"0", "18446744073709551615", "18446744073709551616", "-1", "", "1x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Uint([]byte(s))
		want, werr := strconv.ParseUint(s, 10, 64)
		if werr == nil {
			if err != nil || got != want {
				t.Fatalf("Uint(%q) = %d, %v; strconv says %d", s, got, err, want)
			}
		} else if err == nil {
			t.Fatalf("Uint(%q) = %d, nil; strconv says %v", s, got, werr)
		}
	})
}

func FuzzDecimal(f *testing.F) {
	for _, s := range []string{"11.23", "0.00", "1.", "100"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Decimal([]byte(s))
		if err != nil {
			return
		}
		want, werr := strconv.ParseFloat(s, 64)
		if werr != nil || got != want {
			t.Fatalf("Decimal(%q) = %v; strconv says %v, %v", s, got, want, werr)
		}
	})
}
