package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/schedule"
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
	maxUserName       = 64
	minPassword       = 8 // sip.users face the internet: SIP scanners guess short ones
	maxPassword       = 128
	minExpires        = time.Minute
	maxExpires        = 24 * time.Hour
)

// validator collects problems so that Validate reports all of them at once.
type validator struct {
	errs Errors
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

// Validate checks every rule of the configuration and returns nil or an
// Errors holding every problem found, not just the first. Messages name the
// key and, for non-secrets, the value; a PIN or a password is never shown.
//
// It reads the file system once: prompts.dir, when set, must be a directory.
func (c *Config) Validate() error {
	var v validator
	v.sip(&c.SIP)
	v.rtp(&c.RTP)
	v.srtpTransport(c)
	v.audio(&c.Audio)
	if f := c.Log.Format; f != LogFormatText && f != LogFormatJSON {
		v.add("log.format", "%s must be text or json", quote(f))
	}
	if f := c.Log.Callers; f != LogCallersTag && f != LogCallersMasked {
		v.add("log.callers", "%s must be tag or masked", quote(f))
	}
	v.prompts(&c.Prompts)
	v.admin(&c.Admin, c.DrainTimeout)
	v.limits(&c.Limits)
	v.attendance(&c.Attendance)
	v.cluster(c.Cluster, &c.SIP)
	v.groups(c.Groups, c.Prompts.Dir)
	v.readings(c)
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

// srtpTransport refuses rtp.srtp: require without a tls: listener: SDES
// keys in SDP over UDP or TCP can be read on the path, and the bridge
// takes them over TLS only unless rtp.srtp_over_udp says otherwise.
func (v *validator) srtpTransport(c *Config) {
	if c.RTP.SRTP != SRTPRequire || c.RTP.SRTPOverUDP {
		return
	}
	for _, l := range c.SIP.Listeners() {
		if l.Transport == "tls" {
			return
		}
	}
	v.add("rtp.srtp", "require needs a tls: listener in sip.listen: SRTP keys travel in the SDP, which is in clear over udp and tcp (rtp.srtp_over_udp: true allows it anyway, exposing the keys)")
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
		// tcp and tls both bind a TCP socket: one address, one of them.
		other := Listener{TransportTCP, l.Addr}
		if l.Transport == TransportTCP {
			other.Transport = TransportTLS
		}
		if first, dup := seen[other]; dup && l.Transport != TransportUDP && l.Addr.Port() != 0 {
			v.add(path, "%s takes the TCP port of sip.listen[%d]", quote(e), first)
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
	for i, e := range s.Trusted {
		if _, ok := parseTrusted(e); !ok {
			v.add(fmt.Sprintf("sip.trusted[%d]", i), "%s is not a CIDR", quote(e))
		}
	}
	for i, e := range s.AssertIdentity {
		if _, ok := parseTrusted(e); !ok && e != AssertTrusted {
			v.add(fmt.Sprintf("sip.assert_identity[%d]", i), "%s is not a CIDR or %q", quote(e), AssertTrusted)
		}
	}
	for i, e := range s.NoIdentity {
		if _, ok := parseTrusted(e); !ok {
			v.add(fmt.Sprintf("sip.no_identity[%d]", i), "%s is not a CIDR", quote(e))
		}
	}
	v.users(s.Users)
	if s.Register != nil {
		v.register(s.Register, seen)
	}
	v.tls(s.TLS, seen)
}

// tls checks sip.tls: required with a tls: listener, whose files must then
// load as a certificate and its key. Without one the section may stay as
// an example, and its files are not read.
func (v *validator) tls(t *TLS, listeners map[Listener]int) {
	first := -1
	for l, i := range listeners {
		if l.Transport == TransportTLS && (first < 0 || i < first) {
			first = i
		}
	}
	if t == nil {
		if first >= 0 {
			v.add("sip.tls", "required by sip.listen[%d] (tls): set sip.tls.cert and sip.tls.key", first)
		}
		return
	}
	if t.Cert == "" {
		v.add("sip.tls.cert", "required: a PEM certificate file")
	}
	if t.Key == "" {
		v.add("sip.tls.key", "required: a PEM private key file")
	}
	if first < 0 || t.Cert == "" || t.Key == "" {
		return
	}
	if _, err := t.Load(); err != nil {
		path, _, _ := strings.Cut(err.Error(), ":")
		v.add(path, "%s", strings.TrimPrefix(err.Error(), path+": "))
	}
}

func (v *validator) users(users []User) {
	names := make(map[string]int)
	for i, u := range users {
		at := func(key string) string { return fmt.Sprintf("sip.users[%d].%s", i, key) }
		if v.userName(at("name"), u.Name) {
			if first, dup := names[u.Name]; dup {
				v.add(at("name"), "%s repeats sip.users[%d].name", quote(u.Name), first)
			} else {
				names[u.Name] = i
			}
		}
		// Password messages name the rule only: the value is a secret.
		switch {
		case u.Password == "":
			v.add(at("password"), "required")
		case len(u.Password) < minPassword || len(u.Password) > maxPassword || !printableASCII(u.Password):
			v.add(at("password"), "must be %d-%d printable ASCII characters", minPassword, maxPassword)
		}
	}
}

// userName checks a SIP user name (a digest user name, an extension) and
// reports whether it is valid.
func (v *validator) userName(path, name string) bool {
	switch {
	case name == "":
		v.add(path, "required")
	case len(name) > maxUserName:
		v.add(path, "%s is longer than %d characters", quote(name), maxUserName)
	case !sipUser(name):
		v.add(path, "%s may hold only letters, digits and -_.!~*'()&=+$,;?/", quote(name))
	default:
		return true
	}
	return false
}

func (v *validator) register(r *Register, listeners map[Listener]int) {
	switch {
	case r.Registrar == "":
		v.add("sip.register.registrar", "required")
	default:
		if err := checkRegistrar(r.Registrar); err != nil {
			v.add("sip.register.registrar", "%v", err)
		}
	}
	v.userName("sip.register.user", r.User)
	// Optional: some PBXs accept a registration by source address alone.
	if len(r.Password) > maxPassword || !printableASCII(r.Password) {
		v.add("sip.register.password", "must be at most %d printable ASCII characters", maxPassword)
	}
	switch {
	case r.Expires < minExpires || r.Expires > maxExpires:
		v.add("sip.register.expires", "%s must be from %s to %s", shortDuration(r.Expires), shortDuration(minExpires), shortDuration(maxExpires))
	case r.Expires%time.Second != 0:
		v.add("sip.register.expires", "%s must be whole seconds", shortDuration(r.Expires))
	}
	switch r.Transport {
	case "":
	case TransportUDP, TransportTCP:
		// REGISTER leaves from our listening socket of that transport, so
		// that the PBX reaches us back where we listen.
		found := false
		for l := range listeners {
			found = found || l.Transport == r.Transport
		}
		if !found && len(listeners) > 0 {
			v.add("sip.register.transport", "%s needs a %s entry in sip.listen", r.Transport, r.Transport)
		}
	default:
		v.add("sip.register.transport", "%s must be udp or tcp", quote(r.Transport))
	}
}

// checkRegistrar checks a registrar URI: sip:host or sip:host:port, the host
// an IP address (IPv6 in brackets) or a host name. The error quotes the URI,
// which is no secret.
func checkRegistrar(uri string) error {
	shape := fmt.Errorf("%s must look like sip:host or sip:host:port, like sip:pbx.example.org:5060", quote(uri))
	scheme, rest, ok := strings.Cut(uri, ":")
	switch {
	case !ok || rest == "":
		return shape
	case !strings.EqualFold(scheme, "sip"):
		return fmt.Errorf("%s must start with sip: (TLS is not supported yet)", quote(uri))
	case strings.Contains(rest, "@"):
		return fmt.Errorf("%s must not hold a user part: the extension goes in sip.register.user", quote(uri))
	case strings.ContainsAny(rest, ";?"):
		return fmt.Errorf("%s must not hold parameters: the transport goes in sip.register.transport", quote(uri))
	}
	var host, port string
	hasPort := false
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return shape
		}
		host = rest[1:end]
		switch after := rest[end+1:]; {
		case after == "":
		case after[0] == ':':
			port, hasPort = after[1:], true
		default:
			return shape
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("%s: %s is not an IPv6 address", quote(uri), quote(host))
		}
	} else {
		switch strings.Count(rest, ":") {
		case 0:
			host = rest
		case 1:
			host, port, _ = strings.Cut(rest, ":")
			hasPort = true
		default:
			return fmt.Errorf("%s: an IPv6 host goes in brackets, like sip:[2001:db8::1]:5060", quote(uri))
		}
		if !validIP(host) && !validHostName(host) {
			return fmt.Errorf("%s: host %s must be an IP address or a host name", quote(uri), quote(host))
		}
	}
	if hasPort {
		if p, err := parsePort(port); err != nil || p == 0 {
			return fmt.Errorf("%s: port %s must be 1-65535", quote(uri), quote(port))
		}
	}
	return nil
}

// parseTrusted reads a sip.trusted entry: a CIDR, or an IP alone for that
// one host. Zones mean nothing to a peer's source address and are refused.
func parseTrusted(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, p.Addr().Zone() == ""
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// TrustedPrefixes returns the parsed sip.trusted entries, an IP alone as a
// one-host prefix. It assumes a validated configuration and leaves out any
// entry that does not parse. The result is never nil, so that an empty
// sip.trusted (nobody is trusted) stays distinct from "not set".
func (s SIP) TrustedPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(s.Trusted))
	for _, e := range s.Trusted {
		if p, ok := parseTrusted(e); ok {
			out = append(out, p)
		}
	}
	return out
}

