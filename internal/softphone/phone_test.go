package softphone

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/media/g711"
)

func TestConfigNormalize(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		ok   bool
		want func(Config) bool
	}{
		{"defaults", Config{Server: "127.0.0.1:5060"}, true, func(c Config) bool {
			return c.Transport == "udp" && c.Dialed == DefaultDialed && c.TelephoneEvent == DefaultTelephoneEvent &&
				len(c.Codecs) == 2 && c.Codecs[0] == g711.PCMU && c.Keep == DefaultKeep &&
				c.DigitDuration == DefaultDigitDuration && c.DigitGap == DefaultDigitGap && c.Logger != nil
		}},
		{"TCP upper case", Config{Server: "x:1", Transport: "TCP"}, true, func(c Config) bool { return c.Transport == "tcp" }},
		{"TLS with SRTP", Config{Server: "x:1", Transport: "TLS", SRTP: true}, true, func(c Config) bool { return c.Transport == "tls" && c.SRTP }},
		{"no telephone-event", Config{Server: "x:1", TelephoneEvent: -5}, true, func(c Config) bool { return c.TelephoneEvent == -1 }},
		{"linphone PT", Config{Server: "x:1", TelephoneEvent: 96}, true, func(c Config) bool { return c.TelephoneEvent == 96 }},
		{"long press capped", Config{Server: "x:1", DigitDuration: time.Minute}, true, func(c Config) bool { return c.DigitDuration == maxDigitDuration }},
		{"no server", Config{}, false, nil},
		{"sctp", Config{Server: "x:1", Transport: "sctp"}, false, nil},
		{"static PT for events", Config{Server: "x:1", TelephoneEvent: 18}, false, nil},
		{"not G.711", Config{Server: "x:1", Codecs: []g711.Codec{18}}, false, nil},
		{"impairment", Config{Server: "x:1", Impair: &Impairment{Loss: 0.05, Jitter: 40 * time.Millisecond}}, true, func(c Config) bool {
			return c.Impair != nil && c.Impair.Loss == 0.05 && c.Impair.Jitter == 40*time.Millisecond
		}},
		{"impossible impairment", Config{Server: "x:1", Impair: &Impairment{Reorder: 0.7}}, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			err := c.normalize()
			if (err == nil) != tc.ok {
				t.Fatalf("normalize = %v, want ok %v", err, tc.ok)
			}
			if tc.ok && !tc.want(c) {
				t.Errorf("normalized to %+v", c)
			}
		})
	}
}

// TestConfigImpairCopied: a test that reuses its Impairment value for the
// next phone must not change the one already calling.
func TestConfigImpairCopied(t *testing.T) {
	im := &Impairment{Seed: 1, Loss: 0.05}
	c := Config{Server: "x:1", Impair: im}
	if err := c.normalize(); err != nil {
		t.Fatal(err)
	}
	im.Loss = 0.5
	if c.Impair == im || c.Impair.Loss != 0.05 {
		t.Errorf("normalize kept the caller's Impairment (Loss now %v)", c.Impair.Loss)
	}
}

func TestDigitValidation(t *testing.T) {
	p := &Phone{done: make(chan struct{})}
	if err := p.SendDigits(context.Background(), "12x", DigitInfo); err == nil || !strings.Contains(err.Error(), "keypad") {
		t.Errorf("SendDigits(12x) = %v, want a keypad digit error", err)
	}
	close(p.done)
	if err := p.SendDigits(context.Background(), "1", DigitInfo); !errors.Is(err, ErrEnded) {
		t.Errorf("SendDigits on an ended call = %v, want ErrEnded", err)
	}
}

func TestInfoBody(t *testing.T) {
	cases := []struct {
		digit byte
		mode  DigitMode
		ct    string
		body  string
	}{
		{'5', DigitInfoRelay, "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"},
		{'#', DigitInfoRelay, "application/dtmf-relay", "Signal=#\r\nDuration=160\r\n"},
		{'*', DigitInfo, "application/dtmf", "*"},
	}
	for _, tc := range cases {
		ct, body := infoBody(tc.digit, tc.mode, 160*time.Millisecond)
		if ct != tc.ct || string(body) != tc.body {
			t.Errorf("infoBody(%q, %v) = %q, %q; want %q, %q", tc.digit, tc.mode, ct, body, tc.ct, tc.body)
		}
	}
}

// fakeUAS is a bare UDP socket that answers by hand, to see exactly what
// the phone puts on the wire and where from.
type fakeUAS struct {
	t    *testing.T
	conn *net.UDPConn
	addr netip.AddrPort
}

