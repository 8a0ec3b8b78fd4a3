package app

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Callers behind a PBX that puts one number in From and the real caller
// in P-Asserted-Identity, driven by sipp (PIN by SIP INFO). Two calls with
// the same From and different PAI are two identities (two tags, each
// number a known caller of the group) when the source may assert one;
// from a source sip.assert_identity does not list the PAI is ignored and
// both calls are the From's one caller; from a sip.no_identity source
// each call is its own anonymous caller.
func TestSippIdentityFromPAI(t *testing.T) {
	sippPath(t)
	const (
		from = "+15550000000"
		paiA = "+15551110001"
		paiB = "+15552220002"
	)
	// B's number comes as a tel URI with visual separators: it must be
	// the same caller as +15552220002.
	pais := []string{"<sip:" + paiA + "@pbx.example.org;user=phone>", "<tel:+1-555-222-0002>"}
	tests := []struct {
		name         string
		sip          string
		wantIdentity string   // "identity" of "call answered"
		wantKnown    []string // numbers known to the group afterwards
		wantUnknown  []string
		sameCaller   bool
	}{
		{"asserting source (default: every trusted one)", "", "p-asserted-identity",
			[]string{paiA, paiB}, []string{from}, false},
		{"source not in sip.assert_identity", `  assert_identity: ["127.0.0.2"]`, "from",
			[]string{from}, []string{paiA, paiB}, true},
		{"sip.no_identity source without a believed PAI", "  assert_identity: []\n  no_identity: [\"127.0.0.0/8\"]", "no-identity",
			nil, []string{from, paiA, paiB}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, logs := startApp(t, testYAML(tc.sip, ""))
			for _, pai := range pais {
				runSipp(t, "identity.xml", sipAddr(t, a, "udp"), "-m", "1", "-key", "pai", pai, "-key", "privacy", "none")
			}
			logs.waitCount(t, 5*time.Second, 2, "call ended")
			if n := logs.count(t, "call joined", "group", "Circle"); n != 2 {
				t.Fatalf("%d joins, want 2; log:\n%s", n, logs.String())
			}
			var callers []string
			for _, r := range logs.records(t) {
				if r["msg"] == "call answered" {
					if r["identity"] != tc.wantIdentity {
						t.Errorf("call answered with identity %v, want %s", r["identity"], tc.wantIdentity)
					}
					callers = append(callers, fmt.Sprint(r["caller"]))
				}
			}
			if len(callers) != 2 || (callers[0] == callers[1]) != tc.sameCaller {
				t.Errorf("the calls were logged as %q; want the same caller: %v", callers, tc.sameCaller)
			}
			known := func(n string) bool {
				return a.budget.Known(time.Now(), a.flow.KnownKey(a.flow.IdentityOf(n), "Circle"))
			}
			for _, n := range tc.wantKnown {
				if !known(n) {
					t.Errorf("%s is not a known caller after joining", n)
				}
			}
			for _, n := range tc.wantUnknown {
				if known(n) {
					t.Errorf("%s is a known caller", n)
				}
			}
		})
	}
}

// Privacy: id keeps the asserted caller as the identity key (known to the
// group) but nothing shown names them, under either log.callers.
func TestSippPrivacyID(t *testing.T) {
	sippPath(t)
	const pai = "+15551110001"
	for _, mode := range []string{"tag", "masked"} {
		t.Run(mode, func(t *testing.T) {
			a, logs := startApp(t, strings.Replace(testYAML("", ""), "log:\n", "log:\n  callers: "+mode+"\n", 1))
			runSipp(t, "identity.xml", sipAddr(t, a, "udp"), "-m", "1", "-key", "pai", "<sip:"+pai+"@pbx>", "-key", "privacy", "id")
			logs.waitCount(t, 5*time.Second, 1, "call ended", "caller", "anonymous")
			if n := logs.count(t, "call joined", "caller", "anonymous"); n != 1 {
				t.Fatalf("%d anonymous joins, want 1; log:\n%s", n, logs.String())
			}
			if !a.budget.Known(time.Now(), a.flow.KnownKey(a.flow.IdentityOf(pai), "Circle")) {
				t.Error("a caller with Privacy: id is not known to the group: the identity key was lost")
			}
		})
	}
}
