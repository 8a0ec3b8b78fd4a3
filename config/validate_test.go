package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// okGroups is a valid groups section, appended to cases that test other sections.
const okGroups = "groups:\n  - name: G\n    member_pin: \"4821\"\n"

// dsnError is the one message for a broken attendance.dsn.
const dsnError = "attendance.dsn: must be a postgres:// or postgresql:// URL, like postgres://groupbridge:PASSWORD@db.example.org/groupbridge (the value is not shown: it may hold a password)"

// TestParseRules feeds one YAML file per case and expects exactly the listed
// error lines (in any order); no lines means the file is valid. $TMP stands
// for a temporary directory holding a directory "prompts" and a file "file".
func TestParseRules(t *testing.T) {
	tmp := t.TempDir()
	if err := os.Mkdir(filepath.Join(tmp, "prompts"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		yaml string
		want []string
	}{
		// The whole file.
		{"minimal", okGroups, nil},
		{"empty file", "", []string{"groups: at least one group is required"}},
		{"only comments", "# nothing here\n", []string{"groups: at least one group is required"}},
		{"null document", "~\n", []string{"groups: at least one group is required"}},
		{"no groups", "log: {format: json}\n", []string{"groups: at least one group is required"}},
		{"empty groups", "groups: []\n", []string{"groups: at least one group is required"}},
		{"null groups", "groups:\n", []string{"groups: at least one group is required"}},
		{"root is a list", "- a\n", []string{"the file must be a mapping of sections (sip:, rtp:, groups: ...), found a list"}},
		{"root is text", "hello\n", []string{`the file must be a mapping of sections (sip:, rtp:, groups: ...), found "hello"`}},
		{"syntax error", "sip: [\n", []string{"invalid YAML: line 1: did not find expected node content"}},
		{"two documents", okGroups + "---\nlog: {format: json}\n", []string{"the file holds more than one YAML document (another starts after ---)"}},
		{"trailing document marker", okGroups + "---\n", nil},
		{"empty sections keep defaults", "sip:\nrtp:\nlog:\nprompts:\n" + okGroups, nil},

		// Unknown keys, every one, with its path.
		{"unknown keys", `
admin: {listen: 127.0.0.1:8080, tokn: x}
sip:
  lisen: ["udp:127.0.0.1:5060"]
  trust: []
groups:
  - name: A
    member_pin: "1111"
  - name: B
    member_pin: "2222"
    pin: "3333"
    "odd key": 1
`, []string{
			"admin.tokn: unknown key",
			"sip.lisen: unknown key",
			"sip.trust: unknown key",
			"groups[1].pin: unknown key",
			`groups[1]."odd key": unknown key`,
		}},
		{"key given twice", "log:\n  format: json\n  format: text\n" + okGroups, []string{"log.format: key given twice (lines 2 and 3)"}},
		{"key that is a list", "log:\n  ? [a]\n  : 1\n" + okGroups, []string{"log: a key must be a plain name, found a list"}},

		// Type errors name the path; a failed key gives no follow-on complaint.
		{"int is text", "rtp: {port_min: abc}\n" + okGroups, []string{`rtp.port_min: expected a whole number, found "abc"`}},
		{"int is quoted", "rtp: {port_min: \"10000\"}\n" + okGroups, []string{`rtp.port_min: expected a whole number, found the quoted text "10000" (drop the quotes)`}},
		{"int is a float", "rtp: {port_max: 1.5}\n" + okGroups, []string{`rtp.port_max: expected a whole number, found "1.5"`}},
		{"int overflows", "rtp: {port_max: 99999999999999999999}\n" + okGroups, []string{`rtp.port_max: expected a whole number, found "99999999999999999999"`}},
		{"int is a list", "groups:\n  - name: G\n    member_pin: \"4821\"\n    max_members: [1]\n", []string{"groups[0].max_members: expected a whole number, found a list"}},
		{"duration without unit", "rtp: {timeout: 30}\n" + okGroups, []string{`rtp.timeout: expected a duration like 90s, 2m or 1h, found "30"`}},
		{"duration is text", "rtp: {hold_timeout: forever}\n" + okGroups, []string{`rtp.hold_timeout: expected a duration like 90s, 2m or 1h, found "forever"`}},
		{"list is text", "sip: {listen: \"udp:127.0.0.1:5060\"}\n" + okGroups, []string{`sip.listen: expected a list, found "udp:127.0.0.1:5060"`}},
		{"section is a list", "sip: [1]\n" + okGroups, []string{"sip: expected a mapping of keys, found a list"}},
		{"text is a mapping", "log: {format: {a: 1}}\n" + okGroups, []string{"log.format: expected text, found a mapping"}},
		{"groups is a mapping", "groups: {name: G}\n", []string{"groups: expected a list, found a mapping"}},
		{"group is text", "groups:\n  - G\n", []string{`groups[0]: expected a mapping of keys, found "G"`}},
		{"group is empty", "groups:\n  -\n", []string{"groups[0]: expected a mapping of keys, found nothing"}},
		{"PIN is a list", "groups:\n  - name: G\n    member_pin: [1, 2]\n", []string{"groups[0].member_pin: expected a PIN, found a list"}},
		{"merge of text", "log:\n  <<: abc\n" + okGroups, []string{"log.<<: a merge needs a mapping or a list of mappings"}},

		// sip.listen
		{"listen empty", "sip: {listen: []}\n" + okGroups, []string{"sip.listen: at least one listener is required"}},
		{"listen null", "sip:\n  listen:\n" + okGroups, []string{"sip.listen: at least one listener is required"}},
		{"listen good", `sip: {listen: ["udp:[::1]:5060", "tcp:[::1]:5060", "udp:127.0.0.1:0", "tcp:0.0.0.0:65535", "udp:[fe80::1%eth0]:5060"]}` + "\n" + okGroups, nil},
		{"listen bad", `
sip:
  listen:
    - "sctp:127.0.0.1:5061"
    - "udp"
    - "udp:127.0.0.1"
    - "udp:localhost:5060"
    - "udp:::1:5060"
    - "udp:[127.0.0.1]:5060"
    - "tcp:127.0.0.1:65536"
    - "tcp:127.0.0.1:+5"
    - "tcp:127.0.0.1:"
    - "UDP:127.0.0.1:5060"
    - ""
` + okGroups, []string{
			`sip.listen[0]: "sctp:127.0.0.1:5061": transport must be udp, tcp or tls`,
			`sip.listen[1]: "udp" must look like transport:host:port, like udp:0.0.0.0:5060`,
			`sip.listen[2]: "udp:127.0.0.1" must look like transport:host:port, like udp:0.0.0.0:5060`,
			`sip.listen[3]: "udp:localhost:5060": host "localhost" must be an IP address`,
			`sip.listen[4]: "udp:::1:5060": an IPv6 host goes in brackets, like udp:[::1]:5060`,
			`sip.listen[5]: "udp:[127.0.0.1]:5060": brackets are only for IPv6 hosts`,
			`sip.listen[6]: "tcp:127.0.0.1:65536": port "65536" must be 0-65535`,
			`sip.listen[7]: "tcp:127.0.0.1:+5": port "+5" must be 0-65535`,
			`sip.listen[8]: "tcp:127.0.0.1:": port "" must be 0-65535`,
			`sip.listen[9]: "UDP:127.0.0.1:5060": transport must be udp, tcp or tls`,
			`sip.listen[10]: "" must look like transport:host:port, like udp:0.0.0.0:5060`,
		}},
		{"listen duplicates", `sip: {listen: ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060", "udp:127.0.0.1:5060", "udp:[::1]:5060", "udp:[0:0::1]:5060"]}` + "\n" + okGroups, []string{
			`sip.listen[2]: "udp:127.0.0.1:5060" repeats sip.listen[0]`,
			`sip.listen[4]: "udp:[0:0::1]:5060" repeats sip.listen[3]`,
		}},

		// sip.external_address and sip.user_agent
		{"external address IPv4", "sip: {external_address: 203.0.113.5}\n" + okGroups, nil},
		{"external address IPv6", "sip: {external_address: \"2001:db8::1\"}\n" + okGroups, nil},
		{"external address name", "sip: {external_address: sip-1.example.org}\n" + okGroups, nil},
		{"external address single label", "sip: {external_address: pbx}\n" + okGroups, nil},
		{"external address bad", `
sip: {external_address: bad_host}
` + okGroups, []string{`sip.external_address: "bad_host" must be an IP address or a host name`}},
		{"external address with port", "sip: {external_address: \"203.0.113.5:5060\"}\n" + okGroups, []string{`sip.external_address: "203.0.113.5:5060" must be an IP address or a host name`}},
		{"external address short IPv4", "sip: {external_address: 192.168.1}\n" + okGroups, []string{`sip.external_address: "192.168.1" must be an IP address or a host name`}},
		{"external address hyphen", "sip: {external_address: -a.example.org}\n" + okGroups, []string{`sip.external_address: "-a.example.org" must be an IP address or a host name`}},
		{"external address empty label", "sip: {external_address: a..org}\n" + okGroups, []string{`sip.external_address: "a..org" must be an IP address or a host name`}},
		{"external address long label", "sip: {external_address: " + strings.Repeat("a", 64) + ".org}\n" + okGroups, []string{`sip.external_address: "` + strings.Repeat("a", 40) + `…" must be an IP address or a host name`}},
		{"external address zone", "sip: {external_address: \"fe80::1%eth0\"}\n" + okGroups, []string{`sip.external_address: "fe80::1%eth0" must be an IP address or a host name`}},
		{"admin off", "admin: {listen: \"\"}\n" + okGroups, nil},
		{"admin bad listen", "admin: {listen: \"localhost:80\"}\n" + okGroups, []string{`admin.listen: "localhost:80" must be IP:port (e.g. 127.0.0.1:8080), or empty to turn it off`}},
		{"admin public without token", "admin: {listen: \"192.0.2.20:8080\"}\n" + okGroups, []string{`admin.token: required when admin.listen ("192.0.2.20:8080") is not a loopback address`}},
		{"admin public with token", "admin: {listen: \"192.0.2.20:8080\", token: \"0123456789abcdefXYZ\"}\n" + okGroups, nil},
		{"admin wildcard without token or hosts", "admin: {listen: \"0.0.0.0:8080\"}\n" + okGroups, []string{
			`admin.hosts: required when admin.listen ("0.0.0.0:8080") is a wildcard address: list the names and addresses the API is reached by`,
			`admin.token: required when admin.listen ("0.0.0.0:8080") is not a loopback address`,
		}},
		{"admin wildcard without hosts", "admin: {listen: \"0.0.0.0:8080\", token: \"0123456789abcdefXYZ\"}\n" + okGroups, []string{
			`admin.hosts: required when admin.listen ("0.0.0.0:8080") is a wildcard address: list the names and addresses the API is reached by`,
		}},
		{"admin IPv6 wildcard without hosts", "admin: {listen: \"[::]:8080\", token: \"0123456789abcdefXYZ\"}\n" + okGroups, []string{
			`admin.hosts: required when admin.listen ("[::]:8080") is a wildcard address: list the names and addresses the API is reached by`,
		}},
		{"admin wildcard with hosts", "admin: {listen: \"0.0.0.0:8080\", token: \"0123456789abcdefXYZ\", hosts: [bridge.example.org, 192.0.2.20, \"2001:db8::20\", \"[2001:db8::21]\", localhost, bridge.example.org.]}\n" + okGroups, nil},
		{"admin loopback with hosts", "admin: {hosts: [localhost]}\n" + okGroups, nil},
		{"admin bad hosts", "admin: {hosts: [\"bridge.example.org:8080\", \"127.0.0.1:8080\", \"[::1]:8080\", \"http://bridge.example.org\", \"*.example.org\", \"\", \"[127.0.0.1]\", \"fe80::1%eth0\"]}\n" + okGroups, []string{
			`admin.hosts[0]: "bridge.example.org:8080" must be a host name or an IP address, without a port (any port is accepted)`,
			`admin.hosts[1]: "127.0.0.1:8080" must be a host name or an IP address, without a port (any port is accepted)`,
			`admin.hosts[2]: "[::1]:8080" must be a host name or an IP address, without a port (any port is accepted)`,
			`admin.hosts[3]: "http://bridge.example.org" must be a host name or an IP address, without a port (any port is accepted)`,
			`admin.hosts[4]: "*.example.org" must be a host name or an IP address, without a port (any port is accepted)`,
			`admin.hosts[5]: "" must be a host name or an IP address, without a port (any port is accepted)`,
			`admin.hosts[6]: "[127.0.0.1]" must be a host name or an IP address, without a port (any port is accepted)`,
			`admin.hosts[7]: "fe80::1%eth0" must be a host name or an IP address, without a port (any port is accepted)`,
		}},
		{"admin short token", "admin: {token: \"short-secret\"}\n" + okGroups, []string{"admin.token: must be at least 16 printable ASCII characters"}},
		{"drain timeout", "drain_timeout: 0s\n" + okGroups, []string{"drain_timeout: 0s must be from 1s to 5m"}},

		// attendance: the DSN is never quoted, it may hold a password.
		{"attendance defaults", "attendance: {}\n" + okGroups, nil},
		{"attendance path and keep", "attendance: {path: /var/lib/groupbridge/attendance.db, keep: 36500}\n" + okGroups, nil},
		{"attendance keep one day", "attendance: {keep: 1}\n" + okGroups, nil},
		{"attendance keep zero", "attendance: {keep: 0}\n" + okGroups, []string{"attendance.keep: 0 must be from 1 to 36500 (whole days)"}},
		{"attendance keep too long", "attendance: {keep: 36501}\n" + okGroups, []string{"attendance.keep: 36501 must be from 1 to 36500 (whole days)"}},
		{"attendance keep is a duration", "attendance: {keep: 400d}\n" + okGroups, []string{`attendance.keep: expected a whole number, found "400d"`}},
		{"attendance no path", "attendance: {path: \"\"}\n" + okGroups, []string{"attendance.path: required when attendance.dsn is not set: the SQLite file attendance is kept in"}},
		{"attendance path a directory", "attendance: {path: data/}\n" + okGroups, []string{`attendance.path: "data/" must name a file, not a directory`}},
		{"attendance dsn", "attendance: {dsn: \"postgres://gb:s3cret-pw@db.example.org:5432/gb?sslmode=verify-full\"}\n" + okGroups, nil},
		{"attendance dsn postgresql", "attendance: {dsn: \"postgresql://gb@127.0.0.1/gb\"}\n" + okGroups, nil},
		{"attendance dsn and no path", "attendance: {dsn: \"postgres://gb@db/gb\", path: \"\"}\n" + okGroups, nil},
		{"attendance dsn keywords", "attendance: {dsn: \"host=db password=s3cret-pw\"}\n" + okGroups, []string{dsnError}},
		{"attendance dsn mysql", "attendance: {dsn: \"mysql://gb:s3cret-pw@db/gb\"}\n" + okGroups, []string{dsnError}},
		{"attendance dsn unparsable", "attendance: {dsn: \"postgres://gb:s3cret-pw@db:port/gb\"}\n" + okGroups, []string{dsnError}},
		{"attendance dsn a list", "attendance: {dsn: [s3cret-pw]}\n" + okGroups, []string{"attendance.dsn: expected a connection URL, found a list"}},
		{"attendance dsn a number", "attendance: {dsn: 12345}\n" + okGroups, []string{dsnError}},

		// limits: each key names itself and its value.
		{"limits all set", "limits: {pin_failure_alarm: 5, source_rate: 0, source_burst: 1, max_calls: 1, max_call: 0s}\n" + okGroups, nil},
		{"limits at their highest", "limits: {pin_failure_alarm: 100000, source_rate: 10000, source_burst: 100000, max_calls: 100000, max_call: 168h}\n" + okGroups, nil},
		{"limits max_call shortest", "limits: {max_call: 1s}\n" + okGroups, nil},
		{"limits zero", "limits: {pin_failure_alarm: 0, source_burst: 0, max_calls: 0}\n" + okGroups, []string{
			"limits.pin_failure_alarm: 0 must be from 1 to 100000 (wrong PINs per minute)",
			"limits.source_burst: 0 must be from 1 to 100000 (requests)",
			"limits.max_calls: 0 must be from 1 to 100000",
		}},
		{"limits too high", "limits: {pin_failure_alarm: 100001, source_rate: 10001, source_burst: 100001, max_calls: 100001, max_call: 169h}\n" + okGroups, []string{
			"limits.pin_failure_alarm: 100001 must be from 1 to 100000 (wrong PINs per minute)",
			"limits.source_rate: 10001 must be from 0 (off) to 10000 (requests per second)",
			"limits.source_burst: 100001 must be from 1 to 100000 (requests)",
			"limits.max_calls: 100001 must be from 1 to 100000",
			"limits.max_call: 169h must be 0s (no limit) or from 1s to 168h",
		}},
		{"limits setup caps", "limits: {setup_per_source: -1, setup_per_user: 10001}\n" + okGroups, []string{
			"limits.setup_per_source: -1 must be from 0 (off) to 10000 (calls)",
			"limits.setup_per_user: 10001 must be from 0 (off) to 10000 (calls)",
		}},
		{"limits connections", "limits: {tcp_per_source: -1, tcp_idle: 0s, tls_handshake: 3m}\n" + okGroups, []string{
			"limits.tcp_per_source: -1 must be from 0 (off) to 10000 (connections)",
			"limits.tcp_idle: 0s must be from 1s to 10m",
			"limits.tls_handshake: 3m must be from 1s to 2m",
		}},
		{"limits connections at their bounds", "limits: {tcp_per_source: 10000, tcp_idle: 10m, tls_handshake: 1s}\n" + okGroups, nil},
		{"limits negative", "limits: {source_rate: -1, max_call: -1s}\n" + okGroups, []string{
			"limits.source_rate: -1 must be from 0 (off) to 10000 (requests per second)",
			"limits.max_call: -1s must be 0s (no limit) or from 1s to 168h",
		}},
		{"pin budget keys at their bounds", "limits: {pin_budget: 1, pin_budget_bridge: 1, pin_queue: 1, known_callers: 0}\n" + okGroups, nil},
		{"pin budget keys at their highest", "limits: {pin_budget: 600, pin_budget_bridge: 100000, pin_queue: 10000, known_callers: 365}\n" + okGroups, nil},
		{"pin budget keys out of range", "limits: {pin_budget: 0, pin_budget_bridge: 0, pin_queue: 10001, known_callers: -1}\n" + okGroups, []string{
			"limits.pin_budget: 0 must be from 1 to 600 (wrong PINs per minute to one number)",
			"limits.pin_budget_bridge: 0 must be from 1 to 100000 (wrong PINs per minute, bridge-wide)",
			"limits.pin_queue: 10001 must be from 1 to 10000 (calls waiting for a PIN answer)",
			"limits.known_callers: -1 must be from 0 (off) to 365 (days)",
		}},
		{"pin budget too high", "limits: {pin_budget: 601, known_callers: 366}\n" + okGroups, []string{
			"limits.pin_budget: 601 must be from 1 to 600 (wrong PINs per minute to one number)",
			"limits.known_callers: 366 must be from 0 (off) to 365 (days)",
		}},
		{"limits max_call too short", "limits: {max_call: 500ms}\n" + okGroups, []string{"limits.max_call: 500ms must be 0s (no limit) or from 1s to 168h"}},
		{"limits wrong types", "limits: {source_rate: 2.5, max_call: 4}\n" + okGroups, []string{
			`limits.source_rate: expected a whole number, found "2.5"`,
			`limits.max_call: expected a duration like 90s, 2m or 1h, found "4"`,
		}},
		{"limits unknown key", "limits: {max_call_seconds: 5}\n" + okGroups, []string{"limits.max_call_seconds: unknown key"}},
		{"drop_scanners off", "sip: {drop_scanners: false}\n" + okGroups, nil},
		{"drop_scanners not a bool", "sip: {drop_scanners: yes}\n" + okGroups, []string{`sip.drop_scanners: expected true or false, found "yes"`}},
		{"audio ok", "audio: {jitter_min: 40ms, jitter_max: 300ms, max_talkers: 6, agc: false, comfort_noise: true}\n" + okGroups, nil},
		{"audio jitter inverted", "audio: {jitter_min: 300ms, jitter_max: 40ms}\n" + okGroups, []string{"audio.jitter_min: 300ms is above audio.jitter_max: 40ms"}},
		{"audio jitter out of range", "audio: {jitter_min: 1ms, jitter_max: 5s}\n" + okGroups, []string{"audio.jitter_min: 1ms must be from 10ms to 1s", "audio.jitter_max: 5s must be from 10ms to 1s"}},
		{"audio agc yes", "audio: {agc: yes}\n" + okGroups, []string{`audio.agc: expected true or false, found "yes"`}},
		{"audio max talkers", "audio: {max_talkers: 0}\n" + okGroups, []string{"audio.max_talkers: 0 must be from 1 to 32"}},
		{"answer delay ok", "sip: {answer_delay: 2s}\n" + okGroups, nil},
		{"answer delay negative", "sip: {answer_delay: -1s}\n" + okGroups, []string{"sip.answer_delay: -1s must be from 0s to 10s"}},
		{"answer delay too long", "sip: {answer_delay: 1m}\n" + okGroups, []string{"sip.answer_delay: 1m must be from 0s to 10s"}},
		{"user agent empty", "sip: {user_agent: \"\"}\n" + okGroups, []string{"sip.user_agent: must not be empty"}},
		{"user agent control", "sip: {user_agent: \"gb\\tx\"}\n" + okGroups, []string{`sip.user_agent: "gb\tx" must be printable ASCII`}},
		{"user agent non-ASCII", "sip: {user_agent: grüß}\n" + okGroups, []string{`sip.user_agent: "grüß" must be printable ASCII`}},

		// sip.trusted
		{"trusted good", `sip: {trusted: ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1", "192.0.2.7/24"]}` + "\n" + okGroups, nil},
		{"trusted empty", "sip: {trusted: []}\n" + okGroups, nil},
		{"trusted bad", `sip: {trusted: ["127.0.0.0/8", "::1/128", "10.0.0/8", "pbx.example.org", "10.0.0.0/33", "fe80::1%eth0", ""]}` + "\n" + okGroups, []string{
			`sip.trusted[2]: "10.0.0/8" is not a CIDR`,
			`sip.trusted[3]: "pbx.example.org" is not a CIDR`,
			`sip.trusted[4]: "10.0.0.0/33" is not a CIDR`,
			`sip.trusted[5]: "fe80::1%eth0" is not a CIDR`,
			`sip.trusted[6]: "" is not a CIDR`,
		}},
		{"trusted is text", "sip: {trusted: 10.0.0.0/8}\n" + okGroups, []string{`sip.trusted: expected a list, found "10.0.0.0/8"`}},
		// sip.assert_identity and sip.no_identity
		{"assert_identity good", `sip: {assert_identity: ["trusted", "10.0.0.5", "2001:db8::/64"], no_identity: ["192.0.2.7", "10.1.0.0/16"]}` + "\n" + okGroups, nil},
		{"assert_identity none", "sip: {assert_identity: [], no_identity: []}\n" + okGroups, nil},
		{"assert_identity bad", `sip: {assert_identity: ["trusted", "pbx.example.org", "all"], no_identity: ["trusted", "10.0.0.0/33"]}` + "\n" + okGroups, []string{
			`sip.assert_identity[1]: "pbx.example.org" is not a CIDR or "trusted"`,
			`sip.assert_identity[2]: "all" is not a CIDR or "trusted"`,
			`sip.no_identity[0]: "trusted" is not a CIDR`,
			`sip.no_identity[1]: "10.0.0.0/33" is not a CIDR`,
		}},
		// rtp.media_sources
		{"media sources good", `rtp: {media_sources: ["203.0.113.0/28", "198.51.100.9", "2001:db8::/48"]}` + "\n" + okGroups, nil},
		{"media sources bad", `rtp: {media_sources: ["203.0.113.0/28", "sbc.example.org", "10.0.0.0/33", ""]}` + "\n" + okGroups, []string{
			`rtp.media_sources[1]: "sbc.example.org" is not a CIDR or an IP address`,
			`rtp.media_sources[2]: "10.0.0.0/33" is not a CIDR or an IP address`,
			`rtp.media_sources[3]: "" is not a CIDR or an IP address`,
		}},

		// sip.users: names unique, passwords never echoed
		{"users good", `
sip:
  users:
    - {name: alice, password: "correct horse"}
    - {name: "1042", password: 12345678}
    - {name: "a-b_c.d!~*'()&=+$,;?/", password: "########"}
` + okGroups, nil},
		{"users bad", `
sip:
  users:
    - {password: "correct horse"}
    - {name: "al ice", password: "correct horse"}
    - {name: alice, password: "correct horse"}
    - {name: alice, password: "correct horse"}
    - {name: bob}
    - {name: carol, password: "short"}
    - {name: dave, password: "grüß gott!"}
    - {name: ` + strings.Repeat("e", 65) + `, password: "correct horse"}
    - {name: frank, password: "` + strings.Repeat("p", 129) + `"}
` + okGroups, []string{
			"sip.users[0].name: required",
			`sip.users[1].name: "al ice" may hold only letters, digits and -_.!~*'()&=+$,;?/`,
			`sip.users[3].name: "alice" repeats sip.users[2].name`,
			"sip.users[4].password: required",
			"sip.users[5].password: must be 8-128 printable ASCII characters",
			"sip.users[6].password: must be 8-128 printable ASCII characters",
			`sip.users[7].name: "` + strings.Repeat("e", 40) + `…" is longer than 64 characters`,
			"sip.users[8].password: must be 8-128 printable ASCII characters",
		}},
		{"users password is a list", "sip:\n  users:\n    - {name: a, password: [x]}\n" + okGroups, []string{"sip.users[0].password: expected a password, found a list"}},
		{"users item empty", "sip:\n  users:\n    -\n" + okGroups, []string{"sip.users[0]: expected a mapping of keys, found nothing"}},

		// sip.register
		{"register null", "sip: {register: null}\n" + okGroups, nil},
		{"register minimal", "sip: {register: {registrar: \"sip:pbx.example.org\", user: \"1042\"}}\n" + okGroups, nil},
		{"register full", `
sip:
  listen: ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]
  register:
    registrar: "SIP:[2001:db8::1]:5080"
    user: ext-1042
    password: "from the PBX"
    expires: 1h
    transport: tcp
` + okGroups, nil},
		{"register registrars", `
sip:
  register: {registrar: "sip:192.0.2.1:5060", user: "1"}
` + okGroups, nil},
		{"register empty", "sip: {register: {}}\n" + okGroups, []string{
			"sip.register.registrar: required",
			"sip.register.user: required",
		}},
		{"register is a list", "sip: {register: [1]}\n" + okGroups, []string{"sip.register: expected a mapping of keys, found a list"}},
		{"register is text", "sip: {register: pbx}\n" + okGroups, []string{`sip.register: expected a mapping of keys, found "pbx"`}},
		{"register limits", `
sip:
  listen: ["udp:127.0.0.1:5060"]
  register: {registrar: "sip:pbx", user: "a b", expires: 30s, transport: tcp, password: "tab\there"}
` + okGroups, []string{
			`sip.register.user: "a b" may hold only letters, digits and -_.!~*'()&=+$,;?/`,
			"sip.register.expires: 30s must be from 1m to 24h",
			"sip.register.transport: tcp needs a tcp entry in sip.listen",
			"sip.register.password: must be at most 128 printable ASCII characters",
		}},
		{"register expires", "sip: {register: {registrar: \"sip:pbx\", user: u, expires: 90500ms}}\n" + okGroups, []string{"sip.register.expires: 1m30.5s must be whole seconds"}},
		{"register expires long", "sip: {register: {registrar: \"sip:pbx\", user: u, expires: 25h}}\n" + okGroups, []string{"sip.register.expires: 25h must be from 1m to 24h"}},
		{"register transport", "sip: {register: {registrar: \"sip:pbx\", user: u, transport: tls}}\n" + okGroups, []string{`sip.register.transport: "tls" must be udp or tcp`}},
	}
	for _, r := range []struct{ uri, msg string }{
		{"pbx.example.org", `"pbx.example.org" must look like sip:host or sip:host:port, like sip:pbx.example.org:5060`},
		{"sip:", `"sip:" must look like sip:host or sip:host:port, like sip:pbx.example.org:5060`},
		{"sips:pbx.example.org", `"sips:pbx.example.org" must start with sip: (TLS is not supported yet)`},
		{"sip:1042@pbx.example.org", `"sip:1042@pbx.example.org" must not hold a user part: the extension goes in sip.register.user`},
		{"sip:pbx.example.org;transport=tcp", `"sip:pbx.example.org;transport=tcp" must not hold parameters: the transport goes in sip.register.transport`},
		{"sip:pbx_1", `"sip:pbx_1": host "pbx_1" must be an IP address or a host name`},
		{"sip:pbx:0", `"sip:pbx:0": port "0" must be 1-65535`},
		{"sip:pbx:", `"sip:pbx:": port "" must be 1-65535`},
		{"sip:pbx:65536", `"sip:pbx:65536": port "65536" must be 1-65535`},
		{"sip:2001:db8::1", `"sip:2001:db8::1": an IPv6 host goes in brackets, like sip:[2001:db8::1]:5060`},
		{"sip:[192.0.2.1]", `"sip:[192.0.2.1]": "192.0.2.1" is not an IPv6 address`},
		{"sip:[2001:db8::1", `"sip:[2001:db8::1" must look like sip:host or sip:host:port, like sip:pbx.example.org:5060`},
		{"sip:[2001:db8::1]5060", `"sip:[2001:db8::1]5060" must look like sip:host or sip:host:port, like sip:pbx.example.org:5060`},
		{"sip:[2001:db8::1]:x", `"sip:[2001:db8::1]:x": port "x" must be 1-65535`},
	} {
		tests = append(tests, struct {
			name string
			yaml string
			want []string
		}{"registrar " + r.uri, "sip: {register: {registrar: \"" + r.uri + "\", user: u}}\n" + okGroups, []string{"sip.register.registrar: " + r.msg}})
	}
	tests = append(tests, []struct {
		name string
		yaml string
		want []string
	}{
		// rtp.external_address
		{"rtp external address", "rtp: {external_address: media.example.org}\n" + okGroups, nil},
		{"rtp external address bad", "rtp: {external_address: \"203.0.113.5:4000\"}\n" + okGroups, []string{`rtp.external_address: "203.0.113.5:4000" must be an IP address or a host name`}},

		// rtp
		{"rtp address name", "rtp: {address: localhost}\n" + okGroups, []string{`rtp.address: "localhost" must be an IP address`}},
		{"rtp address IPv6", "rtp: {address: \"::\"}\n" + okGroups, nil},
		{"rtp ports out of range", "rtp: {port_min: 80, port_max: 70000}\n" + okGroups, []string{
			"rtp.port_min: 80 must be 1024-65535",
			"rtp.port_max: 70000 must be 1024-65535",
		}},
		{"rtp ports inverted", "rtp: {port_min: 30000, port_max: 20000}\n" + okGroups, []string{"rtp.port_min: 30000 is above rtp.port_max: 20000"}},
		{"rtp one odd port", "rtp: {port_min: 10001, port_max: 10001}\n" + okGroups, []string{"rtp.port_min: range 10001-10001 holds no even RTP/RTCP port pair"}},
		{"rtp one even port", "rtp: {port_min: 10000, port_max: 10000}\n" + okGroups, []string{"rtp.port_min: range 10000-10000 holds no even RTP/RTCP port pair"}},
		{"rtp odd then even", "rtp: {port_min: 10001, port_max: 10002}\n" + okGroups, []string{"rtp.port_min: range 10001-10002 holds no even RTP/RTCP port pair"}},
		{"rtp top port", "rtp: {port_min: 65535, port_max: 65535}\n" + okGroups, []string{"rtp.port_min: range 65535-65535 holds no even RTP/RTCP port pair"}},
		{"rtp smallest pair", "rtp: {port_min: 10000, port_max: 10001}\n" + okGroups, nil},
		{"rtp pair at the edges", "rtp: {port_min: 1024, port_max: 65535}\n" + okGroups, nil},
		{"rtp timeouts not positive", "rtp: {timeout: 0s, hold_timeout: -1m}\n" + okGroups, []string{
			"rtp.timeout: 0s must be above 0s",
			"rtp.hold_timeout: -1m must be above 0s",
		}},
		{"rtp hold shorter than timeout", "rtp: {timeout: 1m, hold_timeout: 10s}\n" + okGroups, nil},

		// log and prompts
		{"log format", "log: {format: xml}\n" + okGroups, []string{`log.format: "xml" must be text or json`}},
		{"log json", "log: {format: json}\n" + okGroups, nil},
		{"log callers", "log: {callers: full}\n" + okGroups, []string{`log.callers: "full" must be tag or masked`}},
		{"log callers masked", "log: {callers: masked}\n" + okGroups, nil},
		{"prompts language", "prompts: {language: fr}\n" + okGroups, []string{`prompts.language: "fr" is not built in (built in: en, es); record a whole set in prompts.dir/fr/`}},
		{"prompts language recorded", "prompts: {language: fr, dir: $TMP/prompts}\n" + okGroups, nil},
		{"prompts language code", "prompts: {language: EN}\n" + okGroups, []string{`prompts.language: "EN" must be a language code of 2 or 3 lower-case letters, like en or es`}},
		{"prompts languages", "prompts: {languages: [en, es]}\n" + okGroups, nil},
		{"prompts languages bad", "prompts: {languages: [es, de, es]}\n" + okGroups, []string{
			`prompts.languages[1]: "de" is not built in (built in: en, es); record a whole set in prompts.dir/de/`,
			`prompts.languages[2]: "es" repeats prompts.languages[0]`,
			`prompts.languages: must include prompts.language "en", the language of the welcome`,
		}},
		{"group language", "groups: [{name: a, member_pin: \"4821\", led_by: peer, language: es}, {name: b, member_pin: \"4822\", led_by: peer, language: pt}]\n", []string{`groups[1].language: "pt" is not built in (built in: en, es); record a whole set in prompts.dir/pt/`}},
		{"prompts dir ok", "prompts: {dir: $TMP/prompts}\n" + okGroups, nil},
		{"prompts dir missing", "prompts: {dir: $TMP/none}\n" + okGroups, []string{"prompts.dir: $TMP/none: no such directory"}},
		{"prompts dir is a file", "prompts: {dir: $TMP/file}\n" + okGroups, []string{"prompts.dir: $TMP/file: not a directory"}},

		// groups: names
		{"name missing", "groups:\n  - member_pin: \"4821\"\n", []string{"groups[0].name: required"}},
		{"name not printable", "groups:\n  - name: \"a\\x07b\"\n    member_pin: \"4821\"\n", []string{`groups[0].name: "a\ab" must be printable text`}},
		{"name 64 characters", "groups:\n  - name: " + strings.Repeat("é", 64) + "\n    member_pin: \"4821\"\n", nil},
		{"name 65 characters", "groups:\n  - name: " + strings.Repeat("n", 65) + "\n    member_pin: \"4821\"\n", []string{`groups[0].name: "` + strings.Repeat("n", 40) + `…" is 65 characters, at most 64`}},
		{"names repeat", `
groups:
  - name: Tuesday Circle
    member_pin: "1111"
  - name: tuesday circle
    member_pin: "2222"
  - name: TUESDAY CIRCLE
    member_pin: "3333"
`, []string{
			`groups[1].name: "tuesday circle" repeats groups[0].name`,
			`groups[2].name: "TUESDAY CIRCLE" repeats groups[0].name`,
		}},

		// groups: numbers
		{"numbers good", `
groups:
  - {name: A, member_pin: "1111", number: "1001"}
  - {name: B, member_pin: "2222", number: "+41441234567"}
  - {name: C, member_pin: "3333", number: "12345678901234567890"}
`, nil},
		{"numbers bad", `
groups:
  - {name: A, member_pin: "1111", number: "12a"}
  - {name: B, member_pin: "2222", number: "+"}
  - {name: C, member_pin: "3333", number: "123456789012345678901"}
  - {name: D, member_pin: "4444", number: "++1"}
  - {name: E, member_pin: "5555", number: "1001"}
  - {name: F, member_pin: "6666", number: 1001}
`, []string{
			`groups[0].number: "12a" must be 1-20 digits, optionally after a +`,
			`groups[1].number: "+" must be 1-20 digits, optionally after a +`,
			`groups[2].number: "123456789012345678901" must be 1-20 digits, optionally after a +`,
			`groups[3].number: "++1" must be 1-20 digits, optionally after a +`,
			`groups[5].number: "1001" repeats groups[4].number`,
		}},

		// groups: PINs, never echoed
		{"member PIN missing", "groups:\n  - name: G\n", []string{"groups[0].member_pin: required"}},
		{"member PIN bad", `
groups:
  - {name: A, member_pin: "123"}
  - {name: B, member_pin: "12345678901"}
  - {name: C, member_pin: "12a4"}
  - {name: D, member_pin: " 1234"}
  - {name: E, member_pin: 1234567890}
  - {name: F, member_pin: 0001}
`, []string{
			"groups[0].member_pin: must be 4-10 digits",
			"groups[1].member_pin: must be 4-10 digits",
			"groups[2].member_pin: must be 4-10 digits",
			"groups[3].member_pin: must be 4-10 digits",
		}},
		{"facilitator PIN bad", `
groups:
  - {name: A, member_pin: "1111", facilitator_pin: "12345"}
  - {name: B, member_pin: "2222", facilitator_pin: "12345678901"}
  - {name: C, member_pin: "3333", facilitator_pin: "123456", led_by: facilitator}
  - {name: D, member_pin: "4444", led_by: facilitator}
  - {name: E, member_pin: "5555", led_by: peer}
`, []string{
			"groups[0].facilitator_pin: must be 6-10 digits",
			"groups[1].facilitator_pin: must be 6-10 digits",
			"groups[3].facilitator_pin: required when led_by is facilitator",
		}},
		{"PINs repeat", `
groups:
  - {name: A, member_pin: "1111", facilitator_pin: "222222"}
  - {name: B, member_pin: "222222", facilitator_pin: "333333"}
  - {name: C, member_pin: "1111", facilitator_pin: "333333"}
  - {name: D, member_pin: "444444", facilitator_pin: "444444"}
`, []string{
			"groups[1].member_pin: same PIN as groups[0].facilitator_pin",
			"groups[2].member_pin: same PIN as groups[0].member_pin",
			"groups[2].facilitator_pin: same PIN as groups[1].facilitator_pin",
			"groups[3].facilitator_pin: same PIN as groups[3].member_pin",
		}},
		{"PIN unquoted zero is not the same PIN", `
groups:
  - {name: A, member_pin: 0123}
  - {name: B, member_pin: "123"}
  - {name: C, member_pin: "0083"}
`, []string{"groups[1].member_pin: must be 4-10 digits"}},

		// groups: the rest
		{"led_by", "groups:\n  - {name: G, member_pin: \"4821\", led_by: boss}\n", []string{`groups[0].led_by: "boss" must be facilitator or peer`}},
		{"led_by empty", "groups:\n  - {name: G, member_pin: \"4821\", led_by: \"\"}\n", []string{`groups[0].led_by: "" must be facilitator or peer`}},
		{"limits low", "groups:\n  - {name: G, member_pin: \"4821\", max_members: 0, share_minutes: 0, end_grace: -1s}\n", []string{
			"groups[0].max_members: 0 must be 1-1000",
			"groups[0].share_minutes: 0 must be 1-60",
			"groups[0].end_grace: -1s must be from 0s to 1h",
		}},
		{"limits high", "groups:\n  - {name: G, member_pin: \"4821\", max_members: 1001, share_minutes: 61, end_grace: 61m}\n", []string{
			"groups[0].max_members: 1001 must be 1-1000",
			"groups[0].share_minutes: 61 must be 1-60",
			"groups[0].end_grace: 1h1m must be from 0s to 1h",
		}},
		{"limits at the edges", `
groups:
  - {name: A, member_pin: "1111", max_members: 1, share_minutes: 1, end_grace: 0}
  - {name: B, member_pin: "2222", max_members: 1000, share_minutes: 60, end_grace: 1h}
`, nil},

		// Meeting hours.
		{"hours", `
groups:
  - {name: A, member_pin: "1111", timezone: America/New_York, meets: ["Tue 19:00-20:30", "thu 12:00-13:00", "Sat 23:00-01:00"]}
  - {name: B, member_pin: "2222", timezone: UTC, meets: ["Mon 10:00-11:00", "Mon 11:30-12:00"], open_early: 0s, overrun: 30m}
  - {name: C, member_pin: "3333", timezone: Asia/Kolkata}
`, nil},
		{"hours: no zone", "groups:\n  - {name: G, member_pin: \"4821\", meets: [\"Tue 19:00-20:30\"]}\n", []string{
			"groups[0].timezone: required when meets is set: an IANA time zone like America/New_York",
		}},
		{"hours: bad zone and slots", `
groups:
  - {name: G, member_pin: "4821", timezone: Mars/Olympus, meets: ["Tuesday 19:00-20:30", "Tue 19:00", "Wed 24:00-01:00", "Thu 10:00-10:00", "Fri 7:00-8:00"]}
`, []string{
			`groups[0].timezone: "Mars/Olympus" is not an IANA time zone (like America/New_York or UTC)`,
			`groups[0].meets[0]: "Tuesday 19:00-20:30": "Tuesday" is not a weekday (Mon, Tue, Wed, Thu, Fri, Sat, Sun)`,
			`groups[0].meets[1]: "Tue 19:00": hours must be START-END, e.g. 19:00-20:30`,
			`groups[0].meets[2]: "Wed 24:00-01:00": start: "24:00" is not a time of day (00:00-23:59)`,
			`groups[0].meets[3]: "Thu 10:00-10:00": the meeting ends when it starts`,
			`groups[0].meets[4]: "Fri 7:00-8:00": start: "7:00" is not HH:MM`,
		}},
		{"hours: long values", "groups:\n  - {name: G, member_pin: \"4821\", timezone: Europe/Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, meets: [\"Tue 19:00-20:30                                    x\"]}\n", []string{
			`groups[0].timezone: "Europe/Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…" is not an IANA time zone (like America/New_York or UTC)`,
			`groups[0].meets[0]: "Tue 19:00-20:30                         …" is not a slot like "Tue 19:00-20:30"`,
		}},
		{"hours: Local is the machine's", "groups:\n  - {name: G, member_pin: \"4821\", timezone: Local}\n", []string{
			`groups[0].timezone: "Local" is not an IANA time zone (like America/New_York or UTC)`,
		}},
		{"hours: overlapping", `
groups:
  - name: G
    member_pin: "4821"
    timezone: Europe/London
    meets: ["Tue 19:00-20:30", "Tue 20:00-21:00", "Wed 12:00-13:00", "Wed 13:20-14:00", "Sat 23:00-02:00", "Sun 01:00-03:00", "Sat 19:00-20:00"]
`, []string{
			`groups[0].meets[1]: "Tue 20:00-21:00" overlaps groups[0].meets[0] ("Tue 19:00-20:30"), counting open_early and overrun: write one meeting as one slot, or leave more time between them`,
			`groups[0].meets[3]: "Wed 13:20-14:00" overlaps groups[0].meets[2] ("Wed 12:00-13:00"), counting open_early and overrun: write one meeting as one slot, or leave more time between them`,
			`groups[0].meets[5]: "Sun 01:00-03:00" overlaps groups[0].meets[4] ("Sat 23:00-02:00"), counting open_early and overrun: write one meeting as one slot, or leave more time between them`,
		}},
		{"hours: over the week's end", `
groups:
  - {name: G, member_pin: "4821", timezone: UTC, meets: ["Sat 23:30-00:30", "Sun 00:20-01:00", "Sun 01:00-02:00"], open_early: 0s, overrun: 0s}
  - {name: H, member_pin: "5821", timezone: UTC, meets: ["Sat 23:50-00:10", "Sun 00:20-01:00"]}
`, []string{
			`groups[0].meets[1]: "Sun 00:20-01:00" overlaps groups[0].meets[0] ("Sat 23:30-00:30"), counting open_early and overrun: write one meeting as one slot, or leave more time between them`,
			`groups[1].meets[1]: "Sun 00:20-01:00" overlaps groups[1].meets[0] ("Sat 23:50-00:10"), counting open_early and overrun: write one meeting as one slot, or leave more time between them`,
		}},
		{"hours: margins", "groups:\n  - {name: G, member_pin: \"4821\", open_early: -1s, overrun: 121m}\n", []string{
			"groups[0].open_early: -1s must be from 0s to 2h",
			"groups[0].overrun: 2h1m must be from 0s to 2h",
		}},

		{"readings: good", `
prompts: {dir: $TMP/prompts, readings_max: 30m}
groups:
  - name: G
    member_pin: "4821"
    greeting: welcome.wav
    readings: [{key: 1, file: preamble.wav}, {key: 9, file: sub/closing.wav}]
    opening_reading: 9
`, nil},
		{"readings: bad", `
prompts: {dir: $TMP/prompts, readings_max: 31m}
groups:
  - name: G
    member_pin: "4821"
    greeting: ../welcome.wav
    readings: [{key: 0, file: a.wav}, {key: 10, file: b.wav}, {key: 2, file: c.wav}, {key: 2, file: /etc/x.wav}, {key: 3}]
    opening_reading: 4
`, []string{
			"prompts.readings_max: 31m must be from 1s to 30m",
			`groups[0].greeting: "../welcome.wav" must be a file name inside prompts.dir/readings/`,
			"groups[0].readings[0].key: 0 must be from 1 to 9 (**1 to **9)",
			"groups[0].readings[1].key: 10 must be from 1 to 9 (**1 to **9)",
			"groups[0].readings[3].key: 2 repeats groups[0].readings[2].key",
			`groups[0].readings[3].file: "/etc/x.wav" must be a file name inside prompts.dir/readings/`,
			"groups[0].readings[4].file: a file name in prompts.dir/readings/ is required",
			"groups[0].opening_reading: 4 is not a key of groups[0].readings",
		}},
		{"readings: short max", "prompts: {readings_max: 500ms}\n" + okGroups, []string{"prompts.readings_max: 500ms must be from 1s to 30m"}},

		// Problems everywhere are all reported at once.
		{"many problems", `
sip: {listen: [], user_agent: ""}
rtp: {address: x, port_min: 30000}
log: {format: xml}
groups:
  - {name: "", member_pin: "12", led_by: facilitator}
`, []string{
			"sip.listen: at least one listener is required",
			"sip.user_agent: must not be empty",
			`rtp.address: "x" must be an IP address`,
			"rtp.port_min: 30000 is above rtp.port_max: 20000",
			`log.format: "xml" must be text or json`,
			"groups[0].name: required",
			"groups[0].member_pin: must be 4-10 digits",
			"groups[0].facilitator_pin: required when led_by is facilitator",
		}},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.ReplaceAll(tt.yaml, "$TMP", tmp)
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.ReplaceAll(w, "$TMP", tmp)
			}
			c, err := Parse([]byte(in))
			assertErrors(t, err, want...)
			if err != nil && strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("an error shows the password of attendance.dsn: %v", err)
			}
			if (err == nil) != (c != nil) {
				t.Errorf("Parse returned config %v with error %v", c, err)
			}
		})
	}
}

// TestValidateInCode covers Validate on a configuration built in code, the
// way other packages' tests build one.
func TestValidateInCode(t *testing.T) {
	c := Default()
	g := DefaultGroup()
	g.Name, g.MemberPIN = "G", "4821"
	c.Groups = append(c.Groups, g)
	c.SIP.Listen = []string{"udp:127.0.0.1:0", "tcp:127.0.0.1:0"}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	c.Groups = append(c.Groups, g)
	assertErrors(t, c.Validate(),
		`groups[1].name: "G" repeats groups[0].name`,
		"groups[1].member_pin: same PIN as groups[0].member_pin")
}
