package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The decoder walks a yaml.Node tree against the Config struct by its yaml
// tags instead of calling yaml.Node.Decode on the whole tree: yaml.v3 stops
// at the first unknown key, and its type errors quote the offending value,
// which for a PIN would leak a secret. Walking ourselves lists every unknown
// key with its full path and lets each message decide what it may echo.

var (
	durationType = reflect.TypeFor[time.Duration]()
	groupType    = reflect.TypeFor[Group]()
	registerType = reflect.TypeFor[Register]()
	clusterType  = reflect.TypeFor[Cluster]()
)

const (
	// workBudget caps the nodes one decode may visit. Aliases and merges
	// can make a small file expand exponentially (the "billion laughs"
	// shape); real configurations visit a few hundred nodes.
	workBudget = 100_000
	// maxMergeDepth caps merges (<<) inside merged mappings.
	maxMergeDepth = 16
	// maxAliasHops bounds following alias nodes; yaml.v3 never chains them,
	// so this only guards against a malformed tree.
	maxAliasHops = 8
)

type decoder struct {
	errs    Errors
	failed  []string     // paths whose value could not be decoded
	budget  int          // nodes left to visit
	merging []*yaml.Node // mappings whose keys are being collected, to catch a merge of itself
}

type entry struct{ key, val *yaml.Node }

type field struct {
	index  int
	secret string // "" for an ordinary field, else what the secret is ("PIN", "password")
}

func newDecoder() *decoder { return &decoder{budget: workBudget} }

// add records a problem that leaves the value usable.
func (d *decoder) add(path, msg string) {
	d.errs = append(d.errs, &FieldError{Path: path, Message: msg})
}

// fail records a value that could not be decoded, so that Parse can drop the
// validation complaints its absence causes.
func (d *decoder) fail(path, msg string) {
	d.add(path, msg)
	d.failed = append(d.failed, path)
}

// failedAt reports whether path is, or lies under, a path that failed to decode.
func (d *decoder) failedAt(path string) bool {
	for _, p := range d.failed {
		if path == p || p == "" ||
			strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			return true
		}
	}
	return false
}

// spend takes one unit of work and reports whether decoding may go on.
func (d *decoder) spend() bool {
	d.budget--
	if d.budget == 0 {
		d.fail("", "the file expands to too much through aliases and merges")
	}
	return d.budget > 0
}

// parseDocument parses data into a node tree and returns its root mapping,
// or nil for an empty file. A problem that makes the whole file unusable is
// returned as the second result.
func parseDocument(data []byte) (*yaml.Node, *FieldError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(err)
	}
	// A second document would be ignored silently; say so instead, as it is
	// most likely two files pasted together. A bare trailing --- is harmless.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxError(err)
		}
		if len(next.Content) > 0 && !isNull(next.Content[0]) {
			return nil, &FieldError{Message: "the file holds more than one YAML document (another starts after ---)"}
		}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := resolve(doc.Content[0])
	switch {
	case root == nil || isNull(root):
		return nil, nil
	case root.Kind != yaml.MappingNode:
		return nil, &FieldError{Message: "the file must be a mapping of sections (sip:, rtp:, groups: ...), found " + describe(root, "")}
	}
	return root, nil
}

// syntaxError turns a yaml.v3 parse error into a FieldError. The parser's
// text can quote the input (an anchor name, for one: `password: *secret`),
// so what it quotes is hidden and digit runs are masked.
func syntaxError(err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return &FieldError{Message: "invalid YAML: " + maskDigits(maskQuoted(msg))}
}

// maskQuoted replaces the text between single quotes with "…". yaml.v3
// quotes input that way ("unknown anchor 'x' referenced"), and the quoted
// text may be a secret typed in the wrong place.
func maskQuoted(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '\'')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i+1:], '\'')
		if j < 0 {
			break
		}
		b.WriteString(s[:i+1] + "…'")
		s = s[i+1+j+1:]
	}
	b.WriteString(s)
	return b.String()
}

