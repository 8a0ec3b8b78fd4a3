package sipua

import (
	"bufio"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
)

// request is a template of a request of method outside any dialog;
// extra header lines go before Content-Length (which fill adds).
func request(method, extra string) string {
	return method + " sip:groupbridge@{dst} SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand};rport\r\n" +
		"From: <sip:alice@{srcip}>;tag=f{rand}\r\nTo: <sip:groupbridge@{dst}>\r\n" +
		"Call-ID: {rand}@test\r\nCSeq: 1 " + method + "\r\nMax-Forwards: 70\r\n" + extra + "\r\n"
}

// checkReason fails a test whose answer's reason phrase names a header:
// tools that find a header by searching the message for its name (sipp
// does so for "CSeq") would find the status line instead.
func checkReason(t *testing.T, res *sip.Response) {
	t.Helper()
	for _, name := range []string{"CSeq", "Call-ID", "From", "Via", "Contact", "Content-", "Max-Forwards"} {
		if strings.Contains(res.Reason, name) {
			t.Errorf("reason phrase %q names a header (%s)", res.Reason, name)
		}
	}
}

// warning is the Warning header a refusal for f carries.
func warning(f fault) map[string]string { return map[string]string{"Warning": f.warning} }

// Malformed and unserviceable requests get the answers RFC 3261 gives
// them, in its order (the first check that fails answers), and sound ones
// still get theirs.
func TestRequestValidation(t *testing.T) {
	s := testServer(t, nil)
	dst := sipAddr(t, s, "udp")
	sdpCall := func(extra string) string { return invite(callID(), 1, extra) }
	tests := []struct {
		name   string
		msg    string
		code   int
		reason string            // the reason phrase, when it matters
		header map[string]string // headers the answer must carry
	}{
		// 505: the version comes before anything else.
		{"version 7.0", strings.Replace(request("OPTIONS", ""), " SIP/2.0\r\n", " SIP/7.0\r\n", 1), 505, "Version Not Supported", nil},
		{"version 7.0 with two Call-IDs", strings.Replace(request("OPTIONS", "Call-ID: other@test\r\n"), " SIP/2.0\r\n", " SIP/7.0\r\n", 1), 505, "", nil},
		{"version in lower case", strings.Replace(request("OPTIONS", ""), " SIP/2.0\r\n", " sip/2.0\r\n", 1), 200, "", nil},
		// 400: headers that may appear once.
		{"two Call-IDs", request("OPTIONS", "Call-ID: other@test\r\n"), 400, faultDupCallID.reason, warning(faultDupCallID)},
		{"two Froms", request("OPTIONS", "From: <sip:bob@example.com>;tag=2\r\n"), 400, faultDupFrom.reason, warning(faultDupFrom)},
		{"two Tos", request("OPTIONS", "To: <sip:other@example.com>\r\n"), 400, faultDupTo.reason, warning(faultDupTo)},
		{"two CSeqs", request("OPTIONS", "CSeq: 2 OPTIONS\r\n"), 400, faultDupCSeq.reason, warning(faultDupCSeq)},
		{"two Content-Lengths", request("OPTIONS", "Content-Length: 0\r\n"), 400, faultDupContentLength.reason, warning(faultDupContentLength)},
		{"two Content-Types", request("OPTIONS", "Content-Type: text/plain\r\nc: text/plain\r\n"), 400, faultDupContentType.reason, warning(faultDupContentType)},
		{"two Max-Forwards", request("OPTIONS", "Max-Forwards: 5\r\n"), 400, faultDupMaxForwards.reason, warning(faultDupMaxForwards)},
		{"CSeq method INVITE on an OPTIONS", strings.Replace(request("OPTIONS", ""), "CSeq: 1 OPTIONS", "CSeq: 1 INVITE", 1), 400, faultCSeqMethod.reason, warning(faultCSeqMethod)},
		{"CSeq method after two spaces", strings.Replace(request("OPTIONS", ""), "CSeq: 1 OPTIONS", "CSeq: 1  OPTIONS", 1), 200, "", nil},
		{"headers in the Request-URI", strings.Replace(sdpCall(""), "INVITE sip:groupbridge@{dst} ", "INVITE sip:groupbridge@{dst}?Route=%3Csip:example.com%3E ", 1), 400, faultURIHeaders.reason, warning(faultURIHeaders)},
		{"escaped user in the Request-URI", strings.Replace(sdpCall(""), "INVITE sip:groupbridge@{dst} ", "INVITE sip:group%62ridge@{dst} ", 1), 200, "", nil},
		// 405 and 501: the method, before the headers.
		{"unknown method", request("FROBNICATE", ""), 501, "Not Implemented", map[string]string{"Allow": sipmsg.Allowed}},
		{"unknown method requiring an extension", request("FROBNICATE", "Require: foo\r\n"), 501, "", nil},
		{"known method we do not serve", request("MESSAGE", ""), 405, "Method Not Allowed", map[string]string{"Allow": sipmsg.Allowed}},
		// 416: the Request-URI scheme, before Require.
		{"unknown scheme", strings.Replace(request("OPTIONS", "Require: foo\r\n"), "OPTIONS sip:groupbridge@{dst} ", "OPTIONS nobodyKnowsThisScheme:opaque ", 1), 416, "Unsupported URI Scheme", nil},
		{"sips scheme", strings.Replace(request("OPTIONS", ""), "OPTIONS sip:", "OPTIONS sips:", 1), 200, "", nil},
		{"tel scheme", strings.Replace(sdpCall(""), "INVITE sip:groupbridge@{dst} ", "INVITE tel:+15551234567;phone-context=example.com ", 1), 200, "", nil},
		// 420: every option-tag of Require is unsupported; Proxy-Require is not ours.
		{"Require", request("OPTIONS", "Require: nothingSupportsThis, nothingSupportsThisEither\r\nRequire: 100rel\r\n"), 420, "Bad Extension",
			map[string]string{"Unsupported": "nothingSupportsThis, nothingSupportsThisEither, 100rel"}},
		{"Require on an INVITE", sdpCall("Require: timer\r\n"), 420, "", map[string]string{"Unsupported": "timer"}},
		{"empty Require", request("OPTIONS", "Require: \r\n"), 200, "", nil},
		{"Proxy-Require only", request("OPTIONS", "Proxy-Require: noProxiesSupportThis\r\n"), 200, "", nil},
		{"Require on a CANCEL is ignored", request("CANCEL", "Require: foo\r\n"), 481, "", nil},
		// 415 and 406: the content of an INVITE.
		{"INVITE body not SDP", strings.Replace(sdpCall(""), "Content-Type: application/sdp", "Content-Type: text/plain", 1), 415, "", map[string]string{"Accept": "application/sdp"}},
		{"Accept without SDP", sdpCall("Accept: text/nobodyKnowsThis\r\n"), 406, "Not Acceptable", nil},
		{"Accept SDP at q=0", sdpCall("Accept: application/sdp;q=0, text/plain\r\n"), 406, "", nil},
		{"Accept SDP", sdpCall("Accept: application/sdp\r\n"), 200, "", nil},
		{"Accept SDP, folded in a list", sdpCall("Accept: text/plain, Application/SDP;level=1\r\n"), 200, "", nil},
		{"Accept application/*", sdpCall("Accept: application/*;q=0.5\r\n"), 200, "", nil},
		{"Accept */*", sdpCall("Accept: */*\r\n"), 200, "", nil},
		{"Accept SDP in a second header", sdpCall("Accept: text/plain\r\nAccept: application/sdp\r\n"), 200, "", nil},
		{"empty Accept", sdpCall("Accept: \r\n"), 200, "", nil},
		{"Accept on an OPTIONS", request("OPTIONS", "Accept: text/plain\r\n"), 200, "", nil},
		{"sound INVITE", sdpCall(""), 200, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, loopback, dst)
			res := p.request(tc.msg)
			if res == nil {
				t.Fatalf("no answer, want %d", tc.code)
			}
			if res.StatusCode != tc.code {
				t.Fatalf("answered %d %s, want %d", res.StatusCode, res.Reason, tc.code)
			}
			if tc.reason != "" && res.Reason != tc.reason {
				t.Errorf("reason %q, want %q", res.Reason, tc.reason)
			}
			checkReason(t, res)
			if res.SipVersion != "SIP/2.0" {
				t.Errorf("answered in version %q", res.SipVersion)
			}
			for name, want := range tc.header {
				if h := res.GetHeader(name); h == nil || h.Value() != want {
					t.Errorf("%s: %v, want %q", name, h, want)
				}
			}
		})
	}
}

