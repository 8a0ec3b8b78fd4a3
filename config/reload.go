package config

import (
	"fmt"
	"reflect"
	"strings"
)

// What a reload (SIGHUP) does with a key: the value of its field's reload
// tag. Every field of Config and of the types below it carries one, except
// the sections (plain struct fields such as SIP), whose fields carry their
// own; TestEveryKeyHasAReloadClass enforces it. The tags are the one list
// of what a reload changes: App.Reload applies the live keys and names
// the changed restart keys in its log.
const (
	// ReloadLive keys take their new value at once, for what happens from
	// then on: calls and sessions that start, requests that arrive, the
	// next announcement, the next stop.
	ReloadLive = "live"
	// ReloadRestart keys are read only at start: a reload that changes one
	// says so in the log and the running value stays until a restart.
	ReloadRestart = "restart"
)

// ReloadChanges returns the keys whose values differ between running and
// next, named as in the file (sip.listen, limits.pin_budget, groups) and
// split by their reload tag. A field without a valid tag counts as
// restart: it is reported, never silently dropped.
func ReloadChanges(running, next *Config) (live, restart []string) {
	diffReload(reflect.ValueOf(running).Elem(), reflect.ValueOf(next).Elem(), "", &live, &restart)
	return live, restart
}

func diffReload(a, b reflect.Value, prefix string, live, restart *[]string) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key := prefix + yamlKey(f)
		class, tagged := f.Tag.Lookup("reload")
		if !tagged && f.Type.Kind() == reflect.Struct {
			diffReload(a.Field(i), b.Field(i), key+".", live, restart)
			continue
		}
		if reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			continue
		}
		if class == ReloadLive {
			*live = append(*live, key)
		} else {
			*restart = append(*restart, key)
		}
	}
}

// yamlKey is a field's key in the file.
func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

// ReloadKeys maps every key to its reload class: the sections' keys one by
// one, a list or an optional section (groups, sip.register) as one key, as
// ReloadChanges names them.
func ReloadKeys() map[string]string {
	keys := map[string]string{}
	walkReload(reflect.TypeFor[Config](), "", "", func(key, class string, top bool) {
		if top {
			keys[key] = class
		}
	})
	return keys
}

// reloadProblems names the fields below t that carry no valid reload tag,
// or whose tag differs from the field that holds them (a sip.register
// field cannot be live while sip.register needs a restart).
func reloadProblems(t reflect.Type) []string {
	var problems []string
	walkReload(t, "", "", func(key, problem string, top bool) {
		if !top {
			problems = append(problems, key+": "+problem)
		}
	})
	return problems
}

// walkReload visits every field below t. For a problem (a missing, unknown
// or inconsistent tag) it calls visit with the problem as class and top
// false; for every key ReloadChanges compares as one value it calls visit
// with the class and top true. outer is the class of the field that holds
// t, "" for Config and its sections.
func walkReload(t reflect.Type, prefix, outer string, visit func(key, class string, top bool)) {
	for i := range t.NumField() {
		f := t.Field(i)
		key := prefix + yamlKey(f)
		class, tagged := f.Tag.Lookup("reload")
		switch {
		case !tagged && outer == "" && f.Type.Kind() == reflect.Struct:
			walkReload(f.Type, key+".", "", visit) // a section
			continue
		case !tagged:
			visit(key, `no reload tag (reload:"live" or reload:"restart")`, false)
			continue
		case class != ReloadLive && class != ReloadRestart:
			visit(key, fmt.Sprintf("reload tag %q is neither %q nor %q", class, ReloadLive, ReloadRestart), false)
			continue
		case outer != "" && class != outer:
			visit(key, fmt.Sprintf("reload tag %q inside a %q key", class, outer), false)
			continue
		}
		if outer == "" {
			visit(key, class, true)
		}
		if inner := elemStruct(f.Type); inner != nil {
			walkReload(inner, key+".", class, visit)
		}
	}
}

// elemStruct is the struct type a field holds, directly or through
// pointers, slices and maps, or nil.
func elemStruct(t reflect.Type) reflect.Type {
	for {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			return t
		default:
			return nil
		}
	}
}
