package app

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/config"
)

// The per-caller PIN limits key a call on its number, and for an
// authenticated call on its user and source too: an IPv6 source by its
// /64. Keys are keyed hashes, never the values.
func TestCallerIdentities(t *testing.T) {
	a := &App{}
	copy(a.idKey[:], "a per-start key of thirty-two b.")
	addr := netip.MustParseAddr
	tests := []struct {
		name          string
		user          string
		ip, same, oth netip.Addr
		wantUser      bool
		wantSource    bool
	}{
		{"trusted PBX: the number only", "", addr("127.0.0.1"), netip.Addr{}, netip.Addr{}, false, false},
		{"untrusted IPv4", "alice", addr("192.0.2.7"), addr("192.0.2.7"), addr("192.0.2.8"), true, true},
		{"untrusted IPv6 by /64", "alice", addr("2001:db8:1:2::7"), addr("2001:db8:1:2:ffff::1"), addr("2001:db8:1:3::7"), true, true},
		{"no address", "alice", netip.Addr{}, netip.Addr{}, netip.Addr{}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := a.callerOf("n", tc.user, tc.ip)
			if g.Number != "n" || (g.User != "") != tc.wantUser || (g.Source != "") != tc.wantSource {
				t.Fatalf("callerOf = %+v", g)
			}
			if tc.wantUser && (g.User == tc.user || strings.Contains(g.User, tc.user)) {
				t.Fatalf("user not hashed: %q", g.User)
			}
			if !tc.wantSource {
				return
			}
			if strings.Contains(g.Source, tc.ip.String()) {
				t.Fatalf("source not hashed: %q", g.Source)
			}
			if s := a.callerOf("n", tc.user, tc.same).Source; s != g.Source {
				t.Errorf("%v and %v are different sources", tc.ip, tc.same)
			}
			if s := a.callerOf("n", tc.user, tc.oth).Source; s == g.Source {
				t.Errorf("%v and %v are the same source", tc.ip, tc.oth)
			}
		})
	}
	if a.callerOf("n", "alice", addr("192.0.2.7")).User == a.callerOf("n", "bob", addr("192.0.2.7")).User {
		t.Error("two users share a key")
	}
	if a.knownKey("", "G") != "" || a.knownKey("n", "G") == a.knownKey("n", "H") {
		t.Error("known-caller keys: withheld numbers must not be known; groups must differ")
	}
}

// A reload applies the PIN budget at once, like the other limits: an
// operator under attack tightens it without a restart.
func TestReloadAppliesPINBudget(t *testing.T) {
	t.Parallel()
	yaml := testYAML("", "")
	a, _ := startApp(t, yaml)
	now := time.Now()
	a.budget.Fail("", now)
	a.budget.Fail("", now)
	if a.budget.UnderAttack("", now) {
		t.Fatal("under attack after 2 failures with pin_budget 6")
	}
	cfg, err := config.Parse([]byte(yaml + "\nlimits: {pin_budget: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if !a.budget.UnderAttack("", now) {
		t.Fatal("not under attack after 2 failures once pin_budget 1 was reloaded")
	}
}
