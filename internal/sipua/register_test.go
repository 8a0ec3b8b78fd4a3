package sipua

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/groupbridge/groupbridge/internal/sipua/sipmsg"
	"github.com/groupbridge/groupbridge/media/rtpio"
	"github.com/icholy/digest"
)

// fakeRegistrar is a registrar on a loopback UDP socket, written from raw
// SIP: it challenges with digest (MD5, qop=auth), checks the answer, grants
// bindings and records every REGISTER it sees.
type fakeRegistrar struct {
	t        *testing.T
	conn     *net.UDPConn
	password string // "" accepts without a challenge

	mu         sync.Mutex
	unavail    int  // answer 503 to this many REGISTERs first
	minExpires int  // answer 423 below this
	silent     bool // answer nothing, like a PBX that went away
	grant      int  // seconds granted; 0 echoes the request
	seen       chan seenRegister
}

// seenRegister is one REGISTER as the registrar saw it, and its answer.
type seenRegister struct {
	at   time.Time
	from netip.AddrPort
	req  *sip.Request
	code int
}

func newFakeRegistrar(t *testing.T, password string) *fakeRegistrar {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRegistrar{t: t, conn: c, password: password, seen: make(chan seenRegister, 100)}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = c.Close()
		<-done
	})
	go func() {
		defer close(done)
		r.serve()
	}()
	return r
}

func (r *fakeRegistrar) uri() string {
	return "sip:" + r.conn.LocalAddr().(*net.UDPAddr).AddrPort().String()
}

func (r *fakeRegistrar) serve() {
	buf := make([]byte, 65536)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		req, ok := m.(*sip.Request)
		if err != nil || !ok || req.Method != sip.REGISTER {
			continue
		}
		r.mu.Lock()
		silent := r.silent
		r.mu.Unlock()
		if silent {
			r.seen <- seenRegister{at: time.Now(), from: from, req: req}
			continue
		}
		res := r.answer(req)
		_, _ = r.conn.WriteToUDPAddrPort([]byte(res.String()), from)
		r.seen <- seenRegister{at: time.Now(), from: from, req: req, code: res.StatusCode}
	}
}

func (r *fakeRegistrar) answer(req *sip.Request) *sip.Response {
	r.mu.Lock()
	defer r.mu.Unlock()
	asked, _ := strconv.Atoi(req.GetHeader("Expires").Value())
	switch {
	case r.unavail > 0:
		r.unavail--
		return sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
	case r.password != "" && !r.authorized(req):
		res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		chal := digest.Challenge{Realm: "pbx", Nonce: sipmsg.NewID(), Algorithm: "MD5", QOP: []string{"auth"}}
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
		return res
	case asked > 0 && asked < r.minExpires:
		res := sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
		res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(r.minExpires)))
		return res
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.To().Params.Add("tag", "reg")
	grant := asked
	if r.grant > 0 && asked > 0 {
		grant = r.grant
	}
	// Another device's binding first, as registrars list them all.
	res.AppendHeader(sip.NewHeader("Contact", "<sip:1042@192.0.2.99:5060>;expires=3600"))
	if c := req.Contact(); c != nil && asked > 0 {
		res.AppendHeader(sip.NewHeader("Contact", "<"+c.Address.String()+">;expires="+strconv.Itoa(grant)))
	}
	return res
}

func (r *fakeRegistrar) authorized(req *sip.Request) bool {
	h := req.GetHeader("Authorization")
	if h == nil {
		return false
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil {
		return false
	}
	want, err := digest.Digest(&digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, QOP: []string{cred.QOP}},
		digest.Options{Method: "REGISTER", URI: cred.URI, Username: cred.Username, Password: r.password, Cnonce: cred.Cnonce, Count: cred.Nc})
	return err == nil && want.Response == cred.Response && cred.URI == req.Recipient.String()
}

// next returns the next REGISTER the registrar answered.
func (r *fakeRegistrar) next(t *testing.T) seenRegister {
	t.Helper()
	select {
	case s := <-r.seen:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no REGISTER")
		return seenRegister{}
	}
}

