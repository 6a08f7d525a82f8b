package cards

import (
	"strings"

	"github.com/signoff-dev/signoff/approvals"
)

// RulesLine is a pending card's line about its approvers.require rules:
// what each rule still needs ("needs 1 more from security"), or "" when
// there are none or all hold. The words are the same on every platform.
func RulesLine(rules []approvals.RuleProgress, m Markup) string {
	var missing []string
	for _, r := range rules {
		if r.Needs > 0 {
			missing = append(missing, m.escape(r.String()))
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return m.bold("Still:") + " " + strings.Join(missing, "; ")
}
