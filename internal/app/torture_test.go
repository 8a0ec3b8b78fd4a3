package app

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/groupbridge/groupbridge/internal/testkit"
)

// tortureHosts are the fictional hosts of RFC 4475's messages (and their
// ports). They are rewritten to the test's own socket, so that nothing the
// bridge sends back (responses, its BYE to a Contact, a lookup of a name)
// leaves loopback.
var tortureHosts = regexp.MustCompile(`\b(?:[A-Za-z0-9-]+\.)*(?:example\.(?:com|net|org|edu)|company\.com)(?::[0-9]+)?\b`)

// ipv4Port is an IPv4 literal with an optional port, as the messages'
// Via, Contact and Call-ID headers hold them.
var ipv4Port = regexp.MustCompile(`\b[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?::[0-9]+)?\b`)

// testNet are RFC 5737 addresses; in bodies 192.0.2.N becomes 127.0.0.N,
// which has the same length, so every Content-Length of the RFC stays
// exact.
var testNet = regexp.MustCompile(`\b192\.0\.2\.([0-9]{1,3})\b`)

// loadTorture reads an RFC 4475 message and points it at loopback: host
// names and IPv4 addresses in the headers become src (the test's socket:
// the Via sent-by is where a UDP response without rport goes, RFC 3261
// 18.2.2, and a Contact is where the bridge's BYE goes), and 192.0.2.N in
// the body (SDP) becomes 127.0.0.N.
func loadTorture(t *testing.T, name, src string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "torture", name+".dat"))
	if err != nil {
		t.Fatal(err)
	}
	head, body, found := bytes.Cut(b, []byte("\r\n\r\n"))
	head = pointAt(tortureHosts, head, src)
	head = pointAt(ipv4Port, head, src)
	if !found {
		return head
	}
	out := append(head, []byte("\r\n\r\n")...)
	return append(out, testNet.ReplaceAll(body, []byte("127.0.0.$1"))...)
}

// pointAt replaces what re matches in b with src ("127.0.0.1:port"), or
// with src's address alone where the match is followed by white space:
// the RFC's hosts that are followed by LWS ("spindle.example.com   ;" in
// wsinv's Via) have no port, and sipgo's Via parser, which reads a port up
// to the ";", refuses "127.0.0.1:40000   ;". The messages stay what the
// RFC wrote, white space included; only the host changes.
func pointAt(re *regexp.Regexp, b []byte, src string) []byte {
	host, _, _ := strings.Cut(src, ":")
	out := make([]byte, 0, len(b)+64)
	last := 0
	for _, m := range re.FindAllIndex(b, -1) {
		out = append(out, b[last:m[0]]...)
		if m[1] < len(b) && (b[m[1]] == ' ' || b[m[1]] == '\t') {
			out = append(out, host...)
		} else {
			out = append(out, src...)
		}
		last = m[1]
	}
	return append(out, b[last:]...)
}

// statusCode reads the status code of a SIP response (of any version, so
// that an answer in the request's foreign version would be seen too); 0
// for a request.
func statusCode(msg []byte) int {
	line, _, _ := bytes.Cut(msg, []byte("\r\n"))
	f := strings.Fields(string(line))
	if len(f) >= 2 && strings.HasPrefix(f[0], "SIP/") {
		if c, err := strconv.Atoi(f[1]); err == nil {
			return c
		}
	}
	return 0
}

// tortureUDP sends msg in one datagram from conn and collects the status
// codes answered until a final one or quiet.
func tortureUDP(t *testing.T, conn *net.UDPConn, dst *net.UDPAddr, msg []byte, quiet time.Duration) []int {
	t.Helper()
	if _, err := conn.WriteToUDP(msg, dst); err != nil {
		t.Fatal(err)
	}
	var codes []int
	buf := make([]byte, 65536)
	for i := 0; i < 20; i++ {
		_ = conn.SetReadDeadline(time.Now().Add(quiet))
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			break
		}
		c := statusCode(buf[:n])
		if c == 0 {
			continue // a request of the bridge (its BYE): not an answer
		}
		codes = append(codes, c)
		if c >= 200 {
			break
		}
	}
	return codes
}

