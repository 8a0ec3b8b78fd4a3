package group

import "testing"

func TestRoleString(t *testing.T) {
	for _, tc := range []struct {
		r    Role
		want string
	}{
		{Member, "member"},
		{Facilitator, "facilitator"},
		{Role(7), "Role(7)"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("Role(%d).String() = %q, want %q", int(tc.r), got, tc.want)
		}
	}
}

func TestByNumber(t *testing.T) {
	groups := []Group{{Name: "a"}, {Name: "b", Number: "+1002"}, {Name: "c", Number: "2003"}}
	for _, tc := range []struct {
		dialled string
		want    int
	}{
		{"+1002", 1},
		{"2003", 2},
		{"", -1},       // no number: nobody's, even though group a has none either
		{"1002", -1},   // the + is part of the number
		{"9999", -1},   // the shared access number
		{"+10020", -1}, // no prefix match
	} {
		if got := ByNumber(groups, tc.dialled); got != tc.want {
			t.Errorf("ByNumber(%q) = %d, want %d", tc.dialled, got, tc.want)
		}
	}
	if got := ByNumber(nil, "1"); got != -1 {
		t.Errorf("ByNumber(nil) = %d, want -1", got)
	}
}