// A tel Request-URI dials its number.
func TestTelRequestURI(t *testing.T) {
	dialed := make(chan string, 1)
	s := testServer(t, func(c *Config) {
		c.Handler = HandlerFunc(func(c *Call) {
			dialed <- c.Dialed()
			<-c.Context().Done()
		})
	})
	p := newPeer(t, loopback, sipAddr(t, s, "udp"))
	id := callID()
	res := p.request(strings.Replace(invite(id, 1), "INVITE sip:groupbridge@{dst} ", "INVITE tel:+15551234567;phone-context=example.com ", 1))
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("INVITE to a tel URI answered %v", res)
	}
	p.send(p.fill(ack(id, 1, res)))
	select {
	case d := <-dialed:
		if d != "+15551234567" {
			t.Errorf("dialed %q, want +15551234567", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call never reached the handler")
	}
}

// The checks run after the flood screening and the 400s before the gate:
// a source over its rate or a scanner gets nothing, not even a 400; a
// malformed request from a source the gate would refuse gets its 400; a
// well-formed one with an unknown scheme meets the gate first (RFC 3261
// 8.2: authentication, then the method, then the headers).
func TestValidationOrder(t *testing.T) {
	s := testServer(t, func(c *Config) {
		c.Trusted = []netip.Prefix{} // nobody: 403 for everyone
		c.Limits = Limits{SourceRate: 0.01, SourceBurst: 1, DropScanners: true}
	})
	dst := sipAddr(t, s, "udp")
	dupCallID := request("OPTIONS", "Call-ID: other@test\r\n")
	tests := []struct {
		name string
		ip   string
		msgs []string
		want []int // the final answer to each, 0 for none
	}{
		{"rate limit before validation", "127.0.0.2", []string{dupCallID, dupCallID}, []int{400, 0}},
		{"scanner before validation", "127.0.0.3", []string{request("OPTIONS", "Call-ID: other@test\r\nUser-Agent: friendly-scanner\r\n")}, []int{0}},
		{"validation before the gate", "127.0.0.4", []string{strings.Replace(request("BYE", ""), "CSeq: 1 BYE", "CSeq: 1 INFO", 1)}, []int{400}},
		{"the gate before the scheme", "127.0.0.5", []string{strings.Replace(invite(callID(), 1), "INVITE sip:groupbridge@{dst} ", "INVITE nobodyKnowsThisScheme:opaque ", 1)}, []int{403}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, netip.MustParseAddr(tc.ip), dst)
			for i, m := range tc.msgs {
				p.send(p.fill(m))
				got := 0
				for {
					msg := p.read(time.Second)
					if msg == nil {
						break
					}
					if res, ok := msg.(*sip.Response); ok && res.StatusCode >= 200 {
						got = res.StatusCode
						break
					}
				}
				if got != tc.want[i] {
					t.Errorf("request %d answered %d, want %d", i+1, got, tc.want[i])
				}
			}
		})
	}
}

