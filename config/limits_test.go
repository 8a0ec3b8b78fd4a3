package config

import (
	"testing"
	"time"
)

// The limits: section and sip.drop_scanners reach the configuration as
// written, and keys left out keep their defaults.
func TestLimitsParsed(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    Limits
		scanner bool
	}{
		{"defaults", okGroups, Limits{PINFailureAlarm: 60, SourceRate: 10, SourceBurst: 20, MaxCalls: 1000, MaxCall: 4 * time.Hour,
			SetupPerSource: 10, SetupPerUser: 10, PINBudget: 6, PINBudgetBridge: 30, PINQueue: 40, KnownCallers: 30,
			TCPPerSource: 20, TCPIdle: 30 * time.Second, TLSHandshake: 10 * time.Second}, true},
		{"all set", "sip: {drop_scanners: false}\nlimits: {pin_failure_alarm: 30, source_rate: 0, source_burst: 5, max_calls: 50, max_call: 0s, setup_per_source: 0, setup_per_user: 3, " +
			"pin_budget: 3, pin_budget_bridge: 12, pin_queue: 10, known_callers: 0, tcp_per_source: 0, tcp_idle: 5s, tls_handshake: 2s}\n" + okGroups,
			Limits{PINFailureAlarm: 30, SourceRate: 0, SourceBurst: 5, MaxCalls: 50, MaxCall: 0, SetupPerSource: 0, SetupPerUser: 3,
				PINBudget: 3, PINBudgetBridge: 12, PINQueue: 10, TCPPerSource: 0, TCPIdle: 5 * time.Second, TLSHandshake: 2 * time.Second}, false},
		{"some set", "limits:\n  max_call: 90m\n" + okGroups, Limits{PINFailureAlarm: 60, SourceRate: 10, SourceBurst: 20, MaxCalls: 1000, MaxCall: 90 * time.Minute,
			SetupPerSource: 10, SetupPerUser: 10, PINBudget: 6, PINBudgetBridge: 30, PINQueue: 40, KnownCallers: 30,
			TCPPerSource: 20, TCPIdle: 30 * time.Second, TLSHandshake: 10 * time.Second}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if c.Limits != tc.want {
				t.Errorf("limits = %+v, want %+v", c.Limits, tc.want)
			}
			if c.SIP.DropScanners != tc.scanner {
				t.Errorf("sip.drop_scanners = %v, want %v", c.SIP.DropScanners, tc.scanner)
			}
		})
	}
}