// tortureTCP sends msg on a new connection and collects the status codes
// answered until a final one, quiet, or the bridge closing the connection.
func tortureTCP(t *testing.T, dst string, msg func(src string) []byte, quiet time.Duration) (codes []int, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", dst, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(msg(c.LocalAddr().String())); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for i := 0; i < 20; i++ {
		_ = c.SetReadDeadline(time.Now().Add(quiet))
		m, err := readSIPStream(r)
		if err != nil {
			var ne net.Error
			return codes, !(errors.As(err, &ne) && ne.Timeout())
		}
		if code := statusCode(m); code != 0 {
			codes = append(codes, code)
			if code >= 200 {
				break
			}
		}
	}
	return codes, false
}

// readSIPStream reads one message from a stream: headers to the blank line,
// then Content-Length bytes.
func readSIPStream(r *bufio.Reader) ([]byte, error) {
	var head bytes.Buffer
	for {
		line, err := r.ReadBytes('\n')
		head.Write(line)
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			if head.Len() <= 2 {
				head.Reset() // keep-alive CRLF
				continue
			}
			break
		}
	}
	n := 0
	for _, l := range strings.Split(head.String(), "\r\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && (strings.EqualFold(strings.TrimSpace(k), "Content-Length") || strings.EqualFold(strings.TrimSpace(k), "l")) {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(head.Bytes(), body...), nil
}

// noAnswer stands for "nothing came back" in the torture table.
const noAnswer = 0

// tortureCase is one RFC 4475 message and what the bridge does with it.
type tortureCase struct {
	name    string // file in testdata/torture, the RFC's test name
	section string // of RFC 4475
	// rfc lists the final answers RFC 4475 (with RFC 3261) accepts from a
	// user agent server; noAnswer where nothing can or should come back.
	rfc []int
	// udp and tcp are what the bridge answers (last status code, noAnswer
	// for none); tcp is -1 where the message is not sent over TCP (a
	// datagram test, or a response).
	udp, tcp int
	note     string
}

