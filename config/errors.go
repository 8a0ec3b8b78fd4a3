package config

import (
	"strings"
)

// FieldError is one problem in a configuration, tied to the dotted path of the
// key it concerns (sip.listen[1], groups[0].member_pin). Path is empty for
// problems with the file as a whole, such as a YAML syntax error.
//
// Message never contains the value of a secret (a PIN): it names the rule the
// value breaks instead.
type FieldError struct {
	Path    string
	Message string
}

// Error returns "path: message", or only the message when Path is empty.
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Errors is every problem found in one configuration. Parse, LoadFile and
// Validate return it (LoadFile wrapped in a *FileError) so that a caller can
// list each problem on its own:
//
//	var errs config.Errors
//	if errors.As(err, &errs) {
//		for _, e := range errs { ... e.Path, e.Message ... }
//	}
type Errors []*FieldError

// Error returns one "path: message" line per problem.
func (errs Errors) Error() string {
	var b strings.Builder
	for i, e := range errs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// FileError is the error LoadFile returns for a file it could read but not
// accept. Err is the underlying Errors; errors.As reaches it through Unwrap.
type FileError struct {
	File string
	Err  error
}

// Error prefixes every line of the underlying error with the file name, so
// that each printed problem says where it is, like a compiler's output.
func (e *FileError) Error() string {
	lines := strings.Split(e.Err.Error(), "\n")
	for i, l := range lines {
		lines[i] = e.File + ": " + l
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the underlying error (an Errors).
func (e *FileError) Unwrap() error { return e.Err }

// maskDigits hides every run of four or more ASCII digits in s. It guards
// text that we echo but do not control (unknown key names, messages of the
// YAML parser), where a PIN typed in the wrong place could otherwise leak:
// `{member_pin:1234}` in flow style is a key named "member_pin:1234", and
// `member_pin: *1234` makes the parser complain about an anchor named 1234.
// PINs have at least four digits, so shorter runs cannot be one. A run right
// after "line " is a line number from the parser and is kept.
func maskDigits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		switch {
		case j == i:
			b.WriteByte(s[i])
			i++
			continue
		case j-i >= 4 && !strings.HasSuffix(s[:i], "line "):
			b.WriteString("####")
		default:
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}
