package main

import (
	"fmt"
	"strings"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/policy"
)

// rulesNeeded says what the approvers.require rules of a pending request
// still need, e.g. "needs 1 more from security", or "" when nothing.
func rulesNeeded(rules []api.Rule) string {
	var parts []string
	for _, r := range rules {
		if r.Needs > 0 {
			parts = append(parts, fmt.Sprintf("needs %d more from %s", r.Needs, oneLine(strings.Join(r.Groups, " or "))))
		}
	}
	return strings.Join(parts, ", ")
}

// requireLines are an action's approvers.require rules for `policy
// explain`, one line each.
func requireLines(ap policy.Approvers) []string {
	var out []string
	for _, r := range ap.Require {
		out = append(out, fmt.Sprintf("require %d from %s (one rule per person)", max(r.Min, 1), termSafe(strings.Join(r.Groups, " or "))))
	}
	return out
}

// scheduleLines are an action's windows and freezes for `policy explain`,
// one line each.
func scheduleLines(a *policy.Action) []string {
	var out []string
	for _, w := range a.Windows {
		out = append(out, "window "+w.String())
	}
	for _, f := range a.Freezes {
		out = append(out, "freeze "+termSafe(f.String()))
	}
	return out
}
