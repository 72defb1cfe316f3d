// Package testscript holds the tests of scripts/test.sh, the one test
// command: they run it on a copy of the repository with planted faults and
// check that it fails for each.
package testscript
