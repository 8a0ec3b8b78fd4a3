package config

import (
	"fmt"
	"strings"
	"testing"
)

// pin is a PIN value that appears nowhere in the package's own messages, so
// finding it in an error can only mean the error echoed a secret.
const pin = "98765"

// TestSecretsNeverEchoed feeds broken configurations that carry the PIN in
// secret places, in every broken shape we could think of, and checks that no
// error message repeats it.
func TestSecretsNeverEchoed(t *testing.T) {
	long := strings.Repeat(pin, 8) // 40 digits
	group := func(body string) string { return "groups:\n  - name: G\n" + body }
	inputs := []string{
		group("    member_pin: \"" + pin + "x\"\n"),
		group("    member_pin: " + pin + "x\n"),
		group("    member_pin: [" + pin + ", 1]\n"),
		group("    member_pin: [1, 2]\n    facilitator_pin: [" + pin + "]\n"),
		group("    member_pin: {a: " + pin + "}\n"),
		group("    member_pin: {" + pin + ": 1}\n"),
		group("    member_pin: \"" + long + "\"\n"),
		group("    member_pin: " + long + "\n"),
		group("    member_pin: " + pin + "\n    facilitator_pin: " + pin + "\n"),
		group("    member_pin: \"" + pin + "\"\n    led_by: facilitator\n    facilitator_pin: \"" + pin + "\"\n"),
		group("    member_pin: \""+pin+"\"\n") + "  - name: H\n    member_pin: \"" + pin + "\"\n",
		group("    member_pin: \"1111\"\n    facilitator_pin: \"" + pin + "\"\n"), // 5 digits: too short
		group("    member_pin: \"" + pin + "\"\n    member_pin: \"" + pin + "1\"\n"),
		group("    member_pin: \"" + pin + " \"\n"),
		group("    member_pin: \"+" + pin + "\"\n"),
		group("    member_pin: -" + pin + "\n"),
		group("    member_pin: 0x" + pin + "\n"),
		group("    member_pin: " + pin + ".5\n"),
		group("    member_pin: !!binary " + pin + "\n"),
		group("    member_pin: !!int " + pin + "x\n"),
		group("    member_pin: !" + pin + " x\n"),
		group("    member_pin: &a" + pin + " x\n    facilitator_pin: *a" + pin + "\n"),
		group("    member_pin: *" + pin + "\n"),         // PIN typed with the keypad's star
		group("    member_pin: " + pin + ": x\n"),       // syntax error next to the PIN
		group("    member_pin: \"" + pin + "\n"),        // unterminated quote
		group("    member_pin: '" + pin + "\n"),         // unterminated quote
		group("    member_pin: |\n      " + pin + "\n"), // block scalar with a newline
		group("\tmember_pin: " + pin + "\n"),            // tab indentation
		group("    member_pin " + pin + "\n"),           // missing colon
		group("    member_pin " + pin + ": 1\n"),        // missing colon, then a colon
		group("    member_pin=" + pin + ": 1\n"),
		group("    " + pin + ": member_pin\n"),
		"groups:\n  - {name: G, member_pin:" + pin + "}\n", // flow style, no space after colon
		"groups:\n  - {name: G, member_pin: " + pin + "x, led_by: boss}\n",
		"groups:\n  - {name: G, member_pin: [" + pin + "}\n",
		"groups: [{name: G, member_pin: " + pin + "}, {name: H, member_pin: " + pin + "}]\n",
		"groups:\n  - name: G\n    member_pin: \"" + pin + "\"\n---\nx: 1\n",
		"groups:\n  - &g\n    name: G\n    member_pin: \"" + pin + "\"\n  - <<: *g\n",
		"groups:\n  - name: G\n    member_pin: \"" + pin + "\"\n    <<: {member_pin: [" + pin + "]}\n",
		"groups:\n  - name: G\n    member_pin: \"" + pin + "\"\n    ? [" + pin + "]\n    : 1\n",
		"groups:\n  - name: G\n    member_pin: \"\\x" + pin + "\"\n",
		"groups:\n  - name: G\n    member_pin: \"" + pin + "\x00\"\n",
		"groups:\n  - name: G\n    member_pin: \"" + pin + "\xff\"\n",
		"groups:\n  - name: G\n    member_pin: " + pin + "\xff\n",
	}
	for i, in := range inputs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			c, err := Parse([]byte(in))
			if err == nil {
				t.Fatalf("Parse accepted a broken file: %+v\n%s", c, in)
			}
			if strings.Contains(err.Error(), pin) {
				t.Errorf("error repeats the PIN:\n%v\ninput:\n%s", err, in)
			}
		})
	}
}

// TestExpansionBounded checks that aliases and merges cannot make a small
// file cost exponential work (the "billion laughs" shape).
func TestExpansionBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 {max_members: 5}\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "a%d: &a%d {<<: [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("groups:\n  - <<: *a12\n    name: G\n    member_pin: \"4821\"\n")
	_, err := Parse([]byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "the file expands to too much through aliases and merges") {
		t.Fatalf("Parse of an exponential merge = %v", err)
	}

	// A sequence aliased into itself is a type error, not a loop.
	_, err = Parse([]byte("groups: &l [*l]\n"))
	assertErrors(t, err, "groups[0]: expected a mapping of keys, found a list")
}

// password is a password that appears nowhere in the package's messages.
const password = "correct-horse-battery"

// TestPasswordsNeverEchoed is TestSecretsNeverEchoed for the passwords of
// sip.users and sip.register, which are not all digits, so masking digit
// runs does not hide them.
func TestPasswordsNeverEchoed(t *testing.T) {
	user := func(body string) string { return "sip:\n  users:\n    - name: a\n" + body + okGroups }
	register := func(body string) string {
		return "sip:\n  register:\n    registrar: sip:pbx\n    user: u\n" + body + okGroups
	}
	inputs := []string{
		user("      password: [" + password + "]\n"),
		user("      password: {" + password + ": 1}\n"),
		user("      password: {a: " + password + "}\n"),
		user("      password: \"" + password + "\t\"\n"),
		user("      password: \"" + password + "é\"\n"),
		user("      password: \"" + strings.Repeat(password, 7) + "\"\n"),
		user("      password: !!binary " + password + "\n"),
		user("      password: *" + password + "\n"),
		user("      password: &" + password + " x\n      name: *" + password + "\n"),
		user("      password: \"" + password + "\n"),
		user("      password: '" + password + "\n"),
		user("      password: " + password + ": x\n"),
		user("      password " + password + "\n"),
		user("      password: " + password + "\n      password: " + password + "x\n"),
		"sip:\n  users:\n    - {name: a, password:" + password + "}\n" + okGroups,
		"sip:\n  users:\n    - {name: a, password: [" + password + "}\n" + okGroups,
		"sip:\n  users: [{name: a, password: " + password + "}, {name: a, password: x}]\n" + okGroups,
		register("    password: [" + password + "]\n"),
		register("    password: \"" + password + "\x00\"\n"),
		register("    password: \"" + password + "\xff\"\n"),
		register("    password: *" + password + "\n"),
		register("    password: " + password + "\n    expires: 1s\n"),
		"sip: {register: {registrar: x, password:" + password + "}}\n" + okGroups,
	}
	for i, in := range inputs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			c, err := Parse([]byte(in))
			if err == nil {
				t.Fatalf("Parse accepted a broken file: %+v\n%s", c, in)
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "horse") {
				t.Errorf("error repeats the password:\n%v\ninput:\n%s", err, in)
			}
		})
	}
}