// nextAnswered returns the next REGISTER answered with code.
func (r *fakeRegistrar) nextAnswered(t *testing.T, code int) seenRegister {
	t.Helper()
	for {
		if s := r.next(t); s.code == code {
			return s
		}
	}
}

func waitState(t *testing.T, s *Server, want string) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		state, err := s.Registration()
		if state == want {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("registration state %q (%v), want %q", state, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRegister(t *testing.T) {
	pbx := newFakeRegistrar(t, "from the PBX")
	s := testServer(t, func(c *Config) {
		c.Register = &Register{Registrar: pbx.uri(), User: "1042", Password: "from the PBX", Expires: 2 * time.Second}
	})
	ours := sipAddr(t, s, "udp")

	first := pbx.next(t)
	if first.code != 401 {
		t.Fatalf("first REGISTER answered %d, want the challenge", first.code)
	}
	// REGISTER leaves from the listening socket, and says so, so that the
	// PBX reaches us back there.
	if first.from != ours {
		t.Errorf("REGISTER came from %s, want our SIP socket %s", first.from, ours)
	}
	if via := first.req.Via(); via.Host != "127.0.0.1" || via.Port != int(ours.Port()) || !via.Params.Has("rport") {
		t.Errorf("Via %s, want 127.0.0.1:%d with rport", via.Value(), ours.Port())
	}
	wantContact := "sip:1042@" + ours.String()
	if c := first.req.Contact(); c == nil || c.Address.String() != wantContact {
		t.Errorf("Contact %v, want %s", c, wantContact)
	}
	if to := first.req.To().Address.String(); to != "sip:1042@127.0.0.1" {
		t.Errorf("To %s, want sip:1042@127.0.0.1", to)
	}
	if e := first.req.GetHeader("Expires").Value(); e != "2" {
		t.Errorf("Expires %s, want 2", e)
	}

	ok := pbx.next(t)
	if ok.code != 200 || ok.req.GetHeader("Authorization") == nil {
		t.Fatalf("second REGISTER answered %d (authorization %v), want 200 with credentials", ok.code, ok.req.GetHeader("Authorization"))
	}
	if ok.req.CallID().Value() != first.req.CallID().Value() || ok.req.CSeq().SeqNo != first.req.CSeq().SeqNo+1 {
		t.Error("the answer to the challenge changed Call-ID or did not raise CSeq")
	}
	if err := waitState(t, s, RegistrationRegistered); err != nil {
		t.Errorf("registered with error %v", err)
	}

	// Refreshed at 80% of the 2 s granted: not before a second is out.
	refresh := pbx.nextAnswered(t, 200)
	if gap := refresh.at.Sub(ok.at); gap < time.Second {
		t.Errorf("refreshed %v after registering, want about 1.6 s", gap)
	}
	if refresh.req.CallID().Value() != first.req.CallID().Value() {
		t.Error("the refresh changed Call-ID")
	}

	// Shutdown removes the binding.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		seen := pbx.next(t)
		if seen.req.GetHeader("Expires").Value() != "0" {
			continue // a refresh that crossed the shutdown
		}
		if seen.code == 401 {
			seen = pbx.next(t)
		}
		if seen.code != 200 || seen.req.GetHeader("Expires").Value() != "0" {
			t.Fatalf("un-REGISTER answered %d", seen.code)
		}
		if c := seen.req.Contact(); c == nil || c.Address.String() != wantContact {
			t.Errorf("un-REGISTER Contact %v, want %s", c, wantContact)
		}
		break
	}
	if state, err := s.Registration(); state != RegistrationFailed || !errors.Is(err, errShutdown) {
		t.Errorf("after shutdown: %q, %v", state, err)
	}
}

func TestRegisterBackoff(t *testing.T) {
	pbx := newFakeRegistrar(t, "")
	pbx.mu.Lock()
	pbx.unavail = 3
	pbx.mu.Unlock()
	s := newTestServer(t, func(c *Config) {
		c.Register = &Register{Registrar: pbx.uri(), User: "1042"}
	})
	const base = 100 * time.Millisecond
	s.reg.backoffMin = base
	if state, _ := s.Registration(); state != RegistrationRegistering {
		t.Errorf("state before the first answer: %q", state)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var at []time.Time
	for range 3 {
		seen := pbx.next(t)
		if seen.code != 503 {
			t.Fatalf("answered %d, want 503", seen.code)
		}
		at = append(at, seen.at)
	}
	err := waitState(t, s, RegistrationFailed)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("failed with %v, want the 503", err)
	}
	last := pbx.next(t)
	if last.code != 200 {
		t.Fatalf("fourth REGISTER answered %d", last.code)
	}
	at = append(at, last.at)
	// Waits double from base, less at most 20% of jitter.
	for i := 1; i < len(at); i++ {
		min := base << (i - 1) * 8 / 10
		if gap := at[i].Sub(at[i-1]); gap < min {
			t.Errorf("retry %d came %v after the last, want at least %v", i, gap, min)
		}
	}
	if err := waitState(t, s, RegistrationRegistered); err != nil {
		t.Errorf("registered with error %v", err)
	}
}

// TestUnregisterBounded checks that Shutdown does not wait long for a PBX
// that no longer answers.
func TestUnregisterBounded(t *testing.T) {
	pbx := newFakeRegistrar(t, "")
	s := testServer(t, func(c *Config) {
		c.Register = &Register{Registrar: pbx.uri(), User: "1042"}
	})
	waitState(t, s, RegistrationRegistered)
	pbx.mu.Lock()
	pbx.silent = true
	pbx.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = s.Shutdown(ctx)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Shutdown took %v with a silent registrar", took)
	}
	for {
		if seen := pbx.next(t); seen.req.GetHeader("Expires").Value() == "0" {
			break // the un-REGISTER was sent, unanswered
		}
	}
}

