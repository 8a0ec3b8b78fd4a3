package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
	"github.com/icholy/digest"
)

// Registering to a PBX, against a real registrar: Kamailio (the same Debian
// package as kamailio_test.go) with digest authentication and an in-memory
// location table, from testdata/kamailio/registrar.cfg.tmpl. The bridge
// registers as the extension "groupbridge"; a call to that extension
// through Kamailio must reach the IVR.

// registrarPassword is the one password the test registrar accepts.
const registrarPassword = "kamailio-test-pw-7"

// startKamailioRegistrar runs Kamailio as a registrar on a free loopback UDP
// port, waits until it answers OPTIONS and stops it (by PID) when the test
// ends. Only front and log of the result are set.
func startKamailioRegistrar(t *testing.T) *kamailioProxy {
	t.Helper()
	bin := kamailioPath(t)
	tmpl, err := template.ParseFiles(filepath.Join("..", "..", "testdata", "kamailio", "registrar.cfg.tmpl"))
	if err != nil {
		t.Fatalf("kamailio template: %v", err)
	}
	return retryKamailio(t, func() (*kamailioProxy, error) {
		k := &kamailioProxy{front: freeUDPPort(t), log: &syncBuffer{}}
		return k, runKamailio(t, bin, k, tmpl, struct {
			Port     int
			Password string
		}{k.front, registrarPassword})
	})
}

// registerYAML is the sip: part of a bridge that registers to the registrar
// at addr with password. Nobody is trusted by address, so only the
// registrar's own address (trusted because it is the registrar) may call.
func registerYAML(addr, password string) string {
	// 60 s is the shortest sip.register.expires the configuration allows;
	// the registrar grants 30 at most.
	return fmt.Sprintf(`  trusted: []
  register:
    registrar: "sip:%s"
    user: groupbridge
    password: %q
    expires: 60s
`, addr, password)
}

var registrarAuthRE = regexp.MustCompile(`gbtest register user=groupbridge auth=(\S+)`)

// registrarAuths lists the auth= results of the REGISTERs Kamailio logged,
// in order: "ok" or pv_auth_check's negative code.
func registrarAuths(k *kamailioProxy) []string {
	var out []string
	for _, m := range registrarAuthRE.FindAllStringSubmatch(k.log.String(), -1) {
		out = append(out, m[1])
	}
	return out
}

// The bridge registers to Kamailio with digest auth, and a call to its
// extension through Kamailio reaches the IVR and the room; a bridge with a
// wrong password never registers.
func TestKamailioRegistrar(t *testing.T) {
	k := startKamailioRegistrar(t)

	a, logs := startApp(t, testYAML(registerYAML(k.frontAddr(), registrarPassword), ""))
	// Kamailio clamps the 60 s asked for to its max_expires.
	logs.waitCount(t, 10*time.Second, 1, "registered", "registrar", "127.0.0.1", "expires", "30s")
	auths := registrarAuths(k)
	if len(auths) < 2 || auths[0] == "ok" || auths[len(auths)-1] != "ok" {
		t.Fatalf("REGISTER outcomes at the registrar %v, want a challenge first and then ok; kamailio log:\n%s", auths, k.log.String())
	}
	bridge := sipAddr(t, a, "udp")

	// The softphone knows only Kamailio; the extension's registered
	// contact is the bridge's listener.
	p := dial(t, a, softphone.Config{Server: k.frontAddr(), Dialed: "groupbridge", Caller: "+15550007001"})
	logs.waitCount(t, 5*time.Second, 1, "call answered")
	if !strings.Contains(k.log.String(), "gbtest invite user=groupbridge ruri=sip:groupbridge@"+bridge) {
		t.Errorf("Kamailio did not route the INVITE to the registered contact at %s; kamailio log:\n%s", bridge, k.log.String())
	}
	enter(t, logs, p, "1234", softphone.DigitRFC4733, 1)
	if n := logs.count(t, "call joined", "role", "member", "group", "Circle"); n != 1 {
		t.Errorf("%d member joins through the registrar, want 1; log:\n%s", n, logs.String())
	}

	t.Run("wrong password", func(t *testing.T) {
		_, bad := startApp(t, testYAML(registerYAML(k.frontAddr(), "not-"+registrarPassword), ""))
		bad.waitCount(t, 10*time.Second, 1, "registration failed")
		var refused bool
		for _, r := range bad.records(t) {
			if r["msg"] == "registration failed" && strings.Contains(fmt.Sprint(r["error"]), "refused the credentials") {
				refused = true
			}
		}
		if !refused {
			t.Errorf("no registration failure saying the credentials were refused; log:\n%s", bad.String())
		}
		if n := bad.count(t, "registered"); n != 0 {
			t.Errorf("registered %d times with a wrong password; log:\n%s", n, bad.String())
		}
		// -2 is pv_auth_check's "wrong password".
		if !strings.Contains(k.log.String(), "gbtest register user=groupbridge auth=-2 ") {
			t.Errorf("Kamailio did not see a wrong password; kamailio log:\n%s", k.log.String())
		}
	})
}