// Inside a dialog, a request whose CSeq is not above the last one the
// caller sent is out of order: 500 (RFC 3261 12.2.2); one above it goes
// on and becomes the new mark.
func TestInDialogCSeqOrder(t *testing.T) {
	s := testServer(t, nil)
	p := newPeer(t, loopback, sipAddr(t, s, "udp"))
	id := callID()
	res := p.request(invite(id, 10))
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("INVITE answered %v", res)
	}
	p.send(p.fill(ack(id, 10, res)))
	inDialog := func(method string, cseq int, extra string) string {
		return method + " sip:groupbridge@{dst} SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand};rport\r\n" +
			"From: <sip:alice@{srcip}>;tag=f" + id + "\r\n" +
			res.To().String() + "\r\n" +
			"Call-ID: " + id + "\r\n" +
			"CSeq: " + strconv.Itoa(cseq) + " " + method + "\r\n" +
			"Max-Forwards: 70\r\n" + extra + "\r\n"
	}
	steps := []struct {
		name string
		msg  string
		want int
	}{
		{"INFO below the INVITE's CSeq", inDialog("INFO", 3, "Content-Type: application/dtmf-relay\r\n") + "Signal=5\r\nDuration=160\r\n", 500},
		{"INFO at the INVITE's CSeq", inDialog("INFO", 10, ""), 500},
		{"INFO above it", inDialog("INFO", 11, ""), 200},
		{"BYE at the INFO's CSeq", inDialog("BYE", 11, ""), 500},
		{"OPTIONS below it", inDialog("OPTIONS", 4, ""), 500},
		{"OPTIONS above it", inDialog("OPTIONS", 40, ""), 200},
		{"re-INVITE below it", inDialog("INVITE", 12, "Content-Type: application/sdp\r\n") + testSDP, 500},
		{"BYE above it, with a gap", inDialog("BYE", 100, ""), 200},
	}
	for _, st := range steps {
		got := p.request(st.msg)
		if got == nil || got.StatusCode != st.want {
			t.Fatalf("%s: answered %v, want %d", st.name, got, st.want)
		}
		checkReason(t, got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.ActiveCalls() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.ActiveCalls(); n != 0 {
		t.Fatalf("%d calls after the BYE", n)
	}
}

// A re-INVITE is judged by its CSeq first: at or below the last one taken
// it is out of order (RFC 3261 12.2.2), 500, whatever is in progress; a
// 491 would ask the caller to retry a request that can never succeed.
// Only then by the INVITE transaction in progress (14.2): before our final
// response to the earlier INVITE, 500 with a Retry-After of 0-10 s; while
// our 2xx waits for its ACK, 491. A refusal leaves the dialog as it was:
// once the ACK is in, a later re-INVITE is answered 200.
func TestReinviteOrderBeforePending(t *testing.T) {
	const (
		ringing             = "ringing"
		ackHeldBack         = "2xx sent, ACK held back"
		reinviteAckHeldBack = "re-INVITE's 2xx sent, ACK held back"
		confirmed           = "confirmed"
	)
	tests := []struct {
		state      string
		offset     int // the re-INVITE's CSeq minus the last INVITE's
		want       int
		retryAfter bool // 14.2's 500, not 12.2.2's
	}{
		{ringing, -1, 500, false},
		{ringing, 0, 500, false},
		{ringing, 1, 500, true},
		{ackHeldBack, -1, 500, false},
		{ackHeldBack, 0, 500, false},
		{ackHeldBack, 1, 491, false},
		{reinviteAckHeldBack, -1, 500, false},
		{reinviteAckHeldBack, 0, 500, false},
		{reinviteAckHeldBack, 1, 491, false},
		{confirmed, -1, 500, false},
		{confirmed, 0, 500, false},
		{confirmed, 1, 200, false},
	}
	for _, tc := range tests {
		t.Run(tc.state+"/"+strconv.Itoa(tc.offset), func(t *testing.T) {
			t.Parallel()
			s := testServer(t, func(c *Config) {
				if tc.state == ringing {
					c.AnswerDelay = 4 * time.Second
				}
			})
			p := newPeer(t, loopback, sipAddr(t, s, "udp"))
			id := callID()
			first := p.fill(invite(id, 10))
			p.send(first)
			var dlg *sip.Response // a response carrying our To tag
			if tc.state == ringing {
				for dlg == nil {
					m := p.read(5 * time.Second)
					if m == nil {
						t.Fatal("no 180 to the INVITE")
					}
					if res, ok := m.(*sip.Response); ok && res.StatusCode == 180 {
						dlg = res
					}
				}
			} else if dlg = p.finalOf(branchOf(t, first)); dlg == nil || dlg.StatusCode != 200 {
				t.Fatalf("INVITE answered %v", dlg)
			}
			last := 10
			reinvite := func(cseq int) string {
				return reInvite(id, dlg, cseq)
			}
			if tc.state == confirmed || tc.state == reinviteAckHeldBack {
				p.send(p.fill(ack(id, 10, dlg)))
				waitAcked(t, s)
			}
			if tc.state == reinviteAckHeldBack {
				last = 11
				if res := p.exchange(reinvite(last)); res == nil || res.StatusCode != 200 {
					t.Fatalf("re-INVITE answered %v", res)
				}
			}

			res := p.exchange(reinvite(last + tc.offset))
			if res == nil || res.StatusCode != tc.want {
				t.Fatalf("re-INVITE with CSeq %d answered %v, want %d", last+tc.offset, res, tc.want)
			}
			checkReason(t, res)
			ra := res.GetHeader("Retry-After")
			switch {
			case tc.retryAfter && ra == nil:
				t.Errorf("500 without Retry-After")
			case tc.retryAfter:
				if n, err := strconv.Atoi(ra.Value()); err != nil || n < 0 || n > 10 {
					t.Errorf("Retry-After %q, want 0-10 s", ra.Value())
				}
			case ra != nil:
				t.Errorf("%d with Retry-After %q: retrying cannot help", tc.want, ra.Value())
			}
			if tc.want == 500 && !tc.retryAfter {
				if w := res.GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), "CSeq out of order") {
					t.Errorf("out-of-order 500 with Warning %v", w)
				}
			}

			// Complete what was in progress; the dialog goes on.
			switch tc.state {
			case ringing:
				if dlg = p.finalOf(branchOf(t, first)); dlg == nil || dlg.StatusCode != 200 {
					t.Fatalf("INVITE answered %v after the re-INVITE", dlg)
				}
				p.send(p.fill(ack(id, 10, dlg)))
			case ackHeldBack, reinviteAckHeldBack:
				p.send(p.fill(ack(id, last, dlg)))
			case confirmed:
				if tc.want == 200 {
					p.send(p.fill(ack(id, last+tc.offset, dlg)))
				}
			}
			waitAcked(t, s)
			next := last + 5
			if res := p.exchange(reinvite(next)); res == nil || res.StatusCode != 200 {
				t.Fatalf("re-INVITE after the ACK answered %v", res)
			}
			p.send(p.fill(ack(id, next, dlg)))
			waitAcked(t, s)
		})
	}
}

