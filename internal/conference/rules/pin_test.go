package rules

import (
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/group"
	pr "github.com/groupbridge/groupbridge/media/prompt"
)

var (
	peerPIN   = Config{LedBy: group.LedByPeer, HasFacilitatorPIN: true}
	facLedPIN = Config{LedBy: group.LedByFacilitator, EndGrace: 2 * mn, HasFacilitatorPIN: true}
)

// pinEntry is a member's *# and PIN up to the CheckPIN, at second at.
func pinEntry(at, seat int, digits string) []ev {
	return []ev{
		keys(time.Duration(at)*sec, seat, "*#", sayI(seat, pr.EnterFacilitatorPIN)),
		keys(time.Duration(at)*sec, seat, digits+"#", checkPIN(seat, digits)),
	}
}

func TestMemberTakesChairByPIN(t *testing.T) {
	wrong := func(at, seat int) []ev {
		return append(pinEntry(at, seat, "111111"), pinAns(time.Duration(at)*sec, seat, PINWrong, sayI(seat, pr.PINWrong)))
	}
	runAll(t, []scenario{
		{"the right PIN makes a facilitator", peerPIN, script(
			seats("FMM"),
			pinEntry(10, 2, "654321"),
			pinAns(10*sec, 2, PINRight, sayQ(2, pr.YouAreFacilitator), facs(2, pr.Caller, "2", pr.IsFacilitator)),
			view(2, role(group.Facilitator)),
			keys(11*sec, 2, "*5", room(0, pr.EveryoneMuted)),
			heard(map[int]bool{2: true, 3: false}),
			// A facilitator's *# still asks to end the session.
			keys(12*sec, 2, "*#", sayI(2, pr.EndConfirm)),
			keys(12*sec, 2, "2", sayI(2, pr.Cancelled)),
		)},
		{"three wrong, then *# is for the facilitator", peerPIN, script(
			seats("FM"),
			wrong(10, 2), wrong(11, 2), wrong(12, 2),
			keys(13*sec, 2, "*#", sayI(2, pr.FacilitatorOnly)),
			keys(14*sec, 2, "654321#"), // not an entry: nothing
			view(2, role(group.Member)),
		)},
		{"blocked for guessing: one wrong ends the tries", peerPIN, script(
			seats("FM"),
			pinEntry(10, 2, "111111"),
			pinAns(10*sec, 2, PINBlocked, sayI(2, pr.PINWrong)),
			keys(11*sec, 2, "*#", sayI(2, pr.FacilitatorOnly)),
			view(2, role(group.Member)),
		)},
		{"cancelled entries are no tries", peerPIN, script(
			seats("FM"),
			keys(10*sec, 2, "*#12*", sayI(2, pr.EnterFacilitatorPIN), sayI(2, pr.Cancelled)),
			keys(11*sec, 2, "6"), // the star cancelled; it started nothing
			keys(12*sec, 2, "*##", sayI(2, pr.EnterFacilitatorPIN), sayI(2, pr.Cancelled)),
			keys(13*sec, 2, "*#1A", sayI(2, pr.EnterFacilitatorPIN), sayI(2, pr.Cancelled)),
			// The timeout runs from the last digit.
			keys(20*sec, 2, "*#12", sayI(2, pr.EnterFacilitatorPIN)),
			keys(25*sec, 2, "3"),
			tick(35*sec-1),
			tick(35*sec, sayQ(2, pr.Cancelled)),
			keys(36*sec, 2, "#"),
			wrong(40, 2), wrong(41, 2),
			pinEntry(42, 2, "654321"),
			pinAns(42*sec, 2, PINRight, sayQ(2, pr.YouAreFacilitator), facs(2, pr.Caller, "2", pr.IsFacilitator)),
		)},
		{"an overlong entry keeps one digit too many", peerPIN, script(
			seats("FM"),
			keys(10*sec, 2, "*#", sayI(2, pr.EnterFacilitatorPIN)),
			keys(10*sec, 2, "123456789012345#", checkPIN(2, "12345678901")),
		)},
		{"from the lobby the session starts", facLedPIN, script(
			seats("MM"),
			pinEntry(10, 1, "654321"),
			pinAns(10*sec, 1, PINRight, music(1, false), sayQ(1, pr.YouAreFacilitator),
				music(2, false), sayQ(2, pr.FacilitatorJoined)),
			view(1, placed(InRoom)), view(2, placed(InRoom)),
			heard(map[int]bool{1: true, 2: true}),
		)},
		{"in waiting *# is for the facilitator", peerPIN, script(
			seats("FM"),
			pre(keys(10*sec, 1, "*12#3")),
			keys(11*sec, 2, "*#", sayI(2, pr.FacilitatorOnly)),
		)},
		{"without a facilitator PIN *# is for the facilitator", peer, script(
			seats("FM"),
			keys(10*sec, 2, "*#", sayI(2, pr.FacilitatorOnly)),
		)},
		{"answers nobody asked for do nothing", peerPIN, script(
			seats("FM"),
			pinAns(10*sec, 2, PINRight),
			pinAns(10*sec, 9, PINRight),
			pinEntry(11, 2, "111111"),
			pinAns(11*sec, 2, PINWrong, sayI(2, pr.PINWrong)),
			pinAns(11*sec, 2, PINRight), // one answer per check
			view(2, role(group.Member)),
		)},
		{"made facilitator or moved to waiting before the answer", peerPIN, script(
			seats("FMM"),
			pinEntry(10, 2, "654321"),
			pre(keys(10*sec, 1, "*12#5")),
			pinAns(10*sec, 2, PINRight),
			pinEntry(11, 3, "654321"),
			pre(keys(11*sec, 1, "*13#3")),
			pinAns(11*sec, 3, PINRight, sayI(3, pr.Cancelled)),
			view(3, role(group.Member)),
		)},
		{"a removed caller's entry is gone", peerPIN, script(
			seats("FM"),
			keys(10*sec, 2, "*#1234", sayI(2, pr.EnterFacilitatorPIN)),
			pre(keys(11*sec, 1, "*3"), keys(11*sec, 1, "1")),
		)},
	})
}
