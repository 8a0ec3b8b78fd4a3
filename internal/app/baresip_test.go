package app

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// baresip is one headless baresip process driven through its stdin (the
// stdio UI and the menu commands).
type baresip struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *testkit.LogBuffer
}

// startBaresip runs baresip with a generated configuration: SIP over TLS
// on loopback, mandatory SDES SRTP, PCMU only, a 440 Hz sine as its
// microphone and no audio player. It is stopped (/quit, then killed by
// PID) when the test ends.
func startBaresip(t *testing.T) *baresip {
	t.Helper()
	bin := testkit.NeedBinary(t, "baresip")
	// net_interface 127.0.0.1 keeps the SDP (and so the bridge's first RTP) on
	// loopback; without it baresip advertises whatever it guesses.
	return startBaresipWith(t, bin, []string{
		"poll_method epoll",
		"net_interface 127.0.0.1",
		"sip_listen 127.0.0.1:0",
		"sip_trans_def tls",
		"audio_player none,none",
		"audio_source ausine,440",
		"ausrc_srate 48000",
		"ausrc_channels 2",
		"module_path /usr/lib/baresip/modules",
		"module stdio.so",
		"module g711.so",
		"module ausine.so",
		"module srtp.so",
		"module_app account.so",
		"module_app menu.so",
	}, "<sip:baresip@127.0.0.1;transport=tls>;regint=0;mediaenc=srtp-mand;audio_codecs=PCMU\n")
}

// startBaresipWith runs baresip with the given config lines and accounts file.
func startBaresipWith(t *testing.T, bin string, config []string, account string) *baresip {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(strings.Join(config, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(account), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &baresip{cmd: exec.Command(bin, "-f", dir), out: &testkit.LogBuffer{}}
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	var err error
	if b.stdin, err = b.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start baresip: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = b.cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_, _ = io.WriteString(b.stdin, "/quit\n")
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = b.cmd.Process.Kill() // our own child, by PID
			<-exited
		}
		if t.Failed() {
			t.Logf("baresip output:\n%s", b.out.String())
		}
	})
	b.waitOutput(t, "baresip is ready")
	return b
}

// waitOutput waits up to 10 s for s in baresip's output.
func (b *baresip) waitOutput(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("baresip never said %q; output:\n%s", s, b.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// send types into baresip's stdio UI.
func (b *baresip) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(b.stdin, s); err != nil {
		t.Fatalf("baresip stdin: %v", err)
	}
}

// baresip, a SIP stack nobody here wrote, calls the bridge over TLS with
// mandatory SRTP (rtp.srtp: require, so an answered call is an SRTP call),
// joins with an RFC 4733 PIN, and the room hears its 440 Hz tone.
func TestBaresipTLSAndSRTPJoinsAndIsHeard(t *testing.T) {
	t.Parallel()
	a, logs := startApp(t, tlsSRTPYAML(t, "require"))
	listener := dial(t, a, softphone.Config{Transport: "tls", TLSConfig: testTLS(), SRTP: true, Caller: "+15550000201"})
	enter(t, logs, listener, "1234", softphone.DigitRFC4733, 1)

	b := startBaresip(t)
	b.send(t, fmt.Sprintf("/dial sip:groupbridge@%s;transport=tls\n", sipAddr(t, a, "tls")))
	logs.waitCount(t, 10*time.Second, 2, "call answered", "transport", "tls")
	b.waitOutput(t, "SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)")
	b.waitOutput(t, "Call established")
	// The stdio UI sends each digit typed during a call as RFC 4733
	// events; the pause lets one end before the next.
	for _, d := range "1234#" {
		b.send(t, string(d))
		time.Sleep(300 * time.Millisecond)
	}
	logs.waitCount(t, 10*time.Second, 2, "call joined")

	// Past the join chime, the listener hears baresip's sine.
	time.Sleep(2 * time.Second)
	start := time.Now()
	time.Sleep(2500 * time.Millisecond)
	l := levels(listener, start, 2*time.Second, 440)
	t.Logf("listener hears baresip's 440 Hz at %.1f dBFS", l[0])
	if l[0] < -40 {
		t.Errorf("baresip is not heard: 440 Hz at %.1f dBFS", l[0])
	}
	if n := logs.count(t, "call ended", "reason", "remote-bye"); n != 0 {
		t.Errorf("%d calls ended early", n)
	}
	// baresip takes the bridge's SRTP: its stream saw our RTP and its srtp
	// module decrypted every packet (it logs each failure).
	out := b.out.String()
	if !strings.Contains(out, "incoming rtp for 'audio' established") || strings.Contains(out, "failed to decrypt") {
		t.Errorf("baresip did not take the bridge's SRTP; output:\n%s", out)
	}
	// Its SDP named loopback, so the bridge never sent elsewhere.
	for _, r := range logs.records(t) {
		if sdp, ok := r["sdp"].(string); ok && !strings.HasPrefix(sdp, "127.0.0.1:") {
			t.Errorf("a peer's SDP named %s, not loopback", sdp)
		}
	}
}
