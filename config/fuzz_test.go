package config

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// fuzzSecrets are the PINs the seeds use. Each is a string no message of the
// package contains on its own.
// The password has a digit run, as keys are shown with digit runs masked:
// a password typed as a key is not a case messages can tell from a typo.
var fuzzSecrets = []string{"1234", "654321", pin, "4821", "917355", "pw-31415926-pw", "swordfish-27182818", "cluster-secret-16180339887498948482"}

// FuzzParse checks that Parse never panics, that what it accepts is valid,
// that what it rejects comes as Errors, and that no error repeats a seed PIN
// unless the input also holds that text somewhere it is not a secret.
func FuzzParse(f *testing.F) {
	f.Add(EmbeddedYAML())
	f.Add(commentedKey.ReplaceAll(EmbeddedYAML(), []byte("$1$2")))
	f.Add([]byte(`
sip:
  listen: ["udp:[::1]:0", "tcp:127.0.0.1:0"]
  external_address: pbx.example.org
rtp: {port_min: 10001, port_max: 10002, timeout: 0s}
groups:
  - &g
    name: Tuesday Grief Circle
    number: "1001"
    member_pin: "4821"
    facilitator_pin: "917355"
    led_by: facilitator
  - <<: *g
    name: Wednesday
    member_pin: "98765"
`))
	f.Add([]byte(`
sip:
  trusted: ["10.0.0.0/8", "192.0.2.1", "10.0.0/8"]
  users:
    - {name: alice, password: "pw-31415926-pw"}
    - {name: alice, password: [pw-31415926-pw]}
  register:
    registrar: "sip:[2001:db8::1]:5080"
    user: "1042"
    password: pw-31415926-pw
    expires: 5m
    transport: udp
rtp: {external_address: media.example.org}
groups:
  - {name: G, member_pin: "4821"}
`))
	f.Add([]byte(`
groups:
  - name: G
    member_pin: "4821"
    timezone: America/New_York
    meets: ["Tue 19:00-20:30", "sat 23:00-01:00", "Wed 7:00-8:00", "Thu 12:00-12:00", "Fri 12:00-13:00 x"]
    open_early: 90s
    overrun: 0s
  - {name: H, member_pin: "98765", timezone: "Etc/GMT+5", meets: "Tue 19:00-20:30"}
`))
	f.Add([]byte("sip: {register: {registrar: x, password:pw-31415926-pw}, users: [{password: *pw-31415926-pw}]}\n"))
	f.Add([]byte("groups:\n  - name: G\n    member_pin: [98765]\n    pin: 98765\n"))
	f.Add([]byte("groups:\n  - {name: G, member_pin:98765, led_by: boss}\n"))
	f.Add([]byte("groups:\n  - name: G\n    member_pin: *98765\n"))
	f.Add([]byte("groups:\n  - name: G\n    member_pin: \"98765\"\n  - name: g\n    member_pin: \"98765\"\n"))
	f.Add([]byte("groups: &l [{<<: *l}]\n"))
	f.Add([]byte("sip: [1]\nrtp: {port_min: abc}\n---\n"))
	f.Add([]byte(`
cluster:
  node: a
  redis: redis://groupbridge:swordfish-27182818@192.0.2.5:6379/0
  listen: 192.0.2.11:5070
  peers: [192.0.2.0/24]
  secret: "cluster-secret-16180339887498948482"
  proxies: [192.0.2.9]
groups:
  - {name: G, member_pin: "4821"}
`))
	f.Add([]byte("cluster: {redis: \"http://u:swordfish-27182818@h\", secret: [cluster-secret-16180339887498948482]}\n"))
	f.Add([]byte(""))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err == nil {
			if c == nil || len(c.Groups) == 0 {
				t.Fatalf("Parse accepted %q without groups: %+v", data, c)
			}
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted %q but Validate says %v", data, verr)
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("Parse error %v (%T) is not a non-empty Errors", err, err)
		}
		for _, e := range errs {
			if e.Message == "" {
				t.Fatalf("empty message in %v", err)
			}
		}
		shown := shownText(data)
		msg := err.Error()
		for _, s := range fuzzSecrets {
			if !strings.Contains(msg, s) {
				continue
			}
			// Numbers up to the input's size can be line numbers, list
			// indexes or lengths, not echoes.
			if n, _ := strconv.Atoi(s); n <= len(data) {
				continue
			}
			if !strings.Contains(shown, s) {
				t.Fatalf("error repeats the secret %s:\n%s\ninput: %q", s, msg, data)
			}
		}
	})
}

// shownText gathers every value of data that an error may rightly show: the
// scalar values outside member_pin, facilitator_pin, password, redis and
// secret, as written and as a
// number or duration would print. Keys are left out on purpose: messages
// mask digit runs in keys, so a PIN typed as a key must not show either.
func shownText(data []byte) string {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return ""
	}
	var b strings.Builder
	// Aliases are followed, as a value anchored under a PIN key may be
	// used elsewhere, but each node is walked once: alias-heavy inputs would
	// otherwise cost exponential time, and an alias cycle would never end.
	seen := make(map[*yaml.Node]bool)
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		n = resolve(n)
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if k := n.Content[i].Value; k == "member_pin" || k == "facilitator_pin" || k == "password" || k == "redis" || k == "secret" {
					continue
				}
				walk(n.Content[i+1])
			}
		case yaml.ScalarNode:
			b.WriteString(n.Value + "\n")
			var i int64
			if n.Decode(&i) == nil {
				b.WriteString(strconv.FormatInt(i, 10) + "\n")
			}
			if d, err := time.ParseDuration(n.Value); err == nil {
				b.WriteString(d.String() + "\n" + shortDuration(d) + "\n")
			}
		}
	}
	walk(&doc)
	return b.String()
}
