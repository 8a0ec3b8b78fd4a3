package app

import (
	"testing"
	"time"

	"github.com/groupbridge/groupbridge/config"
)

// A reload applies the PIN budget at once, like the other limits: an
// operator under attack tightens it without a restart.
func TestReloadAppliesPINBudget(t *testing.T) {
	t.Parallel()
	yaml := testYAML("", "")
	a, _ := startApp(t, yaml)
	now := time.Now()
	a.budget.Fail("", now)
	a.budget.Fail("", now)
	if a.budget.UnderAttack("", now) {
		t.Fatal("under attack after 2 failures with pin_budget 6")
	}
	cfg, err := config.Parse([]byte(yaml + "\nlimits: {pin_budget: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if !a.budget.UnderAttack("", now) {
		t.Fatal("not under attack after 2 failures once pin_budget 1 was reloaded")
	}
}