func TestRegisterRefused(t *testing.T) {
	pbx := newFakeRegistrar(t, "the right one")
	s := testServer(t, func(c *Config) {
		c.Register = &Register{Registrar: pbx.uri(), User: "1042", Password: "a wrong one"}
	})
	err := waitState(t, s, RegistrationFailed)
	if err == nil || !strings.Contains(err.Error(), "refused the credentials") {
		t.Errorf("failed with %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong one") {
		t.Errorf("error %v shows the password", err)
	}
}

func TestRegisterMinExpires(t *testing.T) {
	pbx := newFakeRegistrar(t, "from the PBX")
	pbx.mu.Lock()
	pbx.minExpires = 600
	pbx.mu.Unlock()
	s := testServer(t, func(c *Config) {
		c.Register = &Register{Registrar: pbx.uri(), User: "1042", Password: "from the PBX", Expires: time.Minute}
	})
	// Challenged, then too brief: asked again for Min-Expires, with fresh
	// credentials rather than a replayed nonce.
	for i, want := range []struct {
		code    int
		expires string
		auth    bool
	}{{401, "60", false}, {423, "60", true}, {401, "600", false}, {200, "600", true}} {
		seen := pbx.next(t)
		if seen.code != want.code || seen.req.GetHeader("Expires").Value() != want.expires || (seen.req.GetHeader("Authorization") != nil) != want.auth {
			t.Fatalf("REGISTER %d: Expires %s, authorization %v, answered %d; want %s, %v, %d", i,
				seen.req.GetHeader("Expires").Value(), seen.req.GetHeader("Authorization") != nil, seen.code,
				want.expires, want.auth, want.code)
		}
	}
	waitState(t, s, RegistrationRegistered)
	if s.reg.expires != 600*time.Second {
		t.Errorf("refreshes will ask for %v, want 10m", s.reg.expires)
	}
}

// TestRegistrarIsTrusted checks that the registrar's address may call
// without authentication, while it is not in Trusted.
func TestRegistrarIsTrusted(t *testing.T) {
	pbx := newFakeRegistrar(t, "")
	s := testServer(t, func(c *Config) {
		untrusted()(c)
		c.Register = &Register{Registrar: pbx.uri(), User: "1042"}
	})
	waitState(t, s, RegistrationRegistered)
	p := newPeer(t, loopback, sipAddr(t, s, "udp"))
	id := callID()
	res := p.request(invite(id, 1))
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("INVITE from the registrar's address answered %v, want 200", res)
	}
	p.send(p.fill(ack(id, 1, res)))
	// Someone else still is not trusted.
	q := newPeer(t, netip.MustParseAddr("127.0.0.2"), sipAddr(t, s, "udp"))
	if res := q.request(invite(callID(), 1)); res == nil || res.StatusCode != 403 {
		t.Errorf("INVITE from another address answered %v, want 403", res)
	}
}

