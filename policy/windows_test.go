package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return l
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// officeHours is Monday to Friday, 09:00 to 17:00 in loc.
func officeHours(loc *time.Location) Window {
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	return Window{Days: weekdays, From: 9 * 60, To: 17 * 60, Location: loc}
}

func TestWindowOpen(t *testing.T) {
	berlin, ny := mustLoc(t, "Europe/Berlin"), mustLoc(t, "America/New_York")
	office := officeHours(berlin)
	night := Window{Days: []time.Weekday{time.Saturday}, From: 22 * 60, To: 2 * 60, Location: berlin}
	early := Window{From: 0, To: 6 * 60, Location: berlin}
	nyOffice := officeHours(ny)
	tests := []struct {
		name string
		w    Window
		at   string
		want bool
	}{
		{"opens at from (inclusive)", office, "2026-03-02T08:00:00Z", true}, // Mon 09:00 CET
		{"closed just before", office, "2026-03-02T07:59:59Z", false},
		{"closes at to (exclusive)", office, "2026-03-02T16:00:00Z", false}, // 17:00 CET
		{"open just before to", office, "2026-03-02T15:59:59Z", true},
		{"closed on a weekend day", office, "2026-03-07T10:00:00Z", false},
		{"after summer time starts, 09:00 is 07:00 UTC", office, "2026-03-30T07:00:00Z", true},
		{"after summer time starts, 08:30 UTC is 10:30 local", office, "2026-03-30T14:59:00Z", true},
		{"after summer time starts, 15:00 UTC is 17:00: closed", office, "2026-03-30T15:00:00Z", false},
		{"after winter time starts, 09:00 is 08:00 UTC", office, "2026-10-26T07:30:00Z", false},
		{"after winter time starts, open at 08:00 UTC", office, "2026-10-26T08:00:00Z", true},
		{"across midnight: Saturday 23:00", night, "2026-03-07T22:00:00Z", true},
		{"across midnight: Sunday 01:59 belongs to Saturday's window", night, "2026-03-08T00:59:00Z", true},
		{"across midnight: Sunday 02:00 closed", night, "2026-03-08T01:00:00Z", false},
		{"across midnight: Sunday 22:00 does not open", night, "2026-03-08T21:30:00Z", false},
		{"across midnight: Friday 23:00 does not open", night, "2026-03-06T22:00:00Z", false},
		// 2026-03-29: Berlin skips 02:00-03:00, so 00:00-06:00 is five hours.
		{"spring forward: 05:59 CEST is open", early, "2026-03-29T03:59:00Z", true},
		{"spring forward: 06:00 CEST closes", early, "2026-03-29T04:00:00Z", false},
		{"spring forward: 00:00 CET opens", early, "2026-03-28T23:00:00Z", true},
		// 2026-10-25: Berlin repeats 02:00-03:00, so 00:00-06:00 is seven hours.
		{"fall back: 05:59 CET is open", early, "2026-10-25T04:59:00Z", true},
		{"fall back: 06:00 CET closes", early, "2026-10-25T05:00:00Z", false},
		{"fall back: 00:00 CEST opens", early, "2026-10-24T22:00:00Z", true},
		{"New York before summer time: 09:00 EST is 14:00 UTC", nyOffice, "2026-03-06T14:00:00Z", true},
		{"New York after summer time: 09:00 EDT is 13:00 UTC", nyOffice, "2026-03-09T13:00:00Z", true},
		{"New York after summer time: 21:00 UTC is 17:00 EDT", nyOffice, "2026-03-09T21:00:00Z", false},
		{"New York after winter time: 13:30 UTC is 08:30 EST", nyOffice, "2026-11-02T13:30:00Z", false},
		{"UTC by default", Window{From: 9 * 60, To: 10 * 60}, "2026-03-02T09:30:00Z", true},
		{"to 24:00 includes 23:59", Window{From: 12 * 60, To: 24 * 60}, "2026-03-02T23:59:59Z", true},
		{"to 24:00 excludes midnight", Window{From: 12 * 60, To: 24 * 60}, "2026-03-03T00:00:00Z", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.Open(utc(tt.at)); got != tt.want {
				t.Errorf("%s at %s: open %v, want %v", tt.w, tt.at, got, tt.want)
			}
		})
	}
}

