//go:build linux

package rtpio

import (
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/g711"
)

// A panic on a stream's receive path closes that stream and is logged
// without its value or stack, which may hold packet bytes (here a caller's
// number), and the poller goes on serving other streams.
func TestPollerPanicLogsNoValue(t *testing.T) {
	const secret = "5557654321"
	e, logs := logEngine(t, 2)
	p := newPeer(t, loop4)
	s, err := e.Open(Params{Remote: p.addr(), Codec: g711.PCMU, DTMFPT: 101, OnDigit: func(byte) {
		panic("caller +1" + secret + " sent " + string([]byte{0x80, 0x65, 0x12}))
	}})
	if err != nil {
		t.Fatal(err)
	}
	sendPress(t, p, s.LocalAddr(), 101, '5')
	waitFor(t, "the panic's log line", func() bool { return strings.Contains(logs.String(), "poller recovered from panic") })
	out := logs.String()
	for i := 0; i+3 <= len(secret); i++ {
		if strings.Contains(out, secret[i:i+3]) {
			t.Fatalf("the log holds %q of the panic's value:\n%s", secret[i:i+3], out)
		}
	}
	if strings.Contains(out, "goroutine ") || !strings.Contains(out, "panic=string") || !strings.Contains(out, "poller_test.go:") {
		t.Errorf("want the panic's type and place, no stack:\n%s", out)
	}
	// The poller still serves other streams.
	s2, err := e.Open(pcmu(p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s2.Stats().PacketsIn == 0 && time.Now().Before(deadline) {
		p.send(s2.LocalAddr(), 0, tone(g711.PCMU, 160, 0))
		time.Sleep(20 * time.Millisecond)
	}
	if s2.Stats().PacketsIn == 0 {
		t.Fatal("the poller stopped serving after the panic")
	}
}
