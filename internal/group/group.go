// Package group is the bridge's vocabulary of groups: a group as configured
// (Group), which group a dialled number names (ByNumber), and what a caller
// can be in a room (Role). It is the lowest project package: it imports only
// the standard library, so config, the pure packages (ivr, conference/rules)
// and the engines above them all speak of the same values without
// converting.
//
// It must not know how a file is read or checked (config), how calls arrive
// (sipua), or how a session is run (conference): it holds values, not
// behaviour.
package group

import (
	"strconv"
	"time"
)

// Role is what a caller may do in a room. A facilitator PIN joins as
// Facilitator, a member PIN as Member; seat action 5 makes a member a
// facilitator for the rest of the call.
type Role int

// Roles. Member is the zero value: a caller is a member unless a
// facilitator PIN or a facilitator says otherwise.
const (
	Member Role = iota
	Facilitator
)

// String names the role for logs and the admin API: "member" or
// "facilitator".
func (r Role) String() string {
	switch r {
	case Member:
		return "member"
	case Facilitator:
		return "facilitator"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// Who leads a group's sessions (Group.LedBy).
const (
	// LedByFacilitator: members wait in the lobby until the first
	// facilitator joins, and the session ends EndGrace after the last
	// facilitator leaves.
	LedByFacilitator = "facilitator"
	// LedByPeer: the room starts at once and goes on without a
	// facilitator.
	LedByPeer = "peer"
)

// Group is one support group callers can join, as the configuration
// decoded and validated it. It is the one shape of a group after decoding:
// config.Group is this type with its YAML decoding added, the PIN dialogue
// (ivr) and the rooms (conference) take it as it is, and the session rules
// derive their settings from it (rules.ConfigFor).
//
// The struct tags are the configuration file's keys and reload rules, read
// by config's decoder; they are kept on this one field list so that a key
// added to a group is added once.
type Group struct {
	// Name is shown to operators (never to callers); unique, case-insensitively.
	Name string `yaml:"name" reload:"live"`
	// Number, when set, is a dialled number (the Request-URI user) that lands
	// in this group; only this group's PINs are then accepted.
	Number string `yaml:"number" reload:"live"`
	// MemberPIN admits a caller as a member. Secret.
	MemberPIN string `yaml:"member_pin" secret:"PIN" reload:"live"`
	// FacilitatorPIN admits a caller as a facilitator. Secret.
	FacilitatorPIN string `yaml:"facilitator_pin" secret:"PIN" reload:"live"`
	// LedBy is LedByFacilitator or LedByPeer.
	LedBy string `yaml:"led_by" reload:"live"`
	// MaxMembers caps members in the room or waiting; facilitators always get in.
	MaxMembers int `yaml:"max_members" reload:"live"`
	// ShareMinutes is the share timer's limit for one floor grant.
	ShareMinutes int `yaml:"share_minutes" reload:"live"`
	// EndGrace is how long a facilitator-led room waits for a facilitator
	// to come back before the session ends.
	EndGrace time.Duration `yaml:"end_grace" reload:"live"`
	// Timezone is the IANA zone Meets is in; required when Meets is set.
	Timezone string `yaml:"timezone" reload:"live"`
	// Meets are the weekly meeting hours ("Tue 19:00-20:30"; an end before
	// the start runs past midnight). Empty: always open. Outside them a
	// member is told when the group meets next and let go, unless a
	// facilitator is in the room (package schedule reads them).
	Meets []string `yaml:"meets" reload:"live"`
	// OpenEarly is how long before a meeting's start callers may join.
	OpenEarly time.Duration `yaml:"open_early" reload:"live"`
	// Overrun is how long after a meeting's scheduled end its session ends
	// for everyone; 0 ends it at the scheduled end.
	Overrun time.Duration `yaml:"overrun" reload:"live"`
	// Greeting is a WAV file in prompts.dir/readings/ played to each caller
	// after the PIN, before joining; "" for none.
	Greeting string `yaml:"greeting" reload:"live"`
	// Readings are WAV files in prompts.dir/readings/ a facilitator plays
	// to the room with **K.
	Readings []Reading `yaml:"readings" reload:"live"`
	// OpeningReading is the key of the reading played when a session
	// starts (or, for a group that meets, at the scheduled start); 0 for
	// none.
	OpeningReading int `yaml:"opening_reading" reload:"live"`
	// Language is what callers of the group's own number hear from the
	// start, and callers who typed its PIN without choosing a language;
	// "" in the file means prompts.language (the app fills it in).
	Language string `yaml:"language" reload:"live"`
}

// Reading is one of a group's recordings, played to the room with **Key.
type Reading struct {
	// Key is 1-9, unique within the group.
	Key int `yaml:"key" reload:"live"`
	// File is the WAV's name in prompts.dir/readings/.
	File string `yaml:"file" reload:"live"`
}

// ByNumber returns the index in groups of the group whose Number is
// dialled, or -1 when no group claims it: the shared access number, which
// reaches every group, or no number at all. Numbers are unique (config
// validates it), so at most one group matches.
func ByNumber(groups []Group, dialled string) int {
	if dialled == "" {
		return -1
	}
	for i := range groups {
		if groups[i].Number == dialled {
			return i
		}
	}
	return -1
}
