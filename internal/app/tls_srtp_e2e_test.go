package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
)

// tlsSRTPYAML is the test configuration with one TLS listener and the
// given rtp.srtp mode.
func tlsSRTPYAML(t *testing.T, mode string) string {
	t.Helper()
	cert, key := writeSelfSigned(t)
	y := testYAML(fmt.Sprintf("  tls: {cert: %s, key: %s}", cert, key), "")
	y = strings.Replace(y, `listen: ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]`, `listen: ["udp:127.0.0.1:0", "tls:127.0.0.1:0"]`, 1)
	return strings.Replace(y, "rtp:\n", "rtp:\n  srtp: "+mode+"\n", 1)
}

// testTLS trusts the self-signed certificate of writeSelfSigned.
func testTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // self-signed test certificate
}

// Two softphones calling over TLS with SRTP join with the PIN and hear
// each other through the bridge; with rtp.srtp: require a plain call is
// refused with 488, and the bridge's BYE comes back over TLS.
func TestE2ETLSAndSRTPCallersHearEachOther(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, tlsSRTPYAML(t, "require"))
	cfg := func(caller string) softphone.Config {
		return softphone.Config{Transport: "tls", TLSConfig: testTLS(), SRTP: true, Caller: caller}
	}
	pa := dial(t, a, cfg("+15550000101"))
	pb := dial(t, a, cfg("+15550000102"))
	enter(t, logs, pa, "1234", softphone.DigitRFC4733, 1)
	enter(t, logs, pb, "1234", softphone.DigitRFC4733, 2)
	if n := logs.count(t, "call answered", "transport", "tls"); n != 2 {
		t.Errorf("%d calls answered over TLS, want 2", n)
	}
	pa.Media().SendTone(440, -20)
	pb.Media().SendTone(1000, -20)
	// Let the join prompts and chimes finish, then listen.
	time.Sleep(2500 * time.Millisecond)
	start := time.Now()
	time.Sleep(2500 * time.Millisecond)
	la := levels(pa, start, 2*time.Second, 440, 1000)
	lb := levels(pb, start, 2*time.Second, 440, 1000)
	t.Logf("a hears 440 Hz %.1f dBFS, 1000 Hz %.1f dBFS; b hears %.1f, %.1f", la[0], la[1], lb[0], lb[1])
	if lb[0] < -32 || la[1] < -32 {
		t.Errorf("callers do not hear each other: b hears a's 440 Hz at %.1f dBFS, a hears b's 1000 Hz at %.1f dBFS", lb[0], la[1])
	}
	if la[0] > lb[0]-15 {
		t.Errorf("a hears itself: 440 Hz at %.1f dBFS, b hears it at %.1f", la[0], lb[0])
	}
	for i, p := range []*softphone.Phone{pa, pb} {
		if n := p.Media().SRTPFailed(); n != 0 {
			t.Errorf("phone %d: %d SRTP packets failed to authenticate", i, n)
		}
	}

	// Plain RTP over TLS is what require refuses.
	ctx, cancel := testContext(10 * time.Second)
	defer cancel()
	_, err := softphone.Dial(ctx, softphone.Config{Server: sipAddr(t, a, "tls"), Transport: "tls", TLSConfig: testTLS(), Caller: "+15550000103"})
	var se *softphone.StatusError
	if !errors.As(err, &se) || se.StatusCode != 488 {
		t.Errorf("plain call under rtp.srtp require: %v, want 488", err)
	}

	// The bridge's in-dialog BYE (after three wrong PINs) reaches the
	// phone back over its TLS connection.
	wrong := dial(t, a, cfg("+15550000104"))
	ctx, cancel = testContext(30 * time.Second)
	defer cancel()
	if err := wrong.SendDigits(ctx, "1111#2222#3333#", softphone.DigitRFC4733); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wrong.Done():
		if !wrong.EndedByRemote() {
			t.Error("the wrong-PIN call ended without the bridge's BYE")
		}
	case <-ctx.Done():
		t.Fatal("the bridge's BYE never reached the phone over TLS")
	}
}
