package rules

import (
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
)

// TestPresence: what the last facilitator leaving starts, and what the
// next one arriving ends, for each kind of session.
func TestPresence(t *testing.T) {
	tests := []struct {
		name        string
		ledBy       string
		lobby       bool
		endGrace    time.Duration
		wantEndNow  bool
		wantAnnounc bool
		wantGrace   time.Duration // 0 = none
		wantOpen    time.Duration // 0 = none
		wantLobby   bool          // arrived() reports the lobby over
		wantGraceUp bool          // arrived() reports the grace over
	}{
		{name: "peer", ledBy: group.LedByPeer, wantOpen: mn},
		{name: "facilitator-led", ledBy: group.LedByFacilitator, endGrace: 5 * mn,
			wantAnnounc: true, wantGrace: 5 * mn, wantGraceUp: true},
		{name: "facilitator-led without grace", ledBy: group.LedByFacilitator, wantEndNow: true},
		{name: "lobby", ledBy: group.LedByFacilitator, lobby: true, endGrace: 5 * mn, wantLobby: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a alarm
			p := presence{facLed: tt.ledBy == group.LedByFacilitator, lobby: tt.lobby,
				endGrace: tt.endGrace, openAfter: mn, alarm: &a}
			endNow, announce := p.lastLeft(t0)
			if endNow != tt.wantEndNow || announce != tt.wantAnnounc {
				t.Fatalf("lastLeft = %v, %v; want %v, %v", endNow, announce, tt.wantEndNow, tt.wantAnnounc)
			}
			want := tt.wantGrace + tt.wantOpen
			at, ok := p.deadline()
			if ok != (want > 0) || (ok && !at.Equal(t0.Add(want))) {
				t.Fatalf("deadline %v %v, want %v", at.Sub(t0), ok, want)
			}
			if ok && (!a.has || !a.next.Equal(at)) {
				t.Errorf("alarm %v %v, want %v", a.next.Sub(t0), a.has, want)
			}
			if ok {
				before := t0.Add(want - 1)
				if p.graceOver(before) || p.openTalkDue(before) {
					t.Error("due early")
				}
				if p.graceOver(t0.Add(want)) != (tt.wantGrace > 0) {
					t.Errorf("graceOver at %v: %v", want, !(tt.wantGrace > 0))
				}
			}
			a.dirty = false
			lobbyOver, graceOver := p.arrived()
			if lobbyOver != tt.wantLobby || graceOver != tt.wantGraceUp {
				t.Errorf("arrived = %v, %v; want %v, %v", lobbyOver, graceOver, tt.wantLobby, tt.wantGraceUp)
			}
			if _, ok := p.deadline(); ok || p.lobby {
				t.Errorf("after arrival: deadline pending %v, lobby %v", ok, p.lobby)
			}
			if (lobbyOver || graceOver || want > 0) && !a.dirty {
				t.Error("a dropped timer left the alarm clean")
			}
		})
	}
}

// TestPresenceOpenTalkDueOnce: the return to open talk fires once.
func TestPresenceOpenTalkDueOnce(t *testing.T) {
	var a alarm
	p := presence{openAfter: mn, alarm: &a}
	p.lastLeft(t0)
	if !p.openTalkDue(t0.Add(2*mn)) || p.openTalkDue(t0.Add(2*mn)) {
		t.Fatal("open talk not due exactly once")
	}
}