// tortureTable records, per message, what the running bridge (sipgo
// v1.7.3 underneath) answers. Where the answer is outside rfc the note
// says DEVIATION and why. The test accepts the recorded answer or any
// answer the RFC allows (over TCP a few answers race the connection's
// close), so a fix passes and a new deviation fails.
var tortureTable = []tortureCase{
	// 3.1.1 valid messages
	{"wsinv", "3.1.1.1", []int{200, 481}, 400, 400, "DEVIATION: sipgo keeps the white space around \"=\" in parameter names (\" tag \"), so neither the From tag nor the To tag is seen: 400 (\"Missing Tag\"); with the tags read, 481 would be right (a To tag for no dialog of ours)"},
	{"intmeth", "3.1.1.2", []int{501, 405}, 501, 501, "unknown method: 501 with Allow (RFC 3261 21.5.2)"},
	{"esc01", "3.1.1.3", []int{200}, 200, 200, "INVITE with escaped URIs: answered, then ended for want of an ACK"},
	{"escnull", "3.1.1.4", []int{405, 501}, 405, 405, "REGISTER: we are no registrar"},
	{"esc02", "3.1.1.5", []int{501, 405}, 501, 501, "method RE%47IST%45R is unknown (not REGISTER): 501"},
	{"lwsdisp", "3.1.1.6", []int{200}, 200, 200, ""},
	{"longreq", "3.1.1.7", []int{200}, 200, 200, "the 100 and 200 carry 34 Vias and long To/From, over 1,300 bytes: sipua lets sipgo send UDP responses up to 65,507 bytes"},
	{"dblreq", "3.1.1.8", []int{405, 501}, 405, -1, "REGISTER answered, the trailing INVITE in the same datagram ignored (RFC 3261 18.3)"},
	{"semiuri", "3.1.1.9", []int{200}, 200, 200, ""},
	{"transports", "3.1.1.10", []int{200}, 200, 200, ""},
	{"mpart01", "3.1.1.11", []int{405, 501}, 405, 405, "MESSAGE is not served"},
	{"unreason", "3.1.1.12", []int{noAnswer}, noAnswer, -1, "a response matching no transaction: dropped"},
	{"noreason", "3.1.1.13", []int{noAnswer}, noAnswer, -1, "a response matching no transaction: dropped"},
	// 3.1.2 invalid messages
	{"badinv01", "3.1.2.1", []int{400, noAnswer}, noAnswer, noAnswer, "sipgo's parser rejects the Via; dropped at the transport (no answer possible from the bridge); TCP connection closed"},
	{"clerr", "3.1.2.2", []int{400, noAnswer}, noAnswer, noAnswer, "UDP: body shorter than Content-Length, dropped by sipgo; TCP: the stream waits for the rest of the body (RFC 3261 18.3)"},
	{"ncl", "3.1.2.3", []int{400, noAnswer}, noAnswer, noAnswer, "negative Content-Length: dropped by sipgo; TCP connection closed"},
	{"scalar02", "3.1.2.4", []int{400, noAnswer}, noAnswer, noAnswer, "CSeq beyond 2^32: dropped by sipgo; TCP connection closed"},
	{"scalarlg", "3.1.2.5", []int{noAnswer}, noAnswer, -1, "a response: dropped"},
	{"quotbal", "3.1.2.6", []int{400, noAnswer}, noAnswer, noAnswer, "dropped by sipgo; TCP connection closed"},
	{"ltgtruri", "3.1.2.7", []int{400, noAnswer}, noAnswer, noAnswer, "dropped by sipgo; TCP connection closed"},
	{"lwsruri", "3.1.2.8", []int{400, noAnswer}, noAnswer, noAnswer, "dropped by sipgo; TCP connection closed"},
	{"lwsstart", "3.1.2.9", []int{400, noAnswer}, noAnswer, noAnswer, "dropped by sipgo; TCP connection closed"},
	{"trws", "3.1.2.10", []int{400, noAnswer}, noAnswer, noAnswer, "dropped by sipgo; TCP connection closed"},
	{"escruri", "3.1.2.11", []int{400}, 400, 400, "headers in the Request-URI (RFC 3261 19.1.1, Table 1): 400"},
	{"baddate", "3.1.2.12", []int{400, 200}, 200, 200, "the Date header is not used, so accepting is allowed"},
	{"regbadct", "3.1.2.13", []int{400, 405}, 405, 405, "REGISTER: we are no registrar"},
	{"badaspec", "3.1.2.14", []int{400, 200, noAnswer}, noAnswer, noAnswer, "dropped by sipgo (\"invalid uri scheme\" for \"< sip:\"); TCP connection closed"},
	{"baddn", "3.1.2.15", []int{400, 200}, 200, 200, "accepted liberally"},
	{"badvers", "3.1.2.16", []int{505}, 505, 505, "SIP/7.0: \"SIP/2.0 505 Version Not Supported\""},
	{"mismatch01", "3.1.2.17", []int{400}, 400, 400, "CSeq method INVITE on an OPTIONS: 400 \"Method Mismatch\""},
	{"mismatch02", "3.1.2.18", []int{501, 400, 405}, 400, 400, "CSeq method INVITE on NEWMETHOD: the mismatch (400) is found before the method (501)"},
	{"bigcode", "3.1.2.19", []int{noAnswer}, noAnswer, -1, "a response with an overlarge code: dropped"},
	// 3.2 transaction layer
	{"badbranch", "3.2.1", []int{200}, 200, 200, ""},
	// 3.3 application layer
	{"insuf", "3.3.1", []int{400}, 400, 400, "no Call-ID, From, To: sipgo answers 400 statelessly"},
	{"unkscm", "3.3.2", []int{416}, 416, 416, "Request-URI scheme nobodyKnowsThisScheme: 416"},
	{"novelsc", "3.3.3", []int{416, noAnswer}, noAnswer, noAnswer, "dropped by sipgo (\"invalid uri scheme\"): 416 would need the parser to pass it up; TCP connection closed"},
	{"unksm2", "3.3.4", []int{400, 405}, 405, 405, "REGISTER: we are no registrar"},
	{"bext01", "3.3.5", []int{420}, 420, 420, "420 with Unsupported: nothingSupportsThis, nothingSupportsThisEither (we support no extension; Proxy-Require is for proxies)"},
	{"invut", "3.3.6", []int{415}, 415, 415, ""},
	{"regaut01", "3.3.7", []int{405, 401}, 405, 405, "REGISTER: we are no registrar"},
	{"multi01", "3.3.8", []int{400}, 400, 400, "two Call-IDs, CSeqs, Froms and Tos: 400 \"Repeated Header\", the Warning naming the first (Call-ID)"},
	{"mcl01", "3.3.9", []int{400}, 400, noAnswer, "UDP: 400 for the two Content-Lengths. DEVIATION over TCP: sipgo's stream parser frames the message by the last Content-Length (5), fails on the bytes that follow and closes the connection before the 400 can go out"},
	{"bcast", "3.3.10", []int{noAnswer}, noAnswer, -1, "a response: dropped"},
	{"zeromf", "3.3.11", []int{200, 483}, 200, 200, "Max-Forwards 0 at its destination: answered"},
	{"cparam01", "3.3.12", []int{405, 501}, 405, 405, "REGISTER: we are no registrar"},
	{"cparam02", "3.3.13", []int{405, 501}, 405, 405, "REGISTER: we are no registrar"},
	{"regescrt", "3.3.14", []int{405, 501}, 405, 405, "REGISTER: we are no registrar"},
	{"sdp01", "3.3.15", []int{406}, 406, 406, "Accept: text/nobodyKnowsThis, and our answer would be SDP: 406"},
	// 3.4 backward compatibility
	{"inv2543", "3.4.1", []int{200, 400}, 400, noAnswer, "RFC 2543 INVITE without From tag: 400 (\"Missing Tag\", Warning: no From tag). DEVIATION over TCP from RFC 4475's list, though not from RFC 3261 18.3: there is no Content-Length, which a stream needs, so sipgo waits for the body and closes"},
}

