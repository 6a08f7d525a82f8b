package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Refusal codes of CheckWindow.
const (
	// CodeOutsideWindow: the action has windows and none is open now.
	CodeOutsideWindow Reason = "outside_window"
	// CodeFrozen: a freeze of the action is in force now.
	CodeFrozen Reason = "frozen"
)

// Window is a weekly time span in which an action may be requested and
// run: [From, To) on each of Days, in Location. From and To are minutes
// after midnight in wall-clock time (To may be 24*60); when From is later
// than To the window runs past midnight into the next day, and Days name
// the day it starts. Wall-clock times follow daylight saving time as the
// standard library's time zone data says: on the day clocks go forward a
// 00:00–06:00 window is five hours long.
type Window struct {
	// Days it opens on; empty means every day.
	Days     []time.Weekday
	From, To int
	// Location is the window's time zone; nil means UTC.
	Location *time.Location
}

// Freeze is a span [From, To) in which an action may be neither requested
// nor run, whatever its windows say.
type Freeze struct {
	From, To time.Time
	Reason   string
}

// Days of the week as the config names them.
var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// ParseDay reads a day name: mon, tue, wed, thu, fri, sat or sun (any case).
func ParseDay(s string) (time.Weekday, error) {
	d, ok := dayNames[strings.ToLower(strings.TrimSpace(s))]
	if !ok {
		return 0, fmt.Errorf("%q is not a day; use mon, tue, wed, thu, fri, sat or sun", s)
	}
	return d, nil
}

// ParseClock reads a wall-clock time "HH:MM" (00:00 to 24:00) as minutes
// after midnight.
func ParseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if ok && len(h) == 2 && len(m) == 2 {
		hh, err1 := strconv.Atoi(h)
		mm, err2 := strconv.Atoi(m)
		if err1 == nil && err2 == nil && hh >= 0 && mm >= 0 && mm < 60 && (hh < 24 || (hh == 24 && mm == 0)) {
			return hh*60 + mm, nil
		}
	}
	return 0, fmt.Errorf("%q is not a time of day; use HH:MM, 00:00 to 24:00", s)
}

func (w Window) loc() *time.Location {
	if w.Location == nil {
		return time.UTC
	}
	return w.Location
}

func (w Window) opensOn(d time.Weekday) bool {
	if len(w.Days) == 0 {
		return true
	}
	for _, x := range w.Days {
		if x == d {
			return true
		}
	}
	return false
}

// span returns the instants the window opening on the calendar day
// (y, m, d) in its location opens and closes.
func (w Window) span(y int, m time.Month, d int) (time.Time, time.Time) {
	loc := w.loc()
	start := time.Date(y, m, d, 0, w.From, 0, 0, loc)
	endDay := d
	if w.To <= w.From {
		endDay++
	}
	return start, time.Date(y, m, endDay, 0, w.To, 0, 0, loc)
}

// Open reports whether the window is open at t.
func (w Window) Open(t time.Time) bool {
	local := t.In(w.loc())
	for back := 0; back <= 1; back++ {
		day := local.AddDate(0, 0, -back)
		if !w.opensOn(day.Weekday()) {
			continue
		}
		start, end := w.span(day.Year(), day.Month(), day.Day())
		if !t.Before(start) && t.Before(end) {
			return true
		}
	}
	return false
}

// nextOpen returns the first instant after t at which the window opens.
func (w Window) nextOpen(t time.Time) time.Time {
	local := t.In(w.loc())
	for ahead := 0; ahead <= 8; ahead++ {
		day := local.AddDate(0, 0, ahead)
		if !w.opensOn(day.Weekday()) {
			continue
		}
		if start, _ := w.span(day.Year(), day.Month(), day.Day()); start.After(t) {
			return start
		}
	}
	return time.Time{} // a window opens at least weekly; not reached
}