// reInvite is a re-INVITE template inside the dialog that dlg (a response
// with our To tag) belongs to.
func reInvite(callID string, dlg *sip.Response, cseq int) string {
	return "INVITE sip:groupbridge@{dst} SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP {src};branch=z9hG4bK-{rand};rport\r\n" +
		"From: <sip:alice@{srcip}>;tag=f" + callID + "\r\n" +
		dlg.To().String() + "\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: " + strconv.Itoa(cseq) + " INVITE\r\n" +
		"Contact: <sip:alice@{src}>\r\n" +
		"Max-Forwards: 70\r\n" +
		"Content-Type: application/sdp\r\n\r\n" + testSDP
}

// branchOf is the branch of a filled request's Via.
func branchOf(t *testing.T, msg string) string {
	t.Helper()
	m, err := sip.ParseMessage([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.(*sip.Request).Via().Params.Get("branch")
	return b
}

// exchange sends msg (a template) and returns the final response to it.
func (p *peer) exchange(msg string) *sip.Response {
	p.t.Helper()
	msg = p.fill(msg)
	p.send(msg)
	return p.finalOf(branchOf(p.t, msg))
}

// finalOf reads until the final response of the request with branch, or
// nil after 10 s. It passes over others: a retransmitted 2xx to an INVITE
// whose ACK is held back has the CSeq of a stale re-INVITE.
func (p *peer) finalOf(branch string) *sip.Response {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := p.read(time.Until(deadline))
		if m == nil {
			return nil
		}
		if res, ok := m.(*sip.Response); ok && res.StatusCode >= 200 {
			if b, _ := res.Via().Params.Get("branch"); b == branch {
				return res
			}
		}
	}
}

// waitAcked waits until no call of s has an INVITE in progress: the ACK
// just sent has been taken (sipgo hands each message to its own goroutine,
// so a request sent after it may be served first).
func waitAcked(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		busy := false
		for _, c := range s.dlg.All() {
			busy = busy || c.Negotiating()
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the ACK was not taken within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Answers longer than sipgo's default UDP bound (1,300 bytes) go out over
// UDP: an OPTIONS and an INVITE that crossed many proxies (their Vias
// come back in the answer) are answered whatever their size, up to what
// sipgo reads in one datagram.
func TestLargeUDPResponses(t *testing.T) {
	s := testServer(t, nil)
	dst := sipAddr(t, s, "udp")
	vias := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString("Via: SIP/2.0/UDP proxy" + strconv.Itoa(i) + ".example.com:5060;branch=z9hG4bK-hop" + strconv.Itoa(i) + ";received=192.0.2.1\r\n")
		}
		return b.String()
	}
	tests := []struct {
		name string
		msg  string
	}{
		{"OPTIONS, 2 KB", request("OPTIONS", vias(25))},
		{"OPTIONS, 20 KB", request("OPTIONS", vias(250))},
		{"INVITE, 5 KB", invite(callID(), 1, vias(60))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, loopback, dst)
			// The extra Vias go below ours, so that the answer comes back here.
			msg := p.fill(tc.msg)
			p.send(msg)
			res := p.final()
			if res == nil {
				t.Fatalf("a %d-byte request was not answered", len(msg))
			}
			if n := len(res.String()); n <= 1300 {
				t.Fatalf("the answer is %d bytes: too short to test anything", n)
			}
			if res.StatusCode != 200 {
				t.Errorf("answered %d", res.StatusCode)
			}
		})
	}
}

