package config

import (
	"fmt"
	"slices"
	"time"

	"github.com/signoff-dev/signoff/policy"
)

// RequireConfig is one approvers.require rule: at least Min approvals from
// people in one of Groups (approver groups). One person's approval counts
// toward one rule only.
type RequireConfig struct {
	Groups []string `mapstructure:"groups"`
	Min    int      `mapstructure:"min"`
}

// WindowConfig is one entry of an action's windows: [From, To) on Days in
// TZ. From later than To spans midnight into the next day.
type WindowConfig struct {
	// Days the window opens on: mon, tue, wed, thu, fri, sat, sun; empty
	// means every day.
	Days []string `mapstructure:"days"`
	// From and To are "HH:MM" wall-clock times (To may be 24:00).
	From string `mapstructure:"from"`
	To   string `mapstructure:"to"`
	// TZ is an IANA time zone name (Europe/Berlin); default UTC.
	TZ string `mapstructure:"tz"`
}

// FreezeConfig is one entry of an action's freeze: [From, To), RFC 3339
// times with an offset, and why.
type FreezeConfig struct {
	From   string `mapstructure:"from"`
	To     string `mapstructure:"to"`
	Reason string `mapstructure:"reason"`
}

// validateRequire checks an action's approvers.require rules.
func validateRequire(ps *problems, key string, ap ApproversConfig) {
	for i, r := range ap.Require {
		rk := fmt.Sprintf("%s.approvers.require[%d]", key, i)
		if r.Min < 1 {
			ps.add(rk+".min", "must be >= 1, got %d", r.Min)
		}
		groups := distinctNonEmpty(r.Groups)
		if len(groups) == 0 {
			ps.add(rk+".groups", "no groups: name the approver groups this rule counts")
			continue
		}
		checkNonEmpty(ps, rk+".groups", r.Groups)
		// A member of a group counts only when eligible: through
		// approvers.groups or by name in approvers.users. With no group
		// of the rule among approvers.groups and no users named, nobody
		// eligible could be in it.
		eligible := slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(ap.Groups, g) })
		if !eligible && len(distinctNonEmpty(ap.Users)) == 0 {
			ps.add(rk+".groups", "none of %v is one of approvers.groups and no approvers.users are named: nobody eligible could count toward this rule, so requests could never be approved", groups)
		}
	}
}

// validateWindows checks an action's windows and freeze.
func validateWindows(ps *problems, key string, a ActionConfig) {
	for i, w := range a.Windows {
		wk := fmt.Sprintf("%s.windows[%d]", key, i)
		if _, err := buildWindow(w); err != nil {
			we := err.(*windowError)
			ps.add(wk+"."+we.key, "%s", we.msg)
		}
	}
	for i, f := range a.Freeze {
		fk := fmt.Sprintf("%s.freeze[%d]", key, i)
		from, err1 := parseFreezeTime(f.From)
		if err1 != nil {
			ps.add(fk+".from", "%v", err1)
		}
		to, err2 := parseFreezeTime(f.To)
		if err2 != nil {
			ps.add(fk+".to", "%v", err2)
		}
		if err1 == nil && err2 == nil && !to.After(from) {
			ps.add(fk+".to", "%s is not after from (%s): the freeze would be empty", f.To, f.From)
		}
	}
}

type windowError struct{ key, msg string }

func (e *windowError) Error() string { return e.key + ": " + e.msg }