func newFakeUAS(t *testing.T) *fakeUAS {
	c, addr := rtpPeer(t)
	return &fakeUAS{t: t, conn: c, addr: addr}
}

// read returns the next SIP message whose first line starts with method.
func (f *fakeUAS) read(method string) (string, netip.AddrPort) {
	f.t.Helper()
	buf := make([]byte, 4096)
	for {
		if err := f.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			f.t.Fatal(err)
		}
		n, from, err := f.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			f.t.Fatalf("waiting for %s: %v", method, err)
		}
		if msg := string(buf[:n]); strings.HasPrefix(msg, method+" ") {
			return msg, from
		}
	}
}

// header returns the first value of header name in msg.
func header(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// reply answers req with code, copying the dialog headers as a UAS must.
func (f *fakeUAS) reply(req string, to netip.AddrPort, code int, body string) {
	f.t.Helper()
	toHdr := header(req, "To")
	if !strings.Contains(toHdr, "tag=") {
		toHdr += ";tag=fake1"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d Whatever\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n",
		code, header(req, "Via"), header(req, "From"), toHdr, header(req, "Call-ID"), header(req, "CSeq"))
	fmt.Fprintf(&b, "Contact: <sip:uas@%s>\r\n", f.addr)
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	if _, err := f.conn.WriteToUDPAddrPort([]byte(b.String()), to); err != nil {
		f.t.Fatal(err)
	}
}

// TestWireAddresses checks what the bridge relies on to reach the phone:
// every request leaves from the agent's listening socket and Via and
// Contact name it. The 200 OK carries no usable codec, so it also checks
// that such a call is ACKed, ended with a BYE and reported as ErrSDP.
func TestWireAddresses(t *testing.T) {
	uas := newFakeUAS(t)
	agent, err := NewAgent(AgentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	listen := agent.SIPAddr("udp")

	type result struct {
		p   *Phone
		err error
	}
	res := make(chan result, 1)
	go func() {
		p, err := Dial(context.Background(), Config{Server: uas.addr.String(), Agent: agent, Caller: "+15551234567", Dialed: "1001"})
		res <- result{p, err}
	}()

	invite, from := uas.read("INVITE")
	if from != listen {
		t.Errorf("INVITE came from %v, want the listening socket %v", from, listen)
	}
	if !strings.HasPrefix(invite, "INVITE sip:1001@"+uas.addr.String()+" SIP/2.0") {
		t.Errorf("request line: %q", strings.SplitN(invite, "\r\n", 2)[0])
	}
	if via := header(invite, "Via"); !strings.HasPrefix(via, "SIP/2.0/UDP "+listen.String()+";") {
		t.Errorf("Via = %q, want sent-by %v", via, listen)
	}
	if c := header(invite, "Contact"); c != "<sip:softphone@"+listen.String()+">" {
		t.Errorf("Contact = %q, want the listening socket %v", c, listen)
	}
	if f := header(invite, "From"); !strings.HasPrefix(f, "<sip:+15551234567@127.0.0.1>;tag=") {
		t.Errorf("From = %q", f)
	}
	if ct := header(invite, "Content-Type"); ct != "application/sdp" || !strings.Contains(invite, "m=audio ") {
		t.Errorf("INVITE has no SDP offer (Content-Type %q)", ct)
	}

	uas.reply(invite, from, 100, "")
	uas.reply(invite, from, 200, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n")
	ack, from := uas.read("ACK")
	if from != listen {
		t.Errorf("ACK came from %v, want %v", from, listen)
	}
	if !strings.HasPrefix(ack, "ACK sip:uas@"+uas.addr.String()+" SIP/2.0") {
		t.Errorf("ACK not sent to the remote target: %q", strings.SplitN(ack, "\r\n", 2)[0])
	}
	bye, from := uas.read("BYE")
	if from != listen {
		t.Errorf("BYE came from %v, want %v", from, listen)
	}
	if header(bye, "Call-ID") != header(invite, "Call-ID") || !strings.Contains(header(bye, "To"), "tag=fake1") {
		t.Errorf("BYE outside the dialog:\n%s", bye)
	}
	uas.reply(bye, from, 200, "")

	r := <-res
	if r.p != nil || !errors.Is(r.err, ErrSDP) {
		t.Fatalf("Dial = %v, %v; want ErrSDP", r.p, r.err)
	}
}

// TestLateOfferAnswerInAck checks the late-offer ACK: an SDP answer that
// picks the bridge's first common codec and reuses its event type.
func TestLateOfferAnswerInAck(t *testing.T) {
	uas := newFakeUAS(t)
	res := make(chan error, 1)
	var phone *Phone
	go func() {
		p, err := Dial(context.Background(), Config{Server: uas.addr.String(), LateOffer: true})
		phone = p
		res <- err
	}()
	invite, from := uas.read("INVITE")
	if header(invite, "Content-Length") != "0" {
		t.Errorf("late-offer INVITE has a body:\n%s", invite)
	}
	uas.reply(invite, from, 200, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio 30000 RTP/AVP 18 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\na=sendrecv\r\n")
	ack, _ := uas.read("ACK")
	if header(ack, "Content-Type") != "application/sdp" {
		t.Fatalf("ACK carries no SDP:\n%s", ack)
	}
	_, body, _ := strings.Cut(ack, "\r\n\r\n")
	rm, err := parseSDP([]byte(body), []g711.Codec{g711.PCMU, g711.PCMA})
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.codecs) != 1 || rm.codec != g711.PCMA || rm.eventPT != 96 || rm.direction != SendRecv {
		t.Errorf("answer in ACK = %+v, want PCMA only, event 96, sendrecv", rm)
	}
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if phone.Media().Codec() != g711.PCMA || phone.Media().TelephoneEvent() != 96 {
		t.Errorf("phone uses %v / %d", phone.Media().Codec(), phone.Media().TelephoneEvent())
	}
	// The BYE gets no answer here; Hangup gives up with ctx and still ends the call.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := phone.Hangup(ctx); err == nil {
		t.Error("Hangup with an unanswered BYE returned nil")
	}
	select {
	case <-phone.Done():
	default:
		t.Error("Done not closed after Hangup")
	}
}

// readSIP reads one message from a stream transport.
func readSIP(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var b strings.Builder
	n := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read SIP over TCP: %v", err)
		}
		if line == "\r\n" && b.Len() == 0 {
			continue // keep-alive
		}
		b.WriteString(line)
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if line == "\r\n" {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	return b.String() + string(body)
}

// TestTCPByeOnNewConnection has the peer send its BYE on a connection of
// its own to the phone's Contact, as a UAS that does not reuse the caller's
// connection would: it must reach the agent's TCP listener and the phone.
func TestTCPByeOnNewConnection(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		p   *Phone
		err error
	}
	res := make(chan result, 1)
	go func() {
		p, err := Dial(context.Background(), Config{Server: ln.Addr().String(), Transport: "tcp"})
		res <- result{p, err}
	}()
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	invite := readSIP(t, r)
	contact := header(invite, "Contact")
	if !strings.HasSuffix(contact, ";transport=tcp>") {
		t.Fatalf("Contact %q does not ask for TCP", contact)
	}
	hostport := strings.TrimSuffix(strings.TrimPrefix(contact, "<sip:softphone@"), ";transport=tcp>")
	if hostport == c.RemoteAddr().String() {
		t.Errorf("Contact names the outgoing connection %s, not a listener", hostport)
	}

	toHdr := header(invite, "To") + ";tag=fake1"
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n"
	ok := fmt.Sprintf("SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n"+
		"Contact: <sip:uas@%s;transport=tcp>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		header(invite, "Via"), header(invite, "From"), toHdr, header(invite, "Call-ID"), header(invite, "CSeq"), ln.Addr(), len(sdp), sdp)
	if _, err := c.Write([]byte(ok)); err != nil {
		t.Fatal(err)
	}
	if ack := readSIP(t, r); !strings.HasPrefix(ack, "ACK ") {
		t.Fatalf("want ACK, got:\n%s", ack)
	}
	rr := <-res
	if rr.err != nil {
		t.Fatal(rr.err)
	}

	bc, err := net.Dial("tcp4", hostport)
	if err != nil {
		t.Fatalf("dial the phone's Contact %s: %v", hostport, err)
	}
	defer bc.Close()
	bye := fmt.Sprintf("BYE sip:softphone@%s;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-bye1\r\n"+
		"From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		hostport, bc.LocalAddr(), toHdr, header(invite, "From"), header(invite, "Call-ID"))
	if _, err := bc.Write([]byte(bye)); err != nil {
		t.Fatal(err)
	}
	if err := bc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if resp := readSIP(t, bufio.NewReader(bc)); !strings.HasPrefix(resp, "SIP/2.0 200") {
		t.Fatalf("BYE answered:\n%s", resp)
	}
	select {
	case <-rr.p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("BYE did not end the call")
	}
	if !rr.p.EndedByRemote() {
		t.Error("EndedByRemote = false")
	}
}
