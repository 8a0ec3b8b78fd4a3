package jitter

import (
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/pcm"
)

// FuzzBuffer drives a buffer with arbitrary packets (any SSRC, sequence
// and timestamp steps, sizes including invalid ones, marker bits) and
// arbitrary clock steps, checking that nothing panics and that what comes
// out is consistent: Pop fills exactly one frame, silence is all zeros,
// the delays stay within bounds and the counters add up.
func FuzzBuffer(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 160, 20, 2, 20, 2, 20, 0, 0, 1, 0, 160, 20, 2, 20})
	f.Add([]byte{0, 1, 255, 255, 255, 0, 2, 0, 1, 2, 1, 128, 40, 3, 2, 60, 2, 0})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte{0, 0, 1, 0, 242, 1, 3, 200, 0, 0, 2, 0, 5, 1, 2, 0, 2, 0, 2, 0, 2, 0})
	f.Fuzz(runOps)
}

func runOps(t *testing.T, ops []byte) {
	{
		b := New(Config{MinDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond})
		var fr pcm.Frame
		buf := make([]int16, 2*MaxPacketSamples)
		for i := range buf {
			buf[i] = int16(i*7919) ^ int16(i>>3)
		}
		now := t0
		var seq uint16
		var ts uint32
		var pushes, concealed uint64
		for len(ops) >= 6 {
			op, a, c, d, e, g := ops[0], ops[1], ops[2], ops[3], ops[4], ops[5]
			ops = ops[6:]
			switch op % 4 {
			case 0, 1: // push
				seq += uint16(int8(a))
				ts += uint32(int32(int16(uint16(c)<<8|uint16(d))) * 8)
				n := int(e) * 33 // 0 .. 8415: empty and oversize included
				if op&4 != 0 {
					n = int(e)
				}
				ssrc := uint32(g % 3)
				now = now.Add(time.Duration(g) * time.Millisecond / 4)
				r := b.Push(ssrc, seq, ts, op&8 != 0, buf[:n], now)
				if r < Accepted || r > Invalid {
					t.Fatalf("push result %d", r)
				}
				if (n == 0 || n > MaxPacketSamples) != (r == Invalid) {
					t.Fatalf("push of %d samples: %v", n, r)
				}
				if r != Invalid {
					pushes++
				}
			case 2: // pop
				now = now.Add(pcm.FrameDuration + time.Duration(int8(a))*time.Millisecond/8)
				for i := range fr {
					fr[i] = 12345
				}
				k := b.Pop(&fr, now)
				switch k {
				case Silence:
					if fr != (pcm.Frame{}) {
						t.Fatal("silence with samples")
					}
				case Concealed:
					concealed++
				case Audio:
				default:
					t.Fatalf("kind %d", k)
				}
			case 3: // the clock or the network jumps
				now = now.Add(time.Duration(int16(uint16(a)<<8|uint16(c))) * time.Millisecond)
				if d == 0 && e == 0 {
					b.Reset()
					pushes, concealed = 0, 0
				}
			}
			st := b.Stats()
			if st.TargetDelay < 20*time.Millisecond || st.TargetDelay > 200*time.Millisecond {
				t.Fatalf("target %v", st.TargetDelay)
			}
			if st.Concealed != concealed {
				t.Fatalf("Concealed %d, counted %d", st.Concealed, concealed)
			}
			if got := st.Accepted + st.Late + st.Duplicates; got != pushes {
				t.Fatalf("accepted+late+duplicates %d, pushed %d", got, pushes)
			}
			if st.Lost > 1<<32 {
				t.Fatalf("lost %d", st.Lost)
			}
			// Buffered audio lies between the playout point and the end of
			// the newest packet, which the ring can hold.
			if held := b.r.count(0, ringSize); held > 0 {
				w := b.highPos - b.playPos
				if w <= 0 || w > ringSize || b.r.count(b.playPos, int(w)) != held {
					t.Fatalf("%d samples held outside the playout window [%d, %d)", held, b.playPos, b.highPos)
				}
			}
		}
	}
}
