package cards

import (
	"testing"

	"github.com/signoff-dev/signoff/approvals"
)

func TestRulesLine(t *testing.T) {
	m := Markup{Bold: func(s string) string { return "*" + s + "*" }, Escape: func(s string) string { return s }}
	rules := []approvals.RuleProgress{
		{Groups: []string{"sre"}, Min: 1, Have: 1},
		{Groups: []string{"security", "audit"}, Min: 2, Have: 1, Needs: 1},
	}
	if got, want := RulesLine(rules, m), "*Still:* needs 1 more from security or audit (1 of 2)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := RulesLine(rules[:1], m); got != "" {
		t.Errorf("all rules met: got %q, want nothing", got)
	}
}
