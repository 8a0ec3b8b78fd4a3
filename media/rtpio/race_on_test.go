//go:build linux && race

package rtpio

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// pion's SRTP allocates now and then and allocation counts do not hold.
const raceEnabled = true