// Every RFC 4475 message against the running bridge, over UDP and TCP: it
// never crashes, every answer is one the RFC allows or the one recorded in
// tortureTable, no call is left behind, and a normal caller joins a room
// afterwards.
func TestRFC4475Torture(t *testing.T) {
	t.Parallel()
	clk := testkit.NewManualClock() // still until the messages are sent
	a, logs := startAppWith(t, testYAML("", ""), Options{Clock: clk})
	udpDst, err := net.ResolveUDPAddr("udp", sipAddr(t, a, "udp"))
	if err != nil {
		t.Fatal(err)
	}
	tcpDst := sipAddr(t, a, "tcp")
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "torture", "*.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tortureTable) {
		t.Fatalf("%d messages in testdata/torture, %d in the table", len(files), len(tortureTable))
	}
	final := func(codes []int) int {
		if len(codes) == 0 {
			return noAnswer
		}
		return codes[len(codes)-1]
	}
	check := func(tc tortureCase, transport string, got, recorded int) {
		t.Helper()
		if slices.Contains(tc.rfc, got) {
			return
		}
		if got != recorded {
			t.Errorf("%s (%s) over %s: answered %d; RFC 4475 allows %v, recorded %d", tc.name, tc.section, transport, got, tc.rfc, recorded)
			return
		}
		t.Logf("%s (%s) over %s: %d, RFC 4475 wants %v: %s", tc.name, tc.section, transport, got, tc.rfc, tc.note)
	}
	for _, tc := range tortureTable {
		for _, rec := range []int{tc.udp, tc.tcp} {
			if rec >= 0 && !slices.Contains(tc.rfc, rec) && !strings.Contains(tc.note, "DEVIATION") {
				t.Errorf("%s: recorded %d is outside %v, and the note does not say DEVIATION", tc.name, rec, tc.rfc)
			}
		}
	}
	for _, tc := range tortureTable {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		got := final(tortureUDP(t, conn, udpDst, loadTorture(t, tc.name, conn.LocalAddr().String()), 700*time.Millisecond))
		conn.Close()
		check(tc, "UDP", got, tc.udp)
		if tc.tcp < 0 {
			continue
		}
		codes, _ := tortureTCP(t, tcpDst, func(src string) []byte { return loadTorture(t, tc.name, src) }, 700*time.Millisecond)
		check(tc, "TCP", final(codes), tc.tcp)
	}
	// The INVITEs that were answered end for want of an ACK, RFC 3261's
	// 32 s on a clock that runs fast.
	stop := runFast(clk)
	deadline := time.Now().Add(10 * time.Second)
	for a.sip.ActiveCalls() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if n := a.sip.ActiveCalls(); n != 0 {
		t.Fatalf("%d calls left after the torture messages", n)
	}
	// Still serving: a normal caller joins a room.
	p := dial(t, a, softphone.Config{Caller: "+15550004475"})
	enter(t, logs, p, "1234", softphone.DigitRFC4733, 1)
	if n := logs.count(t, "panic in SIP handler"); n != 0 {
		t.Fatalf("%d panics in SIP handlers", n)
	}
}