// buildWindow turns a window's config into policy's; an error is a
// *windowError naming the key at fault.
func buildWindow(w WindowConfig) (policy.Window, error) {
	out := policy.Window{Location: time.UTC}
	for j, d := range w.Days {
		day, err := policy.ParseDay(d)
		if err != nil {
			return out, &windowError{fmt.Sprintf("days[%d]", j), err.Error()}
		}
		if !slices.Contains(out.Days, day) {
			out.Days = append(out.Days, day)
		}
	}
	var err error
	if out.From, err = policy.ParseClock(w.From); err != nil || w.From == "24:00" {
		return out, &windowError{"from", fmt.Sprintf("%q is not a time of day; use HH:MM, 00:00 to 23:59", w.From)}
	}
	if out.To, err = policy.ParseClock(w.To); err != nil {
		return out, &windowError{"to", err.Error()}
	}
	if out.From == out.To {
		return out, &windowError{"to", fmt.Sprintf("equals from (%s): the window would be empty; for a whole day write from: \"00:00\", to: \"24:00\"", w.To)}
	}
	if w.TZ != "" {
		loc, err := time.LoadLocation(w.TZ)
		if err != nil || w.TZ == "Local" {
			return out, &windowError{"tz", fmt.Sprintf("%q is not an IANA time zone name (such as Europe/Berlin or America/New_York)", w.TZ)}
		}
		out.Location = loc
	}
	return out, nil
}

func parseFreezeTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("required: an RFC 3339 time with an offset, such as 2026-12-20T00:00:00Z")
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time with an offset, such as 2026-12-20T00:00:00Z or 2026-12-20T00:00:00+01:00", s)
	}
	return t, nil
}

// buildRulesAndWindows sets out's approvers.require rules, windows and
// freezes from a (already validated).
func buildRulesAndWindows(out *policy.Action, a ActionConfig) error {
	for _, r := range a.Approvers.Require {
		out.Approvers.Require = append(out.Approvers.Require, policy.Rule{Groups: distinctNonEmpty(r.Groups), Min: r.Min})
	}
	for i, w := range a.Windows {
		pw, err := buildWindow(w)
		if err != nil { // Validate reports this; kept for safety
			return fmt.Errorf("actions.%s.windows[%d].%w", out.Name, i, err)
		}
		out.Windows = append(out.Windows, pw)
	}
	for i, f := range a.Freeze {
		from, err1 := parseFreezeTime(f.From)
		to, err2 := parseFreezeTime(f.To)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("actions.%s.freeze[%d]: bad from or to", out.Name, i)
		}
		out.Freezes = append(out.Freezes, policy.Freeze{From: from.UTC(), To: to.UTC(), Reason: f.Reason})
	}
	return nil
}

// rulesAndWindowsWarnings are the allowed but probably unmeant uses of
// approvers.require and windows: rule groups that are not approver groups,
// rules that ask for more approvals than min_approvals, windows that
// overlap. A freeze already over is fine: it no longer applies.
func rulesAndWindowsWarnings(ws *problems, key string, a ActionConfig) {
	ap := a.Approvers
	sum := 0
	for i, r := range ap.Require {
		sum += max(r.Min, 1)
		for _, g := range distinctNonEmpty(r.Groups) {
			if !slices.Contains(ap.Groups, g) {
				ws.add(fmt.Sprintf("%s.approvers.require[%d].groups", key, i), "%q is not one of approvers.groups: its members count toward this rule only when they are eligible otherwise (another approver group, or named in approvers.users)", g)
			}
		}
	}
	if sum > max(ap.MinApprovals, 1) {
		ws.add(key+".approvers.require", "the rules need %d approvals together, more than min_approvals (%d): requests need at least %d", sum, max(ap.MinApprovals, 1), sum)
	}
	var built []policy.Window
	for _, w := range a.Windows {
		pw, err := buildWindow(w)
		if err != nil {
			return // Validate reports it
		}
		built = append(built, pw)
	}
	for i := range built {
		for j := i + 1; j < len(built); j++ {
			if windowsOverlap(built[i], built[j]) {
				ws.add(fmt.Sprintf("%s.windows[%d]", key, j), "overlaps windows[%d]; the action may run when either is open, so one may be redundant", i)
			}
		}
	}
}

// windowsOverlap reports whether a and b are open at a same minute of a
// sample week (one without a daylight saving change), checked minute by
// minute: window bounds are whole minutes.
func windowsOverlap(a, b policy.Window) bool {
	start := time.Date(2026, time.January, 5, 0, 0, 0, 0, time.UTC) // a Monday, no DST nearby
	for t := start; t.Before(start.AddDate(0, 0, 8)); t = t.Add(time.Minute) {
		if a.Open(t) && b.Open(t) {
			return true
		}
	}
	return false
}
