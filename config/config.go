// Package config holds groupbridge's configuration: its types, the defaults
// (which live in code), the embedded demo file, strict YAML loading and
// validation.
//
// Loading is strict because an operator's typo must not silently fall back
// to a default: unknown keys, values of the wrong type, keys given twice and
// every broken rule are all reported at once, each named by its dotted path
// (sip.listen[1], groups[0].member_pin). Errors about secrets (PINs and
// passwords) name the key and the rule, never the value.
//
// The package imports no other groupbridge package but internal/group,
// the leaf that holds the group type the file decodes into, and
// internal/schedule (standard library only), which reads meeting hours
// for the checks.
package config

import (
	"crypto/tls"
	_ "embed"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/groupbridge/groupbridge/internal/group"
)

// Config is a whole groupbridge configuration. The yaml tags are the file's
// keys; the decoder walks them by reflection, so a field added here is a key
// of the file (add it to default.yaml and Validate too). The reload tags say
// what a reload does with each key (see ReloadLive).
type Config struct {
	SIP     SIP     `yaml:"sip"`
	RTP     RTP     `yaml:"rtp"`
	Audio   Audio   `yaml:"audio"`
	Log     Log     `yaml:"log"`
	Prompts Prompts `yaml:"prompts"`
	Admin   Admin   `yaml:"admin"`
	Limits  Limits  `yaml:"limits"`
	// Attendance is where the meetings' records are kept.
	Attendance Attendance `yaml:"attendance"`
	// Cluster, when set, makes this node one of several behind a SIP
	// proxy (docs/CLUSTER.md). Nil (null in the file, the default) is a
	// single node.
	Cluster *Cluster `yaml:"cluster" reload:"restart"`
	// DrainTimeout bounds a stop (SIGTERM): callers are told the line is
	// closing and every call is hung up within it.
	DrainTimeout time.Duration `yaml:"drain_timeout" reload:"live"`
	Groups       []Group       `yaml:"groups" reload:"live"`
}

// SIP is where and how the bridge speaks SIP.
type SIP struct {
	// Listen holds "transport:host:port" entries; see ParseListener.
	Listen []string `yaml:"listen" reload:"restart"`
	// ExternalAddress is the public IP or host name put in Contact and SDP
	// when the bridge sits behind NAT; empty means the local address.
	ExternalAddress string `yaml:"external_address" reload:"restart"`
	// UserAgent is sent in User-Agent and Server headers. It is also the
	// digest realm, so it changes only at a restart.
	UserAgent string `yaml:"user_agent" reload:"restart"`
	// AnswerDelay rings (180 Ringing) this long before answering; 0
	// answers at once. Some PBXs want a ring before the answer, and it
	// gives a caller's CANCEL a window.
	AnswerDelay time.Duration `yaml:"answer_delay" reload:"live"`
	// Trusted lists the networks (CIDR, or a single IP) whose calls are
	// answered without authentication: the PBX or trunk in front of the
	// bridge. The registrar of Register is trusted too. Any other source
	// must authenticate as one of Users, or is refused. See TrustedPrefixes.
	Trusted []string `yaml:"trusted" reload:"restart"`
	// AssertIdentity lists the sources (CIDR, a single IP, or
	// AssertTrusted for all of Trusted and the registrar) whose
	// P-Asserted-Identity and Remote-Party-ID name the caller: RFC 3325's
	// trust domain, the PBXs that police these headers. Only trusted
	// sources are ever believed, whatever this lists. See AssertPrefixes.
	AssertIdentity []string `yaml:"assert_identity" reload:"restart"`
	// NoIdentity lists the sources (CIDR or a single IP) whose From names
	// nobody (a PBX that puts one number in every From): without an
	// asserted identity their callers are anonymous for each call.
	NoIdentity []string `yaml:"no_identity" reload:"restart"`
	// Users are the accounts softphones calling from untrusted addresses
	// authenticate as (SIP digest).
	Users []User `yaml:"users" reload:"restart"`
	// Register, when set, registers the bridge to a PBX as an extension.
	// Nil (null in the file, the default) registers nowhere.
	Register *Register `yaml:"register" reload:"restart"`
	// TLS holds the certificate of the tls: listeners; required when
	// Listen has one. Nil (null in the file, the default) is none.
	TLS *TLS `yaml:"tls" reload:"restart"`
	// DropScanners drops, without any answer, requests from untrusted
	// sources whose User-Agent (or From) names a known SIP scanner
	// (friendly-scanner, sipvicious, sipcli and the like): an answer only
	// tells the scanner that something is there.
	DropScanners bool `yaml:"drop_scanners" reload:"live"`
}