// A sound request costs the checks no allocation.
func TestValidationDoesNotAllocate(t *testing.T) {
	raw := "INVITE sip:groupbridge@127.0.0.1:5060 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n" +
		"From: <sip:alice@127.0.0.1>;tag=f1\r\nTo: <sip:groupbridge@127.0.0.1>\r\n" +
		"Call-ID: a@test\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n" +
		"Accept: application/sdp, application/dtmf-relay\r\nSupported: replaces, timer\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(testSDP)) + "\r\n\r\n" + testSDP
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	if f := malformed(req); f != (fault{}) {
		t.Fatalf("a sound INVITE is %q", f.reason)
	}
	a := testing.AllocsPerRun(1000, func() {
		_ = malformed(req)
		_ = requiredTags(req)
		_ = acceptsSDP(req)
		_ = isSDP(req.ContentType().Value())
	})
	if a != 0 {
		t.Errorf("%v allocations per request", a)
	}
}

// Over TCP the flood screening runs on the parsed request, in the same
// guard as validation: a scanner's malformed request still gets nothing,
// a phone's gets its 400.
func TestValidationAfterScreeningTCP(t *testing.T) {
	s := testServer(t, func(c *Config) {
		c.Listeners = append(c.Listeners, Listener{"tcp", netip.AddrPortFrom(loopback, 0)})
		c.Trusted = []netip.Prefix{} // nobody: everyone is screened
		c.Limits = Limits{DropScanners: true}
	})
	dst := sipAddr(t, s, "tcp")
	tests := []struct {
		ua   string
		want string // the status line's start, "" for no answer
	}{
		{"friendly-scanner", ""},
		{"Linphone", "SIP/2.0 400 "},
	}
	for i, tc := range tests {
		t.Run(tc.ua, func(t *testing.T) {
			conn, err := net.DialTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.7"), 0)), net.TCPAddrFromAddrPort(dst))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			src := conn.LocalAddr().String()
			msg := "OPTIONS sip:groupbridge@" + dst.String() + " SIP/2.0\r\n" +
				"Via: SIP/2.0/TCP " + src + ";branch=z9hG4bK-v" + strconv.Itoa(i) + "\r\n" +
				"From: <sip:alice@127.0.0.7>;tag=f1\r\nTo: <sip:groupbridge@" + dst.String() + ">\r\n" +
				"Call-ID: v" + strconv.Itoa(i) + "@test\r\nCall-ID: other@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n" +
				"User-Agent: " + tc.ua + "\r\nContent-Length: 0\r\n\r\n"
			if _, err := conn.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			if tc.want == "" && line != "" {
				t.Fatalf("a scanner's malformed request was answered %q", line)
			}
			if !strings.HasPrefix(line, tc.want) {
				t.Fatalf("answered %q, want %q", line, tc.want)
			}
		})
	}
}
