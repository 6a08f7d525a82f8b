package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/policy"
)

// The JSON of an action's approvers.require rules, windows, freezes and
// break_glass, shared by `config check --output json` and `policy explain
// --output json`.
type (
	ruleJSON struct {
		Groups []string `json:"groups"`
		Min    int      `json:"min"`
	}
	// windowJSON is a window as the config writes it; days [] means every
	// day.
	windowJSON struct {
		Days []string `json:"days"`
		From string   `json:"from"`
		To   string   `json:"to"`
		TZ   string   `json:"tz"`
	}
	// freezeJSON's from and to are RFC 3339 times in UTC.
	freezeJSON struct {
		From   string `json:"from"`
		To     string `json:"to"`
		Reason string `json:"reason"`
	}
	breakGlassJSON struct {
		Groups        []string      `json:"groups"`
		Review        reviewersJSON `json:"review"`
		WithinSeconds int64         `json:"within_seconds"`
	}
	reviewersJSON struct {
		Groups       []string `json:"groups"`
		Users        []string `json:"users"`
		MinApprovals int      `json:"min_approvals"`
	}
)

func rulesJSON(rules []policy.Rule) []ruleJSON {
	out := []ruleJSON{}
	for _, r := range rules {
		out = append(out, ruleJSON{Groups: emptyIfNil(r.Groups), Min: max(r.Min, 1)})
	}
	return out
}

func windowsJSON(ws []policy.Window) []windowJSON {
	out := []windowJSON{}
	for _, w := range ws {
		j := windowJSON{Days: []string{}, From: clockText(w.From), To: clockText(w.To), TZ: "UTC"}
		for _, d := range w.Days {
			j.Days = append(j.Days, strings.ToLower(d.String()[:3]))
		}
		if w.Location != nil {
			j.TZ = w.Location.String()
		}
		out = append(out, j)
	}
	return out
}

func freezesJSON(fs []policy.Freeze) []freezeJSON {
	out := []freezeJSON{}
	for _, f := range fs {
		out = append(out, freezeJSON{From: f.From.UTC().Format(time.RFC3339), To: f.To.UTC().Format(time.RFC3339), Reason: f.Reason})
	}
	return out
}

// breakGlassOf is a's break_glass, nil when it has none.
func breakGlassOf(a *policy.Action) *breakGlassJSON {
	bg := a.BreakGlass
	if bg == nil {
		return nil
	}
	return &breakGlassJSON{
		Groups: emptyIfNil(bg.Groups),
		Review: reviewersJSON{
			Groups:       emptyIfNil(bg.Review.Groups),
			Users:        emptyIfNil(bg.Review.Users),
			MinApprovals: max(bg.Review.MinApprovals, 1),
		},
		WithinSeconds: int64(bg.Within.Seconds()),
	}
}

func clockText(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// reviewersText says who reviews a's break-glass requests and how soon,
// e.g. "1 approval from groups sre-leads, within 24h".
func reviewersText(bg *policy.BreakGlass) string {
	var who []string
	if len(bg.Review.Groups) > 0 {
		who = append(who, "groups "+strings.Join(bg.Review.Groups, ", "))
	}
	if len(bg.Review.Users) > 0 {
		who = append(who, "users "+strings.Join(bg.Review.Users, ", "))
	}
	n := max(bg.Review.MinApprovals, 1)
	plural := "s"
	if n == 1 {
		plural = ""
	}
	return termSafe(fmt.Sprintf("%d approval%s from %s, within %s", n, plural, strings.Join(who, " or "), config.FormatDuration(bg.Within)))
}

// breakGlassVerdict says whether a requester token with groups (read from
// groupsClaim, "" when its requesters entry names none) may break glass
// on a, which it may request when allowed, and why; the same conditions,
// in the same words, as the server's refusal.
func breakGlassVerdict(a *policy.Action, allowed bool, groupsClaim string, groups []string) (bool, string) {
	want := strings.Join(a.BreakGlass.Groups, ", ")
	switch {
	case !allowed:
		return false, "this token may not request " + a.Name + ", so it may not break glass on it either"
	case a.MayBreakGlass(groups):
		for _, g := range groups {
			if slices.Contains(a.BreakGlass.Groups, g) {
				return true, fmt.Sprintf("token group %q is one of break_glass.groups (%s)", g, want)
			}
		}
	case groupsClaim == "":
		return false, fmt.Sprintf("break-glass on %s is for members of %s, and this token carries no groups (its requesters entry names no groups_claim)", a.Name, want)
	case len(groups) == 0:
		return false, fmt.Sprintf("break-glass on %s is for members of %s; this token's %q claim names no groups", a.Name, want, groupsClaim)
	}
	return false, fmt.Sprintf("break-glass on %s is for members of %s; this token's %q claim names %s", a.Name, want, groupsClaim, strings.Join(groups, ", "))
}
