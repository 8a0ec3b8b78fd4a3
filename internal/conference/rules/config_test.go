package rules

import (
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

func TestConfigFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		g    group.Group
		want Config
	}{
		{"peer-led with a cap", group.Group{Name: "a", MemberPIN: "1234", LedBy: group.LedByPeer, MaxMembers: 30, ShareMinutes: 3, EndGrace: 2 * time.Minute},
			Config{LedBy: group.LedByPeer, MaxMembers: 30, ShareLimit: 3 * time.Minute, EndGrace: 2 * time.Minute}},
		{"facilitator-led, no grace, share timer default", group.Group{LedBy: group.LedByFacilitator},
			Config{LedBy: group.LedByFacilitator}},
		{"share minutes become a duration", group.Group{ShareMinutes: 7},
			Config{ShareLimit: 7 * time.Minute}},
		{"a facilitator PIN is known to exist, never copied", group.Group{MemberPIN: "1234", FacilitatorPIN: "654321"},
			Config{HasFacilitatorPIN: true}},
	} {
		if got := ConfigFor(tc.g); got != tc.want {
			t.Errorf("%s: ConfigFor = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
