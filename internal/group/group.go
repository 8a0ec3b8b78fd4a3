// Package group is the bridge's vocabulary of groups: what a caller can be
// in a room (Role). It is the lowest project package: it imports only the
// standard library, so the pure packages (ivr, conference/rules) and the
// engines above them all speak of the same values without converting.
//
// It must not know how a group is configured on disk, how calls arrive, or
// how a session is run: those live in config, sipua and conference.
package group

import "strconv"

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