// TestRegisterTCP registers over TCP: the Contact says so, and names our
// TCP listener.
func TestRegisterTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pbx := &fakeRegistrar{t: t, seen: make(chan seenRegister, 100)}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		rd := bufio.NewReader(conn)
		for {
			var head strings.Builder
			for {
				line, err := rd.ReadString('\n')
				if err != nil {
					return
				}
				head.WriteString(line)
				if line == "\r\n" {
					break
				}
			}
			m, err := sip.ParseMessage([]byte(head.String()))
			req, ok := m.(*sip.Request)
			if err != nil || !ok {
				continue
			}
			res := pbx.answer(req)
			_, _ = conn.Write([]byte(res.String()))
			pbx.seen <- seenRegister{at: time.Now(), req: req, code: res.StatusCode}
		}
	}()
	s := testServer(t, func(c *Config) {
		c.Listeners = append(c.Listeners, Listener{"tcp", netip.AddrPortFrom(loopback, 0)})
		c.Register = &Register{Registrar: "sip:" + ln.Addr().String(), User: "1042", Transport: "tcp"}
	})
	seen := pbx.next(t)
	want := "sip:1042@" + sipAddr(t, s, "tcp").String() + ";transport=tcp"
	if c := seen.req.Contact(); c == nil || c.Address.String() != want {
		t.Errorf("Contact %v, want %s", c, want)
	}
	if via := seen.req.Via(); via.Transport != "TCP" {
		t.Errorf("Via %s, want TCP", via.Value())
	}
	waitState(t, s, RegistrationRegistered)
}

// TestRegisterFromWildcardListener checks a listener on 0.0.0.0: REGISTER
// still leaves from it, and names the address that routes to the PBX.
func TestRegisterFromWildcardListener(t *testing.T) {
	pbx := newFakeRegistrar(t, "")
	s := testServer(t, func(c *Config) {
		c.Listeners = []Listener{{"udp", netip.MustParseAddrPort("0.0.0.0:0")}}
		c.Register = &Register{Registrar: pbx.uri(), User: "1042"}
	})
	port := sipAddr(t, s, "udp").Port()
	seen := pbx.next(t)
	if seen.from.Port() != port {
		t.Errorf("REGISTER came from port %d, want our SIP port %d", seen.from.Port(), port)
	}
	want := "sip:1042@127.0.0.1:" + strconv.Itoa(int(port))
	if c := seen.req.Contact(); c == nil || c.Address.String() != want {
		t.Errorf("Contact %v, want %s", c, want)
	}
	waitState(t, s, RegistrationRegistered)
}

// TestRegisterBehindNAT checks that with an external address the Contact
// and Via name it, while REGISTER still leaves from the listening socket.
func TestRegisterBehindNAT(t *testing.T) {
	pbx := newFakeRegistrar(t, "")
	s := testServer(t, func(c *Config) {
		c.ExternalAddress = "203.0.113.1"
		c.Register = &Register{Registrar: pbx.uri(), User: "1042"}
	})
	ours := sipAddr(t, s, "udp")
	seen := pbx.next(t)
	if seen.from != ours {
		t.Errorf("REGISTER came from %s, want %s", seen.from, ours)
	}
	want := "sip:1042@203.0.113.1:" + strconv.Itoa(int(ours.Port()))
	if c := seen.req.Contact(); c == nil || c.Address.String() != want {
		t.Errorf("Contact %v, want %s", c, want)
	}
	if via := seen.req.Via(); via.Host != "203.0.113.1" || via.Port != int(ours.Port()) {
		t.Errorf("Via %s", via.Value())
	}
	waitState(t, s, RegistrationRegistered)
}

func TestRegistrationDisabled(t *testing.T) {
	s := testServer(t, nil)
	if state, err := s.Registration(); state != RegistrationDisabled || err != nil {
		t.Errorf("Registration() = %q, %v", state, err)
	}
}

