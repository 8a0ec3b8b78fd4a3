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