func TestNextAllowed(t *testing.T) {
	office := officeHours(mustLoc(t, "Europe/Berlin"))
	tests := []struct {
		name string
		a    Action
		at   string
		want string
	}{
		{"no windows, no freezes: now", Action{}, "2026-03-07T03:00:00Z", "2026-03-07T03:00:00Z"},
		{"inside: now", Action{Windows: []Window{office}}, "2026-03-02T10:00:00Z", "2026-03-02T10:00:00Z"},
		{"Friday evening: Monday 09:00", Action{Windows: []Window{office}}, "2026-03-06T17:00:00Z", "2026-03-09T08:00:00Z"},
		{"over the spring change: Monday 09:00 CEST", Action{Windows: []Window{office}}, "2026-03-27T20:00:00Z", "2026-03-30T07:00:00Z"},
		{"over the autumn change: Monday 09:00 CET", Action{Windows: []Window{office}}, "2026-10-23T20:00:00Z", "2026-10-26T08:00:00Z"},
		{"freeze end", Action{Freezes: []Freeze{{From: utc("2026-12-20T00:00:00Z"), To: utc("2027-01-04T00:00:00Z")}}}, "2026-12-24T12:00:00Z", "2027-01-04T00:00:00Z"},
		{"chained freezes", Action{Freezes: []Freeze{
			{From: utc("2026-12-20T00:00:00Z"), To: utc("2026-12-27T00:00:00Z")},
			{From: utc("2026-12-26T00:00:00Z"), To: utc("2027-01-02T00:00:00Z")},
		}}, "2026-12-21T00:00:00Z", "2027-01-02T00:00:00Z"},
		{"freeze ends on a Saturday: the next window", Action{Windows: []Window{office}, Freezes: []Freeze{{From: utc("2027-01-01T00:00:00Z"), To: utc("2027-01-02T12:00:00Z")}}},
			"2027-01-01T10:00:00Z", "2027-01-04T08:00:00Z"},
		{"freeze ending inside a window: its end", Action{Windows: []Window{office}, Freezes: []Freeze{{From: utc("2027-01-04T00:00:00Z"), To: utc("2027-01-04T12:00:00Z")}}},
			"2027-01-04T09:00:00Z", "2027-01-04T12:00:00Z"},
		{"a freeze that ended is no freeze", Action{Freezes: []Freeze{{From: utc("2026-01-01T00:00:00Z"), To: utc("2026-01-02T00:00:00Z")}}}, "2026-01-02T00:00:00Z", "2026-01-02T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.NextAllowed(utc(tt.at)); !got.Equal(utc(tt.want)) {
				t.Errorf("next allowed after %s: %s, want %s", tt.at, got.UTC().Format(time.RFC3339), tt.want)
			}
		})
	}
}

func TestCheckWindow(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	a := &Action{Name: "deploy",
		Windows: []Window{{Days: []time.Weekday{time.Monday}, From: 9 * 60, To: 17 * 60, Location: berlin}},
		Freezes: []Freeze{{From: utc("2026-12-21T00:00:00Z"), To: utc("2026-12-29T00:00:00Z"), Reason: "year-end"}},
	}
	if err := a.CheckWindow(utc("2026-03-02T10:00:00Z")); err != nil {
		t.Fatalf("inside the window: %v", err)
	}
	var re *RefusalError
	err := a.CheckWindow(utc("2026-03-03T10:00:00Z"))
	if !errors.As(err, &re) || re.Code != CodeOutsideWindow {
		t.Fatalf("outside: %v, want outside_window", err)
	}
	if want := "2026-03-09 09:00 CET (2026-03-09T08:00:00Z)"; !strings.Contains(re.Message, want) || !strings.Contains(re.Message, "mon 09:00-17:00 Europe/Berlin") {
		t.Errorf("message %q does not say %q and the window", re.Message, want)
	}
	err = a.CheckWindow(utc("2026-12-21T09:00:00Z")) // a Monday, in the window
	if !errors.As(err, &re) || re.Code != CodeFrozen {
		t.Fatalf("frozen: %v, want frozen", err)
	}
	for _, want := range []string{"frozen until 2026-12-29T00:00:00Z", "year-end", "2027-01-04 09:00 CET"} {
		if !strings.Contains(re.Message, want) {
			t.Errorf("message %q does not say %q", re.Message, want)
		}
	}
}

func TestParseDayAndClock(t *testing.T) {
	if d, err := ParseDay("Sat"); err != nil || d != time.Saturday {
		t.Errorf("Sat: %v %v", d, err)
	}
	for _, bad := range []string{"", "saturday", "x"} {
		if _, err := ParseDay(bad); err == nil {
			t.Errorf("day %q accepted", bad)
		}
	}
	for s, want := range map[string]int{"00:00": 0, "09:30": 570, "24:00": 1440} {
		if m, err := ParseClock(s); err != nil || m != want {
			t.Errorf("%s: %d %v", s, m, err)
		}
	}
	for _, bad := range []string{"9:00", "24:01", "12:60", "ab:cd", "-1:00", "12:00:00"} {
		if _, err := ParseClock(bad); err == nil {
			t.Errorf("clock %q accepted", bad)
		}
	}
}
