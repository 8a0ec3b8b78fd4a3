package softphone

import "time"

// Interval histogram layout: 250 µs buckets up to 200 ms cover what a
// 20 ms stream's jitter looks like at the resolution a p99 figure needs;
// anything longer lands in one overflow count and shows in Max.
const (
	histResolution = 250 * time.Microsecond
	histBuckets    = int(200 * time.Millisecond / histResolution)
)

// IntervalHistogram counts the intervals between consecutive packet
// arrivals in fixed buckets, so that a receive goroutine can keep it up to
// date per packet without allocating and a load test can read percentiles
// of hundreds of phones at the end. The zero value is ready to use; it is
// not safe for concurrent use on its own (Phone guards its copy).
type IntervalHistogram struct {
	last   int64 // arrival of the previous packet, ns on a monotonic clock; 0 none yet
	counts [histBuckets]uint32
	over   uint32 // intervals of histBuckets·histResolution or more
	n      uint32
	max    int64
}

// Add records a packet that arrived at the given time (ns on any monotonic
// clock); the first packet only starts the clock.
func (h *IntervalHistogram) Add(arrival int64) {
	if h.last != 0 {
		d := max(0, arrival-h.last)
		if b := d / int64(histResolution); b < int64(histBuckets) {
			h.counts[b]++
		} else {
			h.over++
		}
		h.n++
		h.max = max(h.max, d)
	}
	h.last = max(arrival, 1) // 0 means "no packet yet"
}

// Reset forgets the counted intervals but keeps the last arrival, so the
// next packet's interval still counts: a measuring window starts cleanly.
func (h *IntervalHistogram) Reset() {
	last := h.last
	*h = IntervalHistogram{last: last}
}

// Merge adds o's intervals to h.
func (h *IntervalHistogram) Merge(o *IntervalHistogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.over += o.over
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count returns the number of intervals recorded.
func (h *IntervalHistogram) Count() int { return int(h.n) }

// Max returns the longest interval recorded.
func (h *IntervalHistogram) Max() time.Duration { return time.Duration(h.max) }

// Quantile returns the interval below which the fraction q (0-1) of the
// recorded intervals lie, as the upper edge of its bucket (so at most
// 250 µs above the truth) and never more than Max. With no intervals it
// returns 0.
func (h *IntervalHistogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	// The rank of the wanted interval, 1-based: the smallest r with r >= q·n.
	rank := uint32(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	rank = max(rank, 1)
	var seen uint32
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(i+1)*histResolution, h.Max())
		}
	}
	return h.Max()
}