// InWindow reports whether one of a's windows is open at t; always true
// for an action without windows.
func (a *Action) InWindow(t time.Time) bool {
	if len(a.Windows) == 0 {
		return true
	}
	for _, w := range a.Windows {
		if w.Open(t) {
			return true
		}
	}
	return false
}

// FrozenAt returns the freeze of a in force at t, if any (the one ending
// last when several are).
func (a *Action) FrozenAt(t time.Time) (Freeze, bool) {
	var found Freeze
	ok := false
	for _, f := range a.Freezes {
		if !t.Before(f.From) && t.Before(f.To) && (!ok || f.To.After(found.To)) {
			found, ok = f, true
		}
	}
	return found, ok
}

// NextAllowed returns the first instant at or after t at which a is in a
// window and no freeze is in force: t itself when a may run at t.
func (a *Action) NextAllowed(t time.Time) time.Time {
	for range 10000 {
		moved := false
		if f, ok := a.FrozenAt(t); ok {
			t, moved = f.To, true
		}
		if !a.InWindow(t) {
			next := time.Time{}
			for _, w := range a.Windows {
				if o := w.nextOpen(t); !o.IsZero() && (next.IsZero() || o.Before(next)) {
					next = o
				}
			}
			t, moved = next, true
		}
		if !moved {
			return t
		}
	}
	return t
}

// CheckWindow decides whether a may be requested or run at now: a
// CodeFrozen refusal inside a freeze, a CodeOutsideWindow refusal when a
// has windows and none is open, nil otherwise. Each message says when the
// action may be asked again. It is the one check of windows and freezes,
// at create and before an approved action runs; a caller that is not
// bound by them (break-glass) skips it.
func (a *Action) CheckWindow(now time.Time) error {
	if f, ok := a.FrozenAt(now); ok {
		why := ""
		if f.Reason != "" {
			why = " (" + f.Reason + ")"
		}
		return refuse(CodeFrozen, "action %s is frozen until %s%s; it may be requested again from %s",
			a.Name, fmtInstant(f.To, time.UTC), why, a.describeAllowed(now))
	}
	if !a.InWindow(now) {
		return refuse(CodeOutsideWindow, "action %s may be requested only in its windows (%s); the next opens %s",
			a.Name, a.WindowsText(), a.describeAllowed(now))
	}
	return nil
}

// describeAllowed renders NextAllowed(now) in the first window's time zone
// and in UTC.
func (a *Action) describeAllowed(now time.Time) string {
	loc := time.UTC
	if len(a.Windows) > 0 {
		loc = a.Windows[0].loc()
	}
	return fmtInstant(a.NextAllowed(now), loc)
}

func fmtInstant(t time.Time, loc *time.Location) string {
	u := t.UTC().Format(time.RFC3339)
	if loc == time.UTC {
		return u
	}
	return t.In(loc).Format("2006-01-02 15:04 MST") + " (" + u + ")"
}

// String renders the window as the config writes it, e.g.
// "mon,tue 09:00-17:00 Europe/Berlin".
func (w Window) String() string {
	days := "every day"
	if len(w.Days) > 0 {
		names := make([]string, len(w.Days))
		for i, d := range w.Days {
			names[i] = strings.ToLower(d.String()[:3])
		}
		days = strings.Join(names, ",")
	}
	return fmt.Sprintf("%s %s-%s %s", days, fmtClock(w.From), fmtClock(w.To), w.loc().String())
}

// String renders the freeze, e.g. "2026-12-20T00:00:00Z to
// 2027-01-04T00:00:00Z: year-end".
func (f Freeze) String() string {
	s := f.From.UTC().Format(time.RFC3339) + " to " + f.To.UTC().Format(time.RFC3339)
	if f.Reason != "" {
		s += ": " + f.Reason
	}
	return s
}

// WindowsText lists a's windows on one line, "; " between them.
func (a *Action) WindowsText() string {
	parts := make([]string, len(a.Windows))
	for i, w := range a.Windows {
		parts[i] = w.String()
	}
	return strings.Join(parts, "; ")
}

func fmtClock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
