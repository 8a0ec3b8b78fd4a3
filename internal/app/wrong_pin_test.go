package app

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/internal/softphone"
)

// A wrong PIN leaves a log line, so that an operator can answer "it never
// let me in": the caller as every other line names it, the try, and the
// group of the number dialled if it has one; never the digits typed.
func TestWrongPINLogged(t *testing.T) {
	t.Parallel()
	const groups = `
  - name: Monday
    number: "1001"
    member_pin: "1111"
  - name: Friday
    member_pin: "2222"
`
	a, logs := startApp(t, testYAML("", groups))
	rows := []struct {
		dialed, caller, group string
		typed                 []string // three wrong PINs end the call
	}{
		// Friday's PIN is wrong on Monday's number.
		{"1001", "+15550000415", "Monday", []string{"97531", "86420", "2222"}},
		// The shared access number belongs to no group.
		{"groupbridge", "+15550000416", "", []string{"97531", "86420", "13579"}},
	}
	for i, row := range rows { // in turn: the i-th call to end is row i's
		t.Run(row.dialed, func(t *testing.T) {
			p := dial(t, a, softphone.Config{Caller: row.caller, Dialed: row.dialed})
			ctx, cancel := testContext(30 * time.Second)
			defer cancel()
			for _, pin := range row.typed {
				if err := p.SendDigits(ctx, pin+"#", softphone.DigitRFC4733); err != nil {
					t.Fatal(err)
				}
			}
			logs.waitCount(t, 15*time.Second, i+1, "call not admitted", "outcome", "wrong-pin")
			var ended map[string]any
			for _, r := range logs.records(t) {
				if r["msg"] == "call not admitted" && r["outcome"] == "wrong-pin" {
					ended = r // the last one is this row's
				}
			}
			lines := wrongPINLines(t, logs, fmt.Sprint(ended["call"]))
			if len(lines) != len(row.typed) {
				t.Fatalf("%d wrong PIN lines for %d wrong PINs; log:\n%s", len(lines), len(row.typed), logs)
			}
			for j, r := range lines {
				if r["caller"] != ended["caller"] {
					t.Errorf("try %d names the caller %v, the call's other lines %v", j+1, r["caller"], ended["caller"])
				}
				if fmt.Sprint(r["try"]) != fmt.Sprint(j+1) {
					t.Errorf("line %d has try %v", j+1, r["try"])
				}
				if g, ok := r["group"]; (row.group == "" && ok) || (row.group != "" && g != row.group) {
					t.Errorf("try %d has group %v, want %q", j+1, g, row.group)
				}
				// The call ID is the bridge's own; everything else is
				// scanned for any 3 digits in a row of what was typed.
				delete(r, "call")
				delete(r, "time")
				line, _ := json.Marshal(r)
				for _, pin := range row.typed {
					for k := 0; k+3 <= len(pin); k++ {
						if strings.Contains(string(line), pin[k:k+3]) {
							t.Errorf("a wrong PIN line holds %q of the typed %q: %s", pin[k:k+3], pin, line)
						}
					}
				}
			}
		})
	}
}

// wrongPINLines are the "wrong PIN" records of one call, in order.
func wrongPINLines(t *testing.T, logs *syncBuffer, call string) []map[string]any {
	var out []map[string]any
	for _, r := range logs.records(t) {
		if r["msg"] == "wrong PIN" && fmt.Sprint(r["call"]) == call {
			out = append(out, r)
		}
	}
	return out
}