// resolve follows alias nodes to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for range maxAliasHops {
		if n == nil || n.Kind != yaml.AliasNode {
			return n
		}
		n = n.Alias
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// value decodes n into v. secret is non-empty when v holds a secret, so no
// message may show the value.
//
// An explicit null keeps the default for a scalar or a section and empties a
// list, as yaml.v3 does; so "rtp:" with every key commented out is fine. An
// optional section (a pointer, like sip.register) is switched off by null.
// An empty list is nil, like null: both mean "none".
func (d *decoder) value(n *yaml.Node, v reflect.Value, path, secret string) {
	if !d.spend() {
		return
	}
	n = resolve(n)
	if n == nil {
		d.fail(path, "aliases nested too deeply")
		return
	}
	if isNull(n) {
		if v.Kind() == reflect.Slice || v.Kind() == reflect.Pointer {
			v.SetZero()
		}
		return
	}
	switch {
	case v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct:
		// An optional section: given at all, it starts from its defaults.
		p := reflect.New(v.Type().Elem())
		switch p.Elem().Type() {
		case registerType:
			p.Elem().Set(reflect.ValueOf(DefaultRegister()))
		case clusterType:
			p.Elem().Set(reflect.ValueOf(DefaultCluster()))
		}
		d.value(n, p.Elem(), path, secret)
		v.Set(p)
	case v.Type() == durationType:
		if n.Kind == yaml.ScalarNode {
			// ParseDuration also takes a bare 0, which yaml.v3 would refuse.
			if dur, err := time.ParseDuration(n.Value); err == nil {
				v.SetInt(int64(dur))
				return
			}
		}
		d.mismatch(n, path, secret, "a duration like 90s, 2m or 1h")
	case v.Kind() == reflect.String:
		want := "text"
		if secret != "" {
			want = "a " + secret
		}
		if n.Kind != yaml.ScalarNode {
			d.mismatch(n, path, secret, want)
			return
		}
		if n.ShortTag() == "!!binary" {
			// Its value is the decoded bytes, not the text; no field wants that.
			d.fail(path, "expected "+want+", found !!binary data")
			return
		}
		// The literal text, whatever YAML would resolve it to: an unquoted
		// PIN 0123 stays "0123" (not octal 83), 1234 stays "1234".
		v.SetString(n.Value)
	case v.CanInt():
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
			var i int64
			if n.Decode(&i) == nil && !v.OverflowInt(i) {
				v.SetInt(i)
				return
			}
		}
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && secret == "" {
			if _, err := strconv.Atoi(n.Value); err == nil {
				d.fail(path, fmt.Sprintf("expected a whole number, found the quoted text %s (drop the quotes)", quote(n.Value)))
				return
			}
		}
		d.mismatch(n, path, secret, "a whole number")
	case v.Kind() == reflect.Bool:
		// Only YAML 1.2's true/false: yes/no/on/off are the classic YAML
		// trap (a country code "no" turning into false).
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" && (n.Value == "true" || n.Value == "false") {
			v.SetBool(n.Value == "true")
			return
		}
		d.mismatch(n, path, secret, "true or false")
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.mismatch(n, path, secret, "a list")
			return
		}
		if len(n.Content) == 0 {
			v.SetZero()
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			elem, itemPath := s.Index(i), fmt.Sprintf("%s[%d]", path, i)
			if elem.Type() == groupType {
				// Every group item starts from the group defaults.
				elem.Set(reflect.ValueOf(DefaultGroup()))
			}
			if r := resolve(item); elem.Kind() == reflect.Struct && r != nil && isNull(r) {
				// An empty item ("-" alone) is a mistake, not a defaults-only entry.
				d.mismatch(r, itemPath, secret, "a mapping of keys")
				continue
			}
			d.value(item, elem, itemPath, secret)
		}
		v.Set(s)
	case v.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.mismatch(n, path, secret, "a mapping of keys")
			return
		}
		d.mapping(n, v, path)
	default:
		// Only reachable when someone adds a field of a new type to Config.
		panic(fmt.Sprintf("config: %s has type %s, which the decoder does not handle", path, v.Type()))
	}
}