// TLS is the sip.tls section (the certificate the bridge presents on its
// tls: listeners), and the admin.tls one (the admin API's HTTPS).
type TLS struct {
	// Cert is a PEM file with the certificate, then any intermediates.
	Cert string `yaml:"cert" reload:"restart"`
	// Key is a PEM file with the certificate's private key.
	Key string `yaml:"key" reload:"restart"`
}

// Load reads sip.tls's certificate and key: LoadAs("sip.tls").
func (t *TLS) Load() (*tls.Config, error) { return t.LoadAs("sip.tls") }

// LoadAs reads the certificate and key into a server configuration that
// accepts TLS 1.2 and later. The error names the section's keys (section
// is "sip.tls" or "admin.tls") and the files, never key material.
func (t *TLS) LoadAs(section string) (*tls.Config, error) {
	certPEM, err := os.ReadFile(t.Cert)
	if err != nil {
		return nil, fmt.Errorf("%s.cert: %w", section, err)
	}
	keyPEM, err := os.ReadFile(t.Key)
	if err != nil {
		return nil, fmt.Errorf("%s.key: %w", section, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls names the input it failed on and never prints it.
		return nil, fmt.Errorf("%s: certificate %s and key %s do not load as a key pair: %w", section, strconv.Quote(t.Cert), strconv.Quote(t.Key), err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// User is one sip.users account.
type User struct {
	// Name is the digest user name.
	Name string `yaml:"name" reload:"restart"`
	// Password is the digest password. Secret.
	Password string `yaml:"password" secret:"password" reload:"restart"`
}

// Register is the sip.register section: the bridge registers to a PBX as an
// extension so that the PBX sends that extension's calls to the bridge.
type Register struct {
	// Registrar is the PBX's SIP URI: sip:host or sip:host:port.
	Registrar string `yaml:"registrar" reload:"restart"`
	// User is the extension to register (the user part of the
	// address-of-record and of our Contact) and the digest user name.
	User string `yaml:"user" reload:"restart"`
	// Password answers the registrar's digest challenge. Secret.
	Password string `yaml:"password" secret:"password" reload:"restart"`
	// Expires is the registration lifetime asked for; it is refreshed at
	// 80% of what the registrar grants.
	Expires time.Duration `yaml:"expires" reload:"restart"`
	// Transport is udp or tcp; empty means udp when sip.listen has a udp
	// entry, else tcp.
	Transport string `yaml:"transport" reload:"restart"`
}

// DefaultRegister returns a sip.register section with every key at its
// default; Registrar and User are empty and must be set.
func DefaultRegister() Register {
	return Register{Expires: 300 * time.Second}
}

// RTP is where the media sockets bind and when a silent call is dropped.
type RTP struct {
	// Address is the IP the RTP sockets bind to.
	Address string `yaml:"address" reload:"restart"`
	// ExternalAddress, when set, is the IP or host name put in SDP (c= and
	// o=) instead of sip.external_address: for media that leaves through
	// another NAT or address than signalling.
	ExternalAddress string `yaml:"external_address" reload:"restart"`
	// PortMin and PortMax bound the ports used, both inclusive. Each call
	// takes an even port for RTP and the odd one above it for RTCP.
	PortMin int `yaml:"port_min" reload:"restart"`
	PortMax int `yaml:"port_max" reload:"restart"`
	// Timeout hangs up a call that sends no RTP for this long.
	Timeout time.Duration `yaml:"timeout" reload:"restart"`
	// HoldTimeout is the same for a call on hold, which may rightly send
	// nothing for a long time.
	HoldTimeout time.Duration `yaml:"hold_timeout" reload:"restart"`
	// SRTP is when media is encrypted (SDES, AES_CM_128_HMAC_SHA1_80):
	// SRTPOff, SRTPOffer or SRTPRequire. The keys travel in the SDP, so
	// they are taken and given only over SIP on TLS.
	SRTP string `yaml:"srtp" reload:"restart"`
	// SRTPOverUDP lets SRTP keys travel over UDP and TCP SIP too, in
	// clear: anyone on the path can read them and decrypt those calls.
	// Only for a network path the operator trusts.
	SRTPOverUDP bool `yaml:"srtp_over_udp" reload:"restart"`
	// MediaSources lists networks (CIDR, or a single IP) that callers'
	// media may also come from. Media is accepted only from the address in
	// the caller's SDP and the address its SIP came from; this is for the
	// rare trunk whose media comes from a third address, or softphones
	// behind NAT reaching groupbridge through a SIP proxy. See
	// MediaSourcePrefixes.
	MediaSources []string `yaml:"media_sources" reload:"restart"`
}

// rtp.srtp values.
const (
	// SRTPOff never encrypts: offers of SRTP only are refused (488).
	SRTPOff = "off"
	// SRTPOffer encrypts when the caller offers SRTP, plain RTP otherwise.
	SRTPOffer = "offer"
	// SRTPRequire refuses (488) callers that do not offer SRTP.
	SRTPRequire = "require"
)

// Log formats.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// AssertTrusted in sip.assert_identity stands for every trusted source.
const AssertTrusted = "trusted"

// How log lines and the admin API name a caller (log.callers).
const (
	// LogCallersTag names a caller by a short tag from its keyed identity:
	// stable within a day of one run, never the number.
	LogCallersTag = "tag"
	// LogCallersMasked shows the number's first and last four digits.
	LogCallersMasked = "masked"
)

// Log is how the bridge logs.
type Log struct {
	// Format is LogFormatText or LogFormatJSON.
	Format string `yaml:"format" reload:"restart"`
	// Callers is LogCallersTag or LogCallersMasked: how log lines and the
	// admin API name a caller.
	Callers string `yaml:"callers" reload:"restart"`
}

// Prompts chooses the spoken prompts and their languages.
type Prompts struct {
	// Language is the default language: the welcome on a number no group
	// claims, and every group without its own. A built-in set (see
	// BuiltinLanguages) or one recorded in Dir/<language>/.
	Language string `yaml:"language" reload:"live"`
	// Languages are offered on numbers no group claims, key *N choosing
	// the N-th; empty means [Language].
	Languages []string `yaml:"languages" reload:"live"`
	// Dir, when set, is a directory of the operator's own recordings:
	// Dir/<name>.wav overrides a prompt of Language, Dir/<lang>/<name>.wav
	// one of lang, and a complete Dir/<lang>/ brings a language that has
	// no built-in set. A relative path is taken from the working directory.
	Dir string `yaml:"dir" reload:"live"`
	// ReadingsMax is the longest a group's greeting or reading may be
	// (files in Dir/readings/); it also sets the size cap of those files.
	ReadingsMax time.Duration `yaml:"readings_max" reload:"live"`
}

// DefaultReadingsMax is prompts.readings_max when the file leaves it out.
const DefaultReadingsMax = 10 * time.Minute

// Offered returns the languages offered on numbers no group claims.
func (p *Prompts) Offered() []string {
	if len(p.Languages) == 0 {
		return []string{p.Language}
	}
	return p.Languages
}

// BuiltinLanguages lists the prompt sets compiled into groupbridge
// (media/prompt.BuiltinLanguages; a test keeps them equal, since config
// imports no media package).
var BuiltinLanguages = []string{"en", "es"}

// Languages returns every language the configuration speaks, each once:
// prompts.language first, then prompts.languages, then the groups' own.
func (c *Config) Languages() []string {
	langs := []string{c.Prompts.Language}
	add := func(l string) {
		if l != "" && !slices.Contains(langs, l) {
			langs = append(langs, l)
		}
	}
	for _, l := range c.Prompts.Languages {
		add(l)
	}
	for _, g := range c.Groups {
		add(g.Language)
	}
	return langs
}

// LanguageKey names the key that first asks for lang, for errors about
// its prompts: prompts.language, prompts.languages[i] or
// groups[i].language.
func (c *Config) LanguageKey(lang string) string {
	if lang == c.Prompts.Language {
		return "prompts.language"
	}
	if i := slices.Index(c.Prompts.Languages, lang); i >= 0 {
		return fmt.Sprintf("prompts.languages[%d]", i)
	}
	for i, g := range c.Groups {
		if g.Language == lang {
			return fmt.Sprintf("groups[%d].language", i)
		}
	}
	return "prompts.language"
}

// Group is one support group callers can join: group.Group, the one shape
// of a group, with its YAML decoding (UnmarshalYAML) added. A group item in
// a file starts from DefaultGroup, so it only needs the keys that differ.
// Group(g) converts a config.Group to a group.Group at no cost; the keys are
// the struct tags of group.Group.
type Group group.Group

// Runtime returns g as the packages that use a group take it.
func (g Group) Runtime() group.Group { return group.Group(g) }

// RuntimeGroups returns c's groups as the packages past configuration take
// them, each with its language filled in (prompts.language when unset).
func (c *Config) RuntimeGroups() []group.Group {
	out := make([]group.Group, len(c.Groups))
	for i, g := range c.Groups {
		out[i] = g.Runtime()
		if out[i].Language == "" {
			out[i].Language = c.Prompts.Language
		}
	}
	return out
}

// Admin is the operator's HTTP listener: /healthz, /metrics, /api/...
type Admin struct {
	// Listen is host:port; "" turns the listener off.
	Listen string `yaml:"listen" reload:"restart"`
	// Token is the bearer token every /api and /metrics request must
	// carry; required when Listen is not a loopback address.
	Token string `yaml:"token" secret:"token" reload:"restart"`
	// Hosts are the names and addresses the API answers to in a request's
	// Host header, with any port; empty: Listen's address and localhost,
	// 127.0.0.1 and ::1. Required when Listen is a wildcard address: a web
	// page that renames itself to this machine (DNS rebinding) is refused.
	Hosts []string `yaml:"hosts" reload:"restart"`
	// TLS, when set, serves the API and console over HTTPS with this
	// certificate (the same shape as sip.tls); the console's session
	// cookie is then Secure.
	TLS *TLS `yaml:"tls" reload:"restart"`
}

// Attendance is the attendance store: one record per session and per-day
// counts, naming no one (internal/attendance).
type Attendance struct {
	// Path is the SQLite file; its directory is made (0700) at start. A
	// relative path is taken from the working directory. Unused when DSN
	// is set.
	Path string `yaml:"path" reload:"restart"`
	// DSN, when set, stores attendance in PostgreSQL instead of Path: a
	// postgres:// or postgresql:// URL. Secret: it usually holds a
	// password, so no message ever shows it.
	DSN string `yaml:"dsn" secret:"connection URL" reload:"restart"`
	// Keep is how many whole days records are kept; older ones are
	// deleted daily.
	Keep int `yaml:"keep" reload:"restart"`
}

// Defaults of the attendance section.
const (
	DefaultAttendancePath = "groupbridge-data/attendance.db"
	DefaultAttendanceKeep = 400
)

// Limits are the defences against abuse: PIN guessing and SIP floods.
// All of them apply on reload to what happens from then on.
type Limits struct {
	// PINFailureAlarm is the wrong PINs per minute, bridge-wide or for the
	// calls to one group's number, above which an alarm is raised (a
	// metric and a log line): many callers each guessing a little are an
	// attack that no per-caller limit sees.
	PINFailureAlarm int `yaml:"pin_failure_alarm" reload:"live"`
	// SourceRate is the SIP requests per second one untrusted source
	// address may send on average (a token bucket of SourceBurst); more
	// are dropped unanswered. 0 turns the per-source limit off. Trusted
	// sources and the registrar are exempt: the PBX carries everyone's
	// calls.
	SourceRate int `yaml:"source_rate" reload:"live"`
	// SourceBurst is how many requests an untrusted source may send at
	// once before SourceRate applies.
	SourceBurst int `yaml:"source_burst" reload:"live"`
	// MaxCalls caps the calls up or being set up, from every source;
	// beyond it an INVITE gets 503 with Retry-After.
	MaxCalls int `yaml:"max_calls" reload:"live"`
	// MaxCall ends (BYE) a call that has lasted this long; 0 is no limit.
	MaxCall time.Duration `yaml:"max_call" reload:"live"`
	// SetupPerSource caps the calls of one untrusted source address (IPv6:
	// its /64) being set up or at the PIN prompt; more get 503. Each holds
	// RTP ports, so one source could otherwise take the whole range. 0 is
	// off; sip.trusted sources are bounded by MaxCalls only.
	SetupPerSource int `yaml:"setup_per_source" reload:"live"`
	// SetupPerUser is the same for the calls of one sip.users account.
	SetupPerUser int `yaml:"setup_per_user" reload:"live"`
	// PINBudget is the wrong PINs a minute to one number (a group's own
	// number, or the shared access number) that pass unhindered. Past it
	// the number is under attack: PIN answers wait their turn, one every
	// minute/PINBudget, whatever caller numbers the guesses come from.
	// It sets how long PINs hold out (config check prints it).
	PINBudget int `yaml:"pin_budget" reload:"live"`
	// PINBudgetBridge is the same over all numbers together: past it every
	// number is under attack.
	PINBudgetBridge int `yaml:"pin_budget_bridge" reload:"live"`
	// PINQueue caps the calls of one number waiting for their PIN's answer
	// under attack; a caller beyond it hears "Please try again later."
	PINQueue int `yaml:"pin_queue" reload:"live"`
	// KnownCallers is the days a caller who entered a group's PIN is known
	// to that group and skips the waiting under attack (remembered as a
	// keyed hash, in memory only); 0 turns it off.
	KnownCallers int `yaml:"known_callers" reload:"live"`
	// TCPPerSource caps the TCP and TLS connections one untrusted address
	// (IPv6: its /64) may hold open; more are closed at once. 0 is off.
	TCPPerSource int `yaml:"tcp_per_source" reload:"live"`
	// TCPIdle closes an untrusted TCP or TLS connection that has not
	// carried a complete SIP request this long after it was opened.
	TCPIdle time.Duration `yaml:"tcp_idle" reload:"live"`
	// TLSHandshake closes a TLS connection whose handshake has not ended
	// this long after it was opened.
	TLSHandshake time.Duration `yaml:"tls_handshake" reload:"live"`
}

// Audio is how callers' audio is cleaned up and mixed.
type Audio struct {
	// JitterMin and JitterMax bound the adaptive jitter buffer's delay.
	JitterMin time.Duration `yaml:"jitter_min" reload:"restart"`
	JitterMax time.Duration `yaml:"jitter_max" reload:"restart"`
	// MaxTalkers is how many of the loudest talkers are mixed at once;
	// quieter open lines wait their turn instead of adding noise.
	MaxTalkers int `yaml:"max_talkers" reload:"restart"`
	// AGC brings every talker toward a common speech level (within 6 dB)
	// with a limiter, so a shouting caller never clips the room.
	AGC bool `yaml:"agc" reload:"restart"`
	// ComfortNoise sends very low-level noise instead of digital silence.
	ComfortNoise bool `yaml:"comfort_noise" reload:"restart"`
}

// Default returns the built-in configuration: every key at its default and no
// groups. It is not valid on its own; a file must add at least one group.
func Default() *Config {
	return &Config{
		SIP: SIP{
			Listen:         []string{"udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"},
			UserAgent:      "groupbridge",
			Trusted:        []string{"127.0.0.0/8", "::1/128"},
			AssertIdentity: []string{AssertTrusted},
			DropScanners:   true,
		},
		RTP: RTP{
			Address:     "0.0.0.0",
			PortMin:     10000,
			PortMax:     20000,
			Timeout:     30 * time.Second,
			HoldTimeout: time.Hour,
			SRTP:        SRTPOffer,
		},
		Audio: Audio{
			JitterMin:  20 * time.Millisecond,
			JitterMax:  200 * time.Millisecond,
			MaxTalkers: 4,
			AGC:        true,
		},
		Log:     Log{Format: LogFormatText, Callers: LogCallersTag},
		Prompts: Prompts{Language: "en", ReadingsMax: DefaultReadingsMax},
		Admin:   Admin{Listen: "127.0.0.1:8080"},
		Limits: Limits{
			PINFailureAlarm: 60,
			SourceRate:      10,
			SourceBurst:     20,
			MaxCalls:        1000,
			MaxCall:         4 * time.Hour,
			SetupPerSource:  10,
			SetupPerUser:    10,
			PINBudget:       6,
			PINBudgetBridge: 30,
			PINQueue:        40,
			KnownCallers:    30,
			TCPPerSource:    20,
			TCPIdle:         30 * time.Second,
			TLSHandshake:    10 * time.Second,
		},
		Attendance:   Attendance{Path: DefaultAttendancePath, Keep: DefaultAttendanceKeep},
		DrainTimeout: 10 * time.Second,
	}
}

// DefaultGroup returns a group with every key at its default; Name and
// MemberPIN are empty and must be set.
func DefaultGroup() Group {
	return Group{
		LedBy:        group.LedByPeer,
		MaxMembers:   30,
		ShareMinutes: 3,
		EndGrace:     2 * time.Minute,
		OpenEarly:    15 * time.Minute,
		Overrun:      15 * time.Minute,
	}
}

// UnmarshalYAML lets yaml.Unmarshal fill a Group directly: it starts from
// DefaultGroup, so a key the node leaves out keeps its default and an explicit
// value wins, and it applies the same strict rules as Parse (unknown keys and
// type errors are reported as Errors, with paths relative to the group). It
// does not validate; Parse does.
func (g *Group) UnmarshalYAML(value *yaml.Node) error {
	*g = DefaultGroup()
	d := newDecoder()
	d.value(value, reflect.ValueOf(g).Elem(), "", "")
	if len(d.errs) > 0 {
		return d.errs
	}
	return nil
}

//go:embed default.yaml
var embedded []byte

// EmbeddedYAML returns the embedded default configuration file, comments and
// all: what `groupbridge config default` prints. The slice is a copy.
func EmbeddedYAML() []byte { return append([]byte(nil), embedded...) }

// Embedded parses the embedded default configuration: loopback SIP and RTP
// and one peer-led demo group.
func Embedded() (*Config, error) {
	c, err := Parse(embedded)
	if err != nil {
		return nil, fmt.Errorf("embedded default configuration: %w", err)
	}
	return c, nil
}

// Parse reads a configuration from YAML: it starts from Default, decodes data
// over it (a group item starts from DefaultGroup) and validates the result.
// On failure it returns Errors listing every problem: syntax, unknown keys,
// wrong types, repeated keys and broken rules. An empty file, or one without
// groups, is an error, so demo PINs cannot reach production by accident.
func Parse(data []byte) (*Config, error) {
	c := Default()
	d := newDecoder()
	root, fatal := parseDocument(data)
	if fatal != nil {
		return nil, Errors{fatal}
	}
	if root != nil {
		d.value(root, reflect.ValueOf(c).Elem(), "", "")
		if d.budget <= 0 {
			// The decode stopped part way; validating the rest is noise.
			return nil, d.errs
		}
	}
	errs := d.errs
	if verr := c.Validate(); verr != nil {
		for _, e := range verr.(Errors) {
			// A key that failed to decode kept its default or stayed empty;
			// its "required" or range complaint would only be noise.
			if !d.failedAt(e.Path) {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// LoadFile reads and parses the configuration file at path. A read failure is
// returned wrapped; a file that does not parse gives a *FileError whose lines
// all start with the file name and which unwraps to Errors.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, &FileError{File: path, Err: err}
	}
	return c, nil
}

// Group returns the group with the given name, compared case-insensitively
// as names are unique that way, or nil.
func (c *Config) Group(name string) *Group {
	for i := range c.Groups {
		if strings.EqualFold(c.Groups[i].Name, name) {
			return &c.Groups[i]
		}
	}
	return nil
}
