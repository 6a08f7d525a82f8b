package config_test

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRequireAndWindowsBuildThePolicy(t *testing.T) {
	c := mustLoad(t, rulesBase+`
    approvers:
      groups: [sre, security]
      min_approvals: 2
      require:
        - {groups: [sre], min: 1}
        - {groups: [security], min: 1}
    windows:
      - {days: [mon, Fri], from: "22:00", to: "02:00", tz: Europe/Berlin}
      - {from: "00:00", to: "24:00"}
    freeze:
      - {from: 2026-12-21T00:00:00+01:00, to: "2027-01-04T00:00:00Z", reason: year-end}
`, nil)
	pol, err := c.Policy()
	if err != nil {
		t.Fatal(err)
	}
	a := pol.Actions["deploy-prod"]
	if len(a.Approvers.Require) != 2 || a.Approvers.Require[1].Groups[0] != "security" || a.Approvers.Require[1].Min != 1 {
		t.Errorf("require %+v", a.Approvers.Require)
	}
	if len(a.Windows) != 2 || a.Windows[0].From != 22*60 || a.Windows[0].To != 2*60 || a.Windows[0].Location.String() != "Europe/Berlin" ||
		!slices.Equal(a.Windows[0].Days, []time.Weekday{time.Monday, time.Friday}) || a.Windows[1].Location != time.UTC || a.Windows[1].To != 24*60 {
		t.Errorf("windows %+v", a.Windows)
	}
	if len(a.Freezes) != 1 || !a.Freezes[0].From.Equal(time.Date(2026, 12, 20, 23, 0, 0, 0, time.UTC)) || a.Freezes[0].Reason != "year-end" {
		t.Errorf("freezes %+v", a.Freezes)
	}
	if ws := c.Warnings(); len(ws) != 1 || ws[0].Key != "actions.deploy-prod.windows[1]" {
		t.Errorf("warnings %v, want only the overlap of the two windows", ws)
	}
}

func TestRequireAndWindowsRefusals(t *testing.T) {
	err := mustLoad(t, rulesBase+`
    approvers:
      groups: [sre]
      require:
        - {groups: [sre], min: 0}
        - {groups: []}
        - {groups: [security], min: 1}
    windows:
      - {days: [someday], from: "09:00", to: "17:00"}
      - {from: "9am", to: "17:00"}
      - {from: "09:00", to: "25:00"}
      - {from: "09:00", to: "09:00"}
      - {from: "09:00", to: "17:00", tz: Mars/Olympus}
    freeze:
      - {from: "2027-01-04T00:00:00Z", to: "2027-01-04T00:00:00Z"}
      - {from: "2027-01-04T00:00:00Z", to: "2027-01-01T00:00:00Z"}
      - {from: "tomorrow", to: "2027-01-01"}
`, nil).Validate()
	wantProblemKeys(t, err, []string{
		"actions.deploy-prod.approvers.require[0].min",
		"actions.deploy-prod.approvers.require[1].groups",
		"actions.deploy-prod.approvers.require[1].min",
		"actions.deploy-prod.approvers.require[2].groups",
		"actions.deploy-prod.freeze[0].to",
		"actions.deploy-prod.freeze[1].to",
		"actions.deploy-prod.freeze[2].from",
		"actions.deploy-prod.freeze[2].to",
		"actions.deploy-prod.windows[0].days[0]",
		"actions.deploy-prod.windows[1].from",
		"actions.deploy-prod.windows[2].to",
		"actions.deploy-prod.windows[3].to",
		"actions.deploy-prod.windows[4].tz",
	},
		`"Mars/Olympus" is not an IANA time zone name`,
		`nobody eligible could count toward this rule`,
		`the freeze would be empty`,
		`"someday" is not a day`,
	)
}

func TestRequireAndWindowsWarnings(t *testing.T) {
	c := mustLoad(t, rulesBase+`
    approvers:
      groups: [sre]
      users: [alice@example.com]
      require:
        - {groups: [sre], min: 2}
        - {groups: [security], min: 1}
    windows:
      - {days: [mon], from: "09:00", to: "12:00"}
      - {days: [tue], from: "09:00", to: "12:00"}
    freeze:
      - {from: "2020-01-01T00:00:00Z", to: "2020-01-02T00:00:00Z", reason: long over}
`, nil)
	var got []string
	for _, w := range c.Warnings() {
		got = append(got, w.Key+": "+w.Message)
	}
	text := strings.Join(got, "\n")
	wantContains(t, "warnings", text,
		`actions.deploy-prod.approvers.require: the rules need 3 approvals together, more than min_approvals (1)`,
		`actions.deploy-prod.approvers.require[1].groups: "security" is not one of approvers.groups`,
	)
	if len(got) != 2 {
		t.Errorf("want exactly two warnings (windows on different days do not overlap; a freeze that ended is fine):\n%s", text)
	}
}