// mapping decodes the keys of n into the struct v, reporting unknown ones.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	fields := fieldsOf(v.Type())
	for _, e := range d.entries(n, path) {
		name := e.key.Value
		p := joinKey(path, name)
		f, ok := fields[name]
		if !ok {
			d.add(p, "unknown key")
			continue
		}
		d.value(e.val, v.Field(f.index), p, f.secret)
	}
}

// entries lists the key/value pairs of the mapping n in the order to apply
// them: merged ones (<<) first so that the mapping's own keys override them.
func (d *decoder) entries(n *yaml.Node, path string) []entry {
	for _, m := range d.merging {
		if m == n {
			d.fail(mergePath(path), "a merge includes the mapping it is in")
			return nil
		}
	}
	if len(d.merging) >= maxMergeDepth {
		d.fail(mergePath(path), "merges nested too deeply")
		return nil
	}
	d.merging = append(d.merging, n)
	defer func() { d.merging = d.merging[:len(d.merging)-1] }()

	var merged, own []entry
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend() {
			return nil
		}
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			found := "an alias chain"
			if k != nil {
				found = describe(k, "")
			}
			d.add(path, "a key must be a plain name, found "+found)
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(val, path)...)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.add(joinKey(path, k.Value), fmt.Sprintf("key given twice (lines %d and %d)", first.Line, k.Line))
			continue
		}
		seen[k.Value] = k
		own = append(own, entry{k, val})
	}
	return append(merged, own...)
}

// merge returns the entries a << key brings in: one mapping, or a list of
// mappings of which the earlier ones win (so they are applied last).
func (d *decoder) merge(val *yaml.Node, path string) []entry {
	src := resolve(val)
	if src != nil && src.Kind == yaml.MappingNode {
		return d.entries(src, path)
	}
	if src != nil && src.Kind == yaml.SequenceNode {
		var out []entry
		for i := len(src.Content) - 1; i >= 0; i-- {
			m := resolve(src.Content[i])
			if m == nil || m.Kind != yaml.MappingNode {
				d.fail(mergePath(path), "a merge needs a mapping or a list of mappings")
				continue
			}
			out = append(out, d.entries(m, path)...)
		}
		return out
	}
	d.fail(mergePath(path), "a merge needs a mapping or a list of mappings")
	return nil
}

// mismatch reports a value of the wrong kind.
func (d *decoder) mismatch(n *yaml.Node, path, secret, want string) {
	d.fail(path, "expected "+want+", found "+describe(n, secret))
}

// describe names what a node holds for an error message, quoting a scalar
// unless it is a secret.
func describe(n *yaml.Node, secret string) string {
	switch {
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case isNull(n):
		return "nothing"
	case secret != "":
		return "a value that is not shown"
	}
	return quote(n.Value)
}

// fieldsOf maps the yaml keys of struct type t to its fields.
func fieldsOf(t reflect.Type) map[string]field {
	fields := make(map[string]field, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		fields[name] = field{index: i, secret: sf.Tag.Get("secret")}
	}
	return fields
}

// joinKey appends a key to a dotted path. The key comes from the file and may
// be a typo holding a secret, so digit runs are masked and whatever follows a
// colon is cut: in flow style `{password:x}` (no space after the colon) is a
// key named "password:x". An odd key is quoted.
func joinKey(path, key string) string {
	if i := strings.IndexByte(key, ':'); i >= 0 {
		key = key[:i+1] + "…"
	}
	key = maskDigits(key)
	if !plainKey(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// mergePath is the path shown for a problem with a merge key (<<).
func mergePath(path string) string {
	if path == "" {
		return "<<"
	}
	return path + ".<<"
}

func plainKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// quote quotes a non-secret value for a message, shortened so a pasted
// paragraph does not flood the output.
func quote(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "…"
	}
	return strconv.Quote(s)
}
