package metrics

import "slices"

// Label values are never taken from the app as given: each recorder looks its
// argument up in a fixed allow list below and uses the list's own string, or
// "other" when it is not there. That keeps the number of series bounded, and
// it means no label can ever carry a PIN, a caller number or any other text
// that reached the app from outside, whatever a caller of this package passes
// by mistake. Every value is lower-case letters and hyphens (a test checks).

// Other is the label value that every value outside an allow list becomes.
const Other = "other"

// rejectedPrefix marks call outcomes that are rejections: CallOutcome
// ("rejected-sdp") is the same as CallRejected("sdp").
const rejectedPrefix = "rejected-"

// outcomes are the ways a call leaves the IVR or is turned away at the
// door, besides the rejections (which become "rejected-<reason>").
var outcomes = []string{
	"joined",              // entered a room
	"wrong-pin",           // used up its PIN tries
	"no-input",            // pressed nothing through the welcome prompts
	"hung-up-in-ivr",      // the caller hung up before joining
	"group-full",          // the group had max_members
	"locked",              // the group was locked by its facilitator
	"removed",             // the caller had been removed from this session
	"join-failed",         // the room refused for another reason
	"closed",              // outside the group's meeting hours, no facilitator in the room
	"cluster-unavailable", // a cluster node could not learn or reach the room's owner
	"pin-blocked",         // the caller is held off after too many PIN failures
	"pin-busy",            // under a guessing attack, too many calls waited for a PIN answer
	"rtp-timeout",         // no audio from the caller for rtp.timeout in the IVR
	"shutdown",            // hung up in the IVR because the bridge was stopping
	Other,
}

// rejectReasons are why a call was refused before it was answered.
var rejectReasons = []string{
	"sdp",              // the offer could not be parsed or was unusable
	"no-codec",         // no common codec (G.711 u-law or A-law)
	"ports-exhausted",  // no free RTP port
	"draining",         // POST /api/drain or SIGTERM: no new calls
	"max-calls",        // limits.max_calls reached
	"unauthorized",     // digest challenge sent (401/407)
	"forbidden",        // untrusted source without credentials (403)
	"source-blocked",   // source refused after repeated auth failures
	"rate-limited",     // per-source request rate exceeded
	"scanner",          // known scanner user agent, dropped unanswered
	"internal-error",   // our own failure (500)
	"setup-per-source", // limits.setup_per_source: too many calls of one untrusted source not yet in a room
	"setup-per-user",   // limits.setup_per_user: the same for one sip.users account
	"gate",             // the application's gate refused it (an internal leg's bad signature)
	"untrusted",        // the internal leg listener dropped a stranger's INVITE
	Other,
}

// dropReasons are why RTP or RTCP datagrams were thrown away. The first ones
// match media/rtpio's Drops fields.
var dropReasons = []string{
	"foreign-source",       // RTP from an address other than the latched one
	"probation",            // RTP from a source not (yet) latched
	"malformed",            // not valid RTP
	"unknown-payload-type", // neither the audio nor the telephone-event type
	"duplicate",            // audio the jitter buffer already had
	"late",                 // audio after its play-out time
	"send-error",           // outgoing datagrams the kernel refused
	"direction",            // audio while receiving is off (hold, sendonly)
	"rtcp-malformed",       // not valid compound RTCP
	"rtcp-foreign",         // RTCP from an address other than the latched one
	"srtp-auth",            // SRTP packets failing authentication or replay checks
	"stale-epoch",          // relayed media of a leg to a room's former owner (cluster epochs)
	Other,
}

// requestDropReasons are why SIP requests were dropped without an answer.
// They match sipua's Drop* reasons.
var requestDropReasons = []string{
	"rate-limited",    // over limits.source_rate from one untrusted address
	"scanner",         // a known scanner's User-Agent or From (sip.drop_scanners)
	"not-dialog-peer", // an in-dialog request from an address that is not the call's peer
	"untrusted",       // to the internal leg listener from outside cluster.peers
	Other,
}

// Registration states for SetRegistration: groupbridge_sip_registration_state
// is one-hot over exactly these.
const (
	// RegistrationDisabled: no sip.register configured (the state after New).
	RegistrationDisabled = "disabled"
	// RegistrationRegistering: a REGISTER is on its way (first time or after
	// a failure).
	RegistrationRegistering = "registering"
	// RegistrationRegistered: the registrar accepted us and the binding has
	// not expired.
	RegistrationRegistered = "registered"
	// RegistrationFailed: the last attempt failed; a retry is pending.
	RegistrationFailed = "failed"
)

var registrationStates = []string{
	RegistrationDisabled, RegistrationRegistering, RegistrationRegistered, RegistrationFailed,
}

// Outcomes returns every label value of groupbridge_calls_total's outcome,
// rejections included, in a fixed order. It is a copy: for documentation,
// tests and the app's own checks.
func Outcomes() []string {
	out := slices.Clone(outcomes)
	for _, r := range rejectReasons {
		out = append(out, rejectedPrefix+r)
	}
	return out
}

// RejectReasons returns every label value of
// groupbridge_calls_rejected_total's reason, in a fixed order (a copy).
func RejectReasons() []string { return slices.Clone(rejectReasons) }

// DropReasons returns every label value of groupbridge_rtp_dropped_total's
// reason, in a fixed order (a copy).
func DropReasons() []string { return slices.Clone(dropReasons) }

// RequestDropReasons returns every label value of
// groupbridge_sip_requests_dropped_total's reason, in a fixed order (a
// copy).
func RequestDropReasons() []string { return slices.Clone(requestDropReasons) }

// RegistrationStates returns the states SetRegistration knows, in the order
// of the one-hot gauge (a copy).
func RegistrationStates() []string { return slices.Clone(registrationStates) }

// indexOf maps each value of an allow list to its position.
func indexOf(list []string) map[string]int {
	m := make(map[string]int, len(list))
	for i, v := range list {
		m[v] = i
	}
	return m
}