// AssertPrefixes returns the parsed sip.assert_identity entries, and
// whether the list holds AssertTrusted (every trusted source). It assumes
// a validated configuration.
func (s SIP) AssertPrefixes() (prefixes []netip.Prefix, trusted bool) {
	for _, e := range s.AssertIdentity {
		if e == AssertTrusted {
			trusted = true
		} else if p, ok := parseTrusted(e); ok {
			prefixes = append(prefixes, p)
		}
	}
	return prefixes, trusted
}

// NoIdentityPrefixes returns the parsed sip.no_identity entries. It
// assumes a validated configuration.
func (s SIP) NoIdentityPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, e := range s.NoIdentity {
		if p, ok := parseTrusted(e); ok {
			out = append(out, p)
		}
	}
	return out
}

// MediaSourcePrefixes returns the parsed rtp.media_sources entries, an IP
// alone as a one-host prefix. It assumes a validated configuration and
// leaves out any entry that does not parse.
func (r RTP) MediaSourcePrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, e := range r.MediaSources {
		if p, ok := parseTrusted(e); ok {
			out = append(out, p)
		}
	}
	return out
}

// sipUser reports whether s is made of the characters RFC 3261 allows
// unescaped in the user part of a SIP URI (unreserved and user-unreserved).
// They need no quoting in a URI or in a digest user name.
func sipUser(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-_.!~*'()&=+$,;?/", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (v *validator) rtp(r *RTP) {
	if _, err := netip.ParseAddr(r.Address); err != nil {
		v.add("rtp.address", "%s must be an IP address", quote(r.Address))
	}
	if a := r.ExternalAddress; a != "" && !validIP(a) && !validHostName(a) {
		v.add("rtp.external_address", "%s must be an IP address or a host name", quote(a))
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
	for i, e := range r.MediaSources {
		if _, ok := parseTrusted(e); !ok {
			v.add(fmt.Sprintf("rtp.media_sources[%d]", i), "%s is not a CIDR or an IP address", quote(e))
		}
	}
	switch r.SRTP {
	case SRTPOff, SRTPOffer, SRTPRequire:
	default:
		v.add("rtp.srtp", "%s must be off, offer or require", quote(r.SRTP))
	}
}

// Bounds of the limits: wide enough for any deployment, narrow enough that a
// typo (an extra zero, ms for s) is caught.
const (
	maxPINAlarm    = 100_000
	maxSourceRate  = 10_000
	maxSourceBurst = 100_000
	maxMaxCalls    = 100_000
	minMaxCall     = time.Second
	maxMaxCall     = 7 * 24 * time.Hour
	maxSetupCap    = 10_000
	maxPINBudget   = 600
	maxPINQueue    = 10_000
	maxKnownDays   = 365
	maxTCPPerSrc   = 10_000
	minConnTimeout = time.Second
	maxTCPIdle     = 10 * time.Minute
	maxHandshake   = 2 * time.Minute
)

func (v *validator) limits(l *Limits) {
	v.count("limits.pin_failure_alarm", l.PINFailureAlarm, 1, maxPINAlarm, "wrong PINs per minute")
	v.count("limits.source_rate", l.SourceRate, 0, maxSourceRate, "requests per second")
	v.count("limits.source_burst", l.SourceBurst, 1, maxSourceBurst, "requests")
	v.count("limits.max_calls", l.MaxCalls, 1, maxMaxCalls, "")
	if l.MaxCall != 0 && (l.MaxCall < minMaxCall || l.MaxCall > maxMaxCall) {
		v.add("limits.max_call", "%s must be 0s (no limit) or from %s to %s", shortDuration(l.MaxCall), shortDuration(minMaxCall), shortDuration(maxMaxCall))
	}
	v.count("limits.setup_per_source", l.SetupPerSource, 0, maxSetupCap, "calls")
	v.count("limits.setup_per_user", l.SetupPerUser, 0, maxSetupCap, "calls")
	v.count("limits.pin_budget", l.PINBudget, 1, maxPINBudget, "wrong PINs per minute to one number")
	v.count("limits.pin_budget_bridge", l.PINBudgetBridge, 1, maxPINAlarm, "wrong PINs per minute, bridge-wide")
	v.count("limits.pin_queue", l.PINQueue, 1, maxPINQueue, "calls waiting for a PIN answer")
	v.count("limits.known_callers", l.KnownCallers, 0, maxKnownDays, "days")
	v.count("limits.tcp_per_source", l.TCPPerSource, 0, maxTCPPerSrc, "connections")
	if l.TCPIdle < minConnTimeout || l.TCPIdle > maxTCPIdle {
		v.add("limits.tcp_idle", "%s must be from %s to %s", shortDuration(l.TCPIdle), shortDuration(minConnTimeout), shortDuration(maxTCPIdle))
	}
	if l.TLSHandshake < minConnTimeout || l.TLSHandshake > maxHandshake {
		v.add("limits.tls_handshake", "%s must be from %s to %s", shortDuration(l.TLSHandshake), shortDuration(minConnTimeout), shortDuration(maxHandshake))
	}
}

// count checks a whole-number setting against lo (0 meaning off) and hi;
// unit, when set, says what is counted.
func (v *validator) count(path string, n, lo, hi int, unit string) {
	if n >= lo && n <= hi {
		return
	}
	from := strconv.Itoa(lo)
	if lo == 0 {
		from = "0 (off)"
	}
	if unit != "" {
		unit = " (" + unit + ")"
	}
	v.add(path, "%d must be from %s to %d%s", n, from, hi, unit)
}

// maxDrain bounds a stop: a service manager kills a process that takes
// much longer.
const maxDrain = 5 * time.Minute

func (v *validator) admin(a *Admin, drain time.Duration) {
	if a.Listen != "" {
		ap, err := netip.ParseAddrPort(a.Listen)
		switch {
		case err != nil:
			v.add("admin.listen", "%s must be IP:port (e.g. 127.0.0.1:8080), or empty to turn it off", quote(a.Listen))
		case !ap.Addr().IsLoopback() && a.Token == "":
			v.add("admin.token", "required when admin.listen (%s) is not a loopback address", quote(a.Listen))
		}
		if err == nil && ap.Addr().IsUnspecified() && len(a.Hosts) == 0 {
			v.add("admin.hosts", "required when admin.listen (%s) is a wildcard address: list the names and addresses the API is reached by", quote(a.Listen))
		}
	}
	for i, h := range a.Hosts {
		if !validAdminHost(h) {
			v.add(fmt.Sprintf("admin.hosts[%d]", i), "%s must be a host name or an IP address, without a port (any port is accepted)", quote(h))
		}
	}
	// admin.tls's files are read here too, as sip.tls's are, so that
	// `config check` finds a missing or mismatched certificate before a
	// start does.
	if a.TLS != nil {
		if a.TLS.Cert == "" {
			v.add("admin.tls.cert", "required: a PEM certificate file")
		}
		if a.TLS.Key == "" {
			v.add("admin.tls.key", "required: a PEM private key file")
		}
		if a.Listen != "" && a.TLS.Cert != "" && a.TLS.Key != "" {
			if _, err := a.TLS.LoadAs("admin.tls"); err != nil {
				path, _, _ := strings.Cut(err.Error(), ":")
				v.add(path, "%s", strings.TrimPrefix(err.Error(), path+": "))
			}
		}
	}
	if a.Token != "" && (len(a.Token) < 16 || !printableASCII(a.Token)) {
		v.add("admin.token", "must be at least 16 printable ASCII characters")
	}
	if drain < time.Second || drain > maxDrain {
		v.add("drain_timeout", "%s must be from 1s to %s", shortDuration(drain), shortDuration(maxDrain))
	}
}

// maxAttendanceKeep is a century of days: beyond it a typo, not a policy.
const maxAttendanceKeep = 36500

// attendance checks the attendance section. The DSN's messages never quote
// it: it usually holds the database password.
func (v *validator) attendance(a *Attendance) {
	switch {
	case a.DSN != "":
		u, err := url.Parse(a.DSN)
		if err != nil || (!strings.EqualFold(u.Scheme, "postgres") && !strings.EqualFold(u.Scheme, "postgresql")) {
			// err quotes the URL: it is left out.
			v.add("attendance.dsn", "must be a postgres:// or postgresql:// URL, like postgres://groupbridge:PASSWORD@db.example.org/groupbridge (the value is not shown: it may hold a password)")
		}
	case a.Path == "":
		v.add("attendance.path", "required when attendance.dsn is not set: the SQLite file attendance is kept in")
	case strings.ContainsRune(a.Path, 0):
		v.add("attendance.path", "%s holds a NUL character", quote(a.Path))
	case strings.HasSuffix(a.Path, "/"):
		v.add("attendance.path", "%s must name a file, not a directory", quote(a.Path))
	}
	if a.Keep < 1 || a.Keep > maxAttendanceKeep {
		v.add("attendance.keep", "%d must be from 1 to %d (whole days)", a.Keep, maxAttendanceKeep)
	}
}

// language checks a language key's value: a built-in language, or one
// prompts.dir may hold (the prompt loader then checks its set is complete).
func (v *validator) language(key, lang, dir string) {
	switch {
	case !languageCode.MatchString(lang):
		v.add(key, "%s must be a language code of 2 or 3 lower-case letters, like en or es", quote(lang))
	case slices.Contains(BuiltinLanguages, lang):
	case dir == "":
		v.add(key, "%s is not built in (built in: %s); record a whole set in prompts.dir/%s/", quote(lang), strings.Join(BuiltinLanguages, ", "), lang)
	}
}

// languageCode is what a language is called: an ISO 639 code, also the
// name of its directory in prompts.dir.
var languageCode = regexp.MustCompile(`^[a-z]{2,3}$`)

func (v *validator) prompts(p *Prompts) {
	v.language("prompts.language", p.Language, p.Dir)
	for i, l := range p.Languages {
		key := fmt.Sprintf("prompts.languages[%d]", i)
		v.language(key, l, p.Dir)
		if j := slices.Index(p.Languages, l); j < i {
			v.add(key, "%s repeats prompts.languages[%d]", quote(l), j)
		}
	}
	if len(p.Languages) > 9 {
		v.add("prompts.languages", "%d languages; at most 9 (keys *1 to *9)", len(p.Languages))
	}
	if len(p.Languages) > 0 && !slices.Contains(p.Languages, p.Language) {
		v.add("prompts.languages", "must include prompts.language %s, the language of the welcome", quote(p.Language))
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

// maxReadingsMax bounds prompts.readings_max: a longer reading is more a
// recorded meeting than a reading, and its file could be 700 MB.
const maxReadingsMax = 30 * time.Minute

// readings checks prompts.readings_max and each group's greeting, readings
// and opening_reading. Whether the files exist and play (and prompts.dir is
// set) is checked where they are loaded: by config check, at the start and
// on reload (package readings).
func (v *validator) readings(c *Config) {
	if m := c.Prompts.ReadingsMax; m < time.Second || m > maxReadingsMax {
		v.add("prompts.readings_max", "%s must be from 1s to %s", shortDuration(m), shortDuration(maxReadingsMax))
	}
	file := func(path, name string) {
		switch {
		case name == "":
			v.add(path, "a file name in prompts.dir/readings/ is required")
		case filepath.IsAbs(name) || !filepath.IsLocal(name):
			v.add(path, "%s must be a file name inside prompts.dir/readings/", quote(name))
		}
	}
	for i := range c.Groups {
		g := &c.Groups[i]
		at := func(key string) string { return fmt.Sprintf("groups[%d].%s", i, key) }
		if g.Greeting != "" {
			file(at("greeting"), g.Greeting)
		}
		keys := make(map[int]int)
		for j, r := range g.Readings {
			item := fmt.Sprintf("readings[%d]", j)
			switch first, dup := keys[r.Key]; {
			case r.Key < 1 || r.Key > 9:
				v.add(at(item+".key"), "%d must be from 1 to 9 (**1 to **9)", r.Key)
			case dup:
				v.add(at(item+".key"), "%d repeats groups[%d].readings[%d].key", r.Key, i, first)
			default:
				keys[r.Key] = j
			}
			file(at(item+".file"), r.File)
		}
		if k := g.OpeningReading; k != 0 {
			if _, ok := keys[k]; !ok {
				v.add(at("opening_reading"), "%d is not a key of groups[%d].readings", k, i)
			}
		}
	}
}

// groups checks the groups; promptsDir is prompts.dir, where a group's
// language without built-in prompts must be recorded.
func (v *validator) groups(groups []Group, promptsDir string) {
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
			if g.LedBy == group.LedByFacilitator {
				v.add(at("facilitator_pin"), "required when led_by is facilitator")
			}
		case !digits(g.FacilitatorPIN, facilitatorPINMin, facilitatorPINMax):
			v.add(at("facilitator_pin"), "must be %d-%d digits", facilitatorPINMin, facilitatorPINMax)
		default:
			v.uniquePIN(pins, g.FacilitatorPIN, at("facilitator_pin"))
		}

		if g.LedBy != group.LedByFacilitator && g.LedBy != group.LedByPeer {
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
		v.hours(g, at)
		if g.Language != "" {
			v.language(at("language"), g.Language, promptsDir)
		}
	}
}

// maxSlot bounds a meets entry before it is parsed (and quoted whole in
// its errors); "Tue 19:00-20:30" with room for spaces.
const maxSlot = 40

// maxMargin bounds open_early and overrun: a meeting's margins are minutes,
// and hours of them would make its window swallow the week.
const maxMargin = 2 * time.Hour

// hours checks a group's meeting hours: the zone, each slot, the margins,
// and that no two slots' windows (margins included) overlap, so that any
// moment belongs to one meeting at most. Overlapping slots are refused
// rather than merged: write one slot for one meeting.
func (v *validator) hours(g *Group, at func(string) string) {
	okMargins := true
	for _, m := range []struct {
		key string
		d   time.Duration
	}{{"open_early", g.OpenEarly}, {"overrun", g.Overrun}} {
		if m.d < 0 || m.d > maxMargin {
			v.add(at(m.key), "%s must be from 0s to %s", shortDuration(m.d), shortDuration(maxMargin))
			okMargins = false
		}
	}
	switch {
	case g.Timezone != "":
		if _, err := schedule.LoadZone(g.Timezone); err != nil {
			v.add(at("timezone"), "%s is not an IANA time zone (like America/New_York or UTC)", quote(g.Timezone))
		}
	case len(g.Meets) > 0:
		v.add(at("timezone"), "required when meets is set: an IANA time zone like America/New_York")
	}
	slots := make([]schedule.Slot, len(g.Meets))
	ok := make([]bool, len(g.Meets))
	for j, m := range g.Meets {
		path := at(fmt.Sprintf("meets[%d]", j))
		if len(m) > maxSlot {
			v.add(path, "%s is not a slot like \"Tue 19:00-20:30\"", quote(m))
			continue
		}
		s, err := schedule.ParseSlot(m)
		if err != nil {
			v.add(path, "%v", err)
			continue
		}
		slots[j], ok[j] = s, true
		if !okMargins {
			continue
		}
		for k := range j {
			if ok[k] && schedule.Overlap(slots[k], s, g.OpenEarly, g.Overrun) {
				v.add(path, "%s overlaps %s (%s), counting open_early and overrun: write one meeting as one slot, or leave more time between them",
					quote(m), at(fmt.Sprintf("meets[%d]", k)), quote(g.Meets[k]))
				break
			}
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

// validAdminHost accepts what a Host header may name: a host name, or an
// IP address (IPv6 with or without brackets), without a port.
func validAdminHost(s string) bool {
	if inner, ok := strings.CutPrefix(s, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		a, err := netip.ParseAddr(inner)
		return ok && err == nil && a.Is6() && a.Zone() == ""
	}
	return validIP(s) || validHostName(strings.TrimSuffix(s, "."))
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
