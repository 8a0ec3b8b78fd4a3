//go:build linux && !race

package rtpio

// raceEnabled: see race_on_test.go.
const raceEnabled = false
