package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits the rules below enforce.
const (
	maxGroupName      = 64
	maxGroupNumber    = 20
	memberPINMin      = 4
	memberPINMax      = 10
	facilitatorPINMin = 6
	facilitatorPINMax = 10
	maxMaxMembers     = 1000
	maxShareMinutes   = 60
	maxEndGrace       = time.Hour
	rtpPortLow        = 1024 // below are privileged or well-known ports
	maxHostName       = 253
	maxHostLabel      = 63
)

// validator collects problems so that Validate reports all of them at once.
type validator struct{ errs Errors }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

// Validate checks every rule of the configuration and returns nil or an
// Errors holding every problem found, not just the first. Messages name the
// key and, for non-secrets, the value; a PIN is never shown.
//
// It reads the file system once: prompts.dir, when set, must be a directory.
func (c *Config) Validate() error {
	var v validator
	v.sip(&c.SIP)
	v.rtp(&c.RTP)
	v.audio(&c.Audio)
	if f := c.Log.Format; f != LogFormatText && f != LogFormatJSON {
		v.add("log.format", "%s must be text or json", quote(f))
	}
	v.prompts(&c.Prompts)
	v.groups(c.Groups)
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

// Bounds of the audio settings: a jitter buffer under 10 ms cannot absorb
// even a 10 ms packet, and over a second a conversation stops working.
const (
	minJitter     = 10 * time.Millisecond
	maxJitter     = time.Second
	maxMaxTalkers = 32
)

func (v *validator) audio(a *Audio) {
	okMin := a.JitterMin >= minJitter && a.JitterMin <= maxJitter
	okMax := a.JitterMax >= minJitter && a.JitterMax <= maxJitter
	if !okMin {
		v.add("audio.jitter_min", "%s must be from %s to %s", shortDuration(a.JitterMin), shortDuration(minJitter), shortDuration(maxJitter))
	}
	if !okMax {
		v.add("audio.jitter_max", "%s must be from %s to %s", shortDuration(a.JitterMax), shortDuration(minJitter), shortDuration(maxJitter))
	}
	if okMin && okMax && a.JitterMin > a.JitterMax {
		v.add("audio.jitter_min", "%s is above audio.jitter_max: %s", shortDuration(a.JitterMin), shortDuration(a.JitterMax))
	}
	if a.MaxTalkers < 1 || a.MaxTalkers > maxMaxTalkers {
		v.add("audio.max_talkers", "%d must be from 1 to %d", a.MaxTalkers, maxMaxTalkers)
	}
}

// maxAnswerDelay bounds the ring before answer: callers and PBXs give up
// on a call that rings much longer.
const maxAnswerDelay = 10 * time.Second

func (v *validator) sip(s *SIP) {
	if len(s.Listen) == 0 {
		v.add("sip.listen", "at least one listener is required")
	}
	seen := make(map[Listener]int)
	for i, e := range s.Listen {
		path := fmt.Sprintf("sip.listen[%d]", i)
		l, err := ParseListener(e)
		if err != nil {
			v.add(path, "%v", err)
			continue
		}
		if first, dup := seen[l]; dup {
			v.add(path, "%s repeats sip.listen[%d]", quote(e), first)
			continue
		}
		seen[l] = i
	}
	if a := s.ExternalAddress; a != "" && !validIP(a) && !validHostName(a) {
		v.add("sip.external_address", "%s must be an IP address or a host name", quote(a))
	}
	if s.AnswerDelay < 0 || s.AnswerDelay > maxAnswerDelay {
		v.add("sip.answer_delay", "%s must be from 0s to %s", shortDuration(s.AnswerDelay), shortDuration(maxAnswerDelay))
	}
	switch {
	case s.UserAgent == "":
		v.add("sip.user_agent", "must not be empty")
	case !printableASCII(s.UserAgent):
		v.add("sip.user_agent", "%s must be printable ASCII", quote(s.UserAgent))
	}
}

func (v *validator) rtp(r *RTP) {
	if _, err := netip.ParseAddr(r.Address); err != nil {
		v.add("rtp.address", "%s must be an IP address", quote(r.Address))
	}
	minOK := r.PortMin >= rtpPortLow && r.PortMin <= 65535
	maxOK := r.PortMax >= rtpPortLow && r.PortMax <= 65535
	if !minOK {
		v.add("rtp.port_min", "%d must be %d-65535", r.PortMin, rtpPortLow)
	}
	if !maxOK {
		v.add("rtp.port_max", "%d must be %d-65535", r.PortMax, rtpPortLow)
	}
	if minOK && maxOK {
		// Each call needs an even RTP port and the odd RTCP port above it.
		even := r.PortMin + r.PortMin%2
		switch {
		case r.PortMin > r.PortMax:
			v.add("rtp.port_min", "%d is above rtp.port_max: %d", r.PortMin, r.PortMax)
		case even+1 > r.PortMax:
			v.add("rtp.port_min", "range %d-%d holds no even RTP/RTCP port pair", r.PortMin, r.PortMax)
		}
	}
	if r.Timeout <= 0 {
		v.add("rtp.timeout", "%s must be above 0s", shortDuration(r.Timeout))
	}
	if r.HoldTimeout <= 0 {
		v.add("rtp.hold_timeout", "%s must be above 0s", shortDuration(r.HoldTimeout))
	}
}

func (v *validator) prompts(p *Prompts) {
	if !slices.Contains(BuiltinLanguages, p.Language) {
		v.add("prompts.language", "%s is not built in (built in: %s)", quote(p.Language), strings.Join(BuiltinLanguages, ", "))
	}
	if p.Dir == "" {
		return
	}
	fi, err := os.Stat(p.Dir)
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.add("prompts.dir", "%s: no such directory", p.Dir)
	case errors.As(err, &pe):
		v.add("prompts.dir", "%s: %v", p.Dir, pe.Err)
	case err != nil:
		v.add("prompts.dir", "%s: %v", p.Dir, err)
	case !fi.IsDir():
		v.add("prompts.dir", "%s: not a directory", p.Dir)
	}
}