func TestNewRegistrationRefusesBadConfig(t *testing.T) {
	for _, reg := range []Register{
		{Registrar: "pbx", User: "1"},
		{Registrar: "sip:1@pbx", User: "1"},
		{Registrar: "tel:+15551234567", User: "1"},
		{Registrar: "sip:pbx"},
		{Registrar: "sip:pbx", User: "1", Transport: "tls"},
		{Registrar: "sip:pbx", User: "1", Transport: "tcp"}, // only a udp listener
	} {
		_, err := New(Config{
			Listeners: []Listener{{"udp", netip.AddrPortFrom(loopback, 0)}},
			Media:     &rtpio.Engine{}, // never used: New fails first
			Handler:   HandlerFunc(func(*Call) {}),
			Register:  &reg,
		})
		if err == nil {
			t.Errorf("New accepted %+v", reg)
		}
	}
}

func TestGrantedExpiry(t *testing.T) {
	contact := sip.Uri{Scheme: "sip", User: "1042", Host: "192.0.2.1", Port: 5070}
	tests := []struct {
		name    string
		headers []string
		want    time.Duration
	}{
		{"our contact among others", []string{"Contact: <sip:1042@192.0.2.9>;expires=3600", "Contact: <sip:1042@192.0.2.1:5070;transport=udp>;expires=120", "Expires: 300"}, 120 * time.Second},
		{"one contact, rewritten", []string{"Contact: <sip:1042@203.0.113.5:40000>;expires=90"}, 90 * time.Second},
		{"Expires header", []string{"Contact: <sip:1042@192.0.2.9>;expires=3600", "Contact: <sip:x@192.0.2.8>;expires=10", "Expires: 240"}, 240 * time.Second},
		{"nothing: what we asked", nil, 300 * time.Second},
		{"zero", []string{"Contact: <sip:1042@192.0.2.1:5070>;expires=0"}, 0},
		{"garbage expires", []string{"Contact: <sip:1042@192.0.2.1:5070>;expires=soon", "Expires: 60"}, 60 * time.Second},
		{"huge", []string{"Expires: 99999999999999999999"}, maxExpires},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1\r\nFrom: <sip:1042@pbx>;tag=a\r\nTo: <sip:1042@pbx>;tag=b\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n"
			for _, h := range tt.headers {
				raw += h + "\r\n"
			}
			m, err := sip.ParseMessage([]byte(raw + "Content-Length: 0\r\n\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := grantedExpiry(m.(*sip.Response), contact, 300*time.Second); got != tt.want {
				t.Errorf("grantedExpiry = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	r := &registration{backoffMin: backoffMin, backoffMax: backoffMax}
	for n := range 40 {
		d := backoffMax
		if n < 9 {
			d = min(backoffMin<<n, backoffMax)
		}
		for range 20 {
			if got := r.backoff(n); got > d || got < d*8/10 {
				t.Fatalf("backoff(%d) = %v, want within (%v, %v]", n, got, d*8/10, d)
			}
		}
	}
}

// FuzzGrantedExpiry feeds arbitrary answers to REGISTER: reading the
// granted lifetime must not panic and stays within a day.
func FuzzGrantedExpiry(f *testing.F) {
	f.Add([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nContact: <sip:1042@192.0.2.1:5070>;expires=120, <sip:a@b>;expires=5\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("SIP/2.0 423 Interval Too Brief\r\nMin-Expires: 3600\r\nRetry-After: 120 (busy);duration=60\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("SIP/2.0 200 OK\r\nContact: *\r\nExpires: -5\r\n\r\n"))
	contact := sip.Uri{Scheme: "sip", User: "1042", Host: "192.0.2.1", Port: 5070}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := sip.ParseMessage(data)
		res, ok := m.(*sip.Response)
		if err != nil || !ok {
			return
		}
		if d := grantedExpiry(res, contact, 300*time.Second); d < 0 || d > maxExpires {
			t.Fatalf("grantedExpiry = %v", d)
		}
		for _, h := range []string{"Min-Expires", "Retry-After"} {
			if d, ok := headerSeconds(res, h); ok && (d < 0 || d > maxExpires) {
				t.Fatalf("%s = %v", h, d)
			}
		}
	})
}
