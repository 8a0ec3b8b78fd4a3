package mixer

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

var benchRooms = []struct{ members, heard int }{
	{10, 10},     // small room, everybody talking
	{1000, 1000}, // worst case: nobody muted
	{1000, 4},    // typical large room: a few talkers, the rest listening
}

// benchRoom builds a room whose first `heard` members are heard, with
// speech-level random input (±1000, about -33 dBFS peak) so that sums of
// many talkers exercise both clamp branches.
func benchRoom(members, heard int) (*Mixer, []*Member) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := New()
	ms := make([]*Member, members)
	for i := range ms {
		m := &Member{Heard: i < heard}
		for j := range m.In {
			m.In[j] = int16(rng.IntN(2001) - 1000)
		}
		ms[i] = m
		x.Add(m)
	}
	return x, ms
}

func reportPerMember(b *testing.B, members int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(members), "ns/member")
}

func BenchmarkTick(b *testing.B) {
	for _, r := range benchRooms {
		b.Run(fmt.Sprintf("members=%d/heard=%d", r.members, r.heard), func(b *testing.B) {
			b.ReportAllocs()
			x, _ := benchRoom(r.members, r.heard)
			for b.Loop() {
				x.Tick(nil)
			}
			reportPerMember(b, r.members)
		})
	}
}

// callLeg stands in for what the conference keeps per call: the member, the
// negotiated codec and the outgoing RTP payload.
type callLeg struct {
	m       *Member
	codec   g711.Codec
	payload [pcm.FrameSamples]byte
	out     []byte // what would be sent: payload, or a shared common payload
}

// BenchmarkTickEncode is the full per-tick media cost the conference pays:
// mix, then G.711-encode for every member, encoding the common frame only
// once per codec and sharing it among every Common member. One call in four
// uses PCMA, the rest PCMU.
func BenchmarkTickEncode(b *testing.B) {
	for _, r := range benchRooms {
		b.Run(fmt.Sprintf("members=%d/heard=%d", r.members, r.heard), func(b *testing.B) {
			b.ReportAllocs()
			x, ms := benchRoom(r.members, r.heard)
			legs := make([]callLeg, len(ms))
			for i, m := range ms {
				legs[i] = callLeg{m: m, codec: g711.PCMU}
				if i%4 == 3 {
					legs[i].codec = g711.PCMA
				}
			}
			var commonPCMU, commonPCMA [pcm.FrameSamples]byte
			for b.Loop() {
				x.Tick(nil)
				var haveU, haveA bool
				for i := range legs {
					leg := &legs[i]
					if !leg.m.Common() {
						leg.codec.Encode(leg.payload[:], leg.m.Out()[:])
						leg.out = leg.payload[:]
						continue
					}
					shared := &commonPCMU
					have := &haveU
					if leg.codec == g711.PCMA {
						shared, have = &commonPCMA, &haveA
					}
					if !*have {
						leg.codec.Encode(shared[:], leg.m.Out()[:])
						*have = true
					}
					leg.out = shared[:]
				}
			}
			reportPerMember(b, r.members)
		})
	}
}