// A caller from outside sip.trusted gets 403 when no sip.users exist, a
// digest challenge when they do, and 403 for wrong credentials.
func TestUntrustedSourceNeedsCredentials(t *testing.T) {
	t.Parallel()
	// 127.0.0.1 is outside 10.0.0.0/8: the test's calls are untrusted.
	const trusted = "  trusted: [\"10.0.0.0/8\"]\n"

	t.Run("no users", func(t *testing.T) {
		t.Parallel()
		a, logs := startApp(t, testYAML(trusted, ""))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p, err := softphone.Dial(ctx, softphone.Config{Server: sipAddr(t, a, "udp"), Caller: "+15550007002"})
		if err == nil {
			_ = p.Hangup(ctx)
			t.Fatalf("an untrusted caller without credentials was answered; log:\n%s", logs.String())
		}
		var se *softphone.StatusError
		if !errors.As(err, &se) || se.StatusCode != 403 {
			t.Fatalf("untrusted call: %v, want 403", err)
		}
		if n := logs.count(t, "call answered"); n != 0 {
			t.Errorf("%d calls answered; log:\n%s", n, logs.String())
		}
	})

	t.Run("users", func(t *testing.T) {
		t.Parallel()
		a, logs := startApp(t, testYAML(trusted+"  users: [{name: alice, password: \"correct horse\"}]\n", ""))
		dst := sipAddr(t, a, "udp")
		invite := inviteText("+15550007003", sdpFor(40000, "sendrecv"))
		codes, res := rawSIPText(t, dst, invite, 3)
		if len(codes) == 0 || codes[len(codes)-1] != 401 {
			t.Fatalf("INVITE without credentials: %v, want 401; last answer:\n%s", codes, res)
		}
		chal, err := digest.ParseChallenge(headerValue(res, "WWW-Authenticate"))
		if err != nil {
			t.Fatalf("401 challenge: %v; answer:\n%s", err, res)
		}
		cred, err := digest.Digest(chal, digest.Options{
			Method: "INVITE", URI: "sip:groupbridge@" + dst,
			Username: "alice", Password: "wrong horse",
		})
		if err != nil {
			t.Fatalf("answer the challenge: %v", err)
		}
		withAuth := strings.Replace(invite, "Max-Forwards:", "Authorization: "+cred.String()+"\r\nMax-Forwards:", 1)
		codes, res = rawSIPText(t, dst, withAuth, 3)
		if len(codes) == 0 || codes[len(codes)-1] != 403 {
			t.Fatalf("INVITE with a wrong password: %v, want 403; last answer:\n%s", codes, res)
		}
		logs.waitCount(t, 2*time.Second, 1, "SIP authentication failed")
		_, scrape := get(t, a.Metrics().Handler(), "GET", "/metrics", "")
		if v := metricValue(t, scrape, "groupbridge_sip_auth_failures_total"); v != 1 {
			t.Errorf("sip_auth_failures_total = %v, want 1", v)
		}
		if n := logs.count(t, "call answered"); n != 0 {
			t.Errorf("%d calls answered; log:\n%s", n, logs.String())
		}
	})
}

// headerValue returns the value of the first header name in a raw SIP
// message, or "".
func headerValue(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestHeaderValue(t *testing.T) {
	msg := "SIP/2.0 401 Unauthorized\r\nVia: x\r\nwww-authenticate: Digest realm=\"r\"\r\nContent-Length: 0\r\n\r\n"
	for _, tc := range []struct{ name, want string }{
		{"WWW-Authenticate", `Digest realm="r"`},
		{"Content-Length", "0"},
		{"Contact", ""},
	} {
		if got := headerValue(msg, tc.name); got != tc.want {
			t.Errorf("headerValue(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
