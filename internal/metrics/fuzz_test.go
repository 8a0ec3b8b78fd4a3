package metrics

import (
	"slices"
	"strings"
	"testing"
)

// FuzzLabelValues feeds arbitrary text (as might come from a SIP header or
// a bug upstream) to every recorder that takes a string and checks that
// every groupbridge_ label value is still one of the allow lists' own.
func FuzzLabelValues(f *testing.F) {
	for _, s := range []string{
		"joined", "rejected-sdp", "rejected-", "917355", "+15551234567",
		"sip:+15551234567@pbx", "wrong-pin\n4821", "\"}", "registered", "late", "",
	} {
		f.Add(s)
	}
	m := New() // shared: counts grow, label values must not
	allowed := slices.Concat(Outcomes(), RejectReasons(), DropReasons(), RequestDropReasons(), RegistrationStates(),
		[]string{ScopeGroup, ScopeShared, ScopeBridge, "room", "waiting", "in", "out"})
	f.Fuzz(func(t *testing.T, s string) {
		m.CallOutcome(s)
		m.CallRejected(s)
		m.RequestDropped(s)
		m.SetRegistration(s)
		m.RegisterRTP(func() RTPStats { return RTPStats{Dropped: map[string]uint64{s: 1}} })
		families, err := m.Registry().Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		for _, fam := range families {
			if !strings.HasPrefix(fam.GetName(), namespace+"_") {
				continue
			}
			for _, metric := range fam.GetMetric() {
				for _, l := range metric.GetLabel() {
					if !slices.Contains(allowed, l.GetValue()) {
						t.Fatalf("%s{%s=%q} after input %q", fam.GetName(), l.GetName(), l.GetValue(), s)
					}
				}
			}
		}
	})
}