func (v *validator) groups(groups []Group) {
	if len(groups) == 0 {
		v.add("groups", "at least one group is required")
		return
	}
	names := make(map[string]int)
	numbers := make(map[string]int)
	pins := make(map[string]string) // PIN -> path of the key that holds it
	for i := range groups {
		g := &groups[i]
		at := func(key string) string { return fmt.Sprintf("groups[%d].%s", i, key) }

		switch n := utf8.RuneCountInString(g.Name); {
		case g.Name == "":
			v.add(at("name"), "required")
		case !printable(g.Name):
			v.add(at("name"), "%s must be printable text", quote(g.Name))
		case n > maxGroupName:
			v.add(at("name"), "%s is %d characters, at most %d", quote(g.Name), n, maxGroupName)
		default:
			key := strings.ToLower(g.Name)
			if first, dup := names[key]; dup {
				v.add(at("name"), "%s repeats groups[%d].name", quote(g.Name), first)
			} else {
				names[key] = i
			}
		}

		if g.Number != "" {
			if !validGroupNumber(g.Number) {
				v.add(at("number"), "%s must be 1-%d digits, optionally after a +", quote(g.Number), maxGroupNumber)
			} else if first, dup := numbers[g.Number]; dup {
				v.add(at("number"), "%s repeats groups[%d].number", quote(g.Number), first)
			} else {
				numbers[g.Number] = i
			}
		}

		// PIN messages name the rule only: the value is a secret.
		switch {
		case g.MemberPIN == "":
			v.add(at("member_pin"), "required")
		case !digits(g.MemberPIN, memberPINMin, memberPINMax):
			v.add(at("member_pin"), "must be %d-%d digits", memberPINMin, memberPINMax)
		default:
			v.uniquePIN(pins, g.MemberPIN, at("member_pin"))
		}
		switch {
		case g.FacilitatorPIN == "":
			if g.LedBy == LedByFacilitator {
				v.add(at("facilitator_pin"), "required when led_by is facilitator")
			}
		case !digits(g.FacilitatorPIN, facilitatorPINMin, facilitatorPINMax):
			v.add(at("facilitator_pin"), "must be %d-%d digits", facilitatorPINMin, facilitatorPINMax)
		default:
			v.uniquePIN(pins, g.FacilitatorPIN, at("facilitator_pin"))
		}

		if g.LedBy != LedByFacilitator && g.LedBy != LedByPeer {
			v.add(at("led_by"), "%s must be facilitator or peer", quote(g.LedBy))
		}
		if g.MaxMembers < 1 || g.MaxMembers > maxMaxMembers {
			v.add(at("max_members"), "%d must be 1-%d", g.MaxMembers, maxMaxMembers)
		}
		if g.ShareMinutes < 1 || g.ShareMinutes > maxShareMinutes {
			v.add(at("share_minutes"), "%d must be 1-%d", g.ShareMinutes, maxShareMinutes)
		}
		if g.EndGrace < 0 || g.EndGrace > maxEndGrace {
			v.add(at("end_grace"), "%s must be from 0s to %s", shortDuration(g.EndGrace), shortDuration(maxEndGrace))
		}
	}
}

// uniquePIN reports a PIN already used by another key: a PIN alone tells
// which group and role a caller joins, so it must be unique everywhere.
func (v *validator) uniquePIN(pins map[string]string, pin, path string) {
	if first, dup := pins[pin]; dup {
		v.add(path, "same PIN as %s", first)
		return
	}
	pins[pin] = path
}

// digits reports whether s is min to max ASCII digits.
func digits(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validGroupNumber(s string) bool {
	return digits(strings.TrimPrefix(s, "+"), 1, maxGroupNumber)
}

func validIP(s string) bool {
	a, err := netip.ParseAddr(s)
	// A zone (fe80::1%eth0) means nothing to the far end of a call.
	return err == nil && a.Zone() == ""
}

// validHostName checks RFC 1123 syntax: dot-separated labels of letters,
// digits and inner hyphens. An all-digit last label is refused, as it is a
// mistyped IPv4 address (192.168.1) rather than a name.
func validHostName(s string) bool {
	if len(s) > maxHostName {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > maxHostLabel || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// shortDuration formats d without the zero units Duration.String adds
// (2m rather than 2m0s), as an operator would write it.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
