package config_test

import (
	"testing"
	"time"
)

func TestRemindAndEscalateValidation(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		key, msg   string // msg: substring; empty key = must be valid
	}{
		{"remind ok", base + `
    remind: {every: 1s, max: 1}`, "", ""},
		{"remind every too short", base + `
    remind: {every: 999ms, max: 3}`, "actions.deploy-prod.remind.every", "at least 1s"},
		{"remind every missing", base + `
    remind: {max: 3}`, "actions.deploy-prod.remind.every", "at least 1s"},
		{"remind max zero", base + `
    remind: {every: 1h, max: 0}`, "actions.deploy-prod.remind.max", "must be >= 1"},
		{"remind unknown key", base + `
    remind: {every: 1h, max: 1, times: 2}`, "actions.deploy-prod.remind.times", ""},
		{"escalate ok", base + `
    escalate: {after: 1s, notify: {slack: [C9], teams: ["19:x@thread.tacv2"]}}`, "", ""},
		{"escalate after too short", base + `
    escalate: {after: 0s, notify: {slack: [C9]}}`, "actions.deploy-prod.escalate.after", "at least 1s"},
		{"escalate nowhere", base + `
    escalate: {after: 2h}`, "actions.deploy-prod.escalate.notify", "names no conversation"},
		{"escalate empty target", base + `
    escalate: {after: 2h, notify: {slack: [""]}}`, "actions.deploy-prod.escalate.notify.slack[0]", "is empty"},
		{"escalate notify takes no requester", base + `
    escalate: {after: 2h, notify: {slack: [C9], requester: true}}`, "actions.deploy-prod.escalate.notify.requester", ""},
		{"notify requester false ok", base + `
    notify: {requester: false}`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.yaml, nil)
			if err != nil {
				if tc.key == "" {
					t.Fatalf("Load: %v", err)
				}
				for _, p := range problemsOf(t, err) {
					if p.Key == tc.key {
						return
					}
				}
				t.Fatalf("want %s, got:\n%v", tc.key, err)
			}
			wantProblem(t, c, tc.key, tc.msg)
		})
	}
}

func TestRemindBuildsPolicy(t *testing.T) {
	c := mustLoad(t, base+`
    notify: {slack: [C1]}
    remind: {every: 1h, max: 3}
    escalate: {after: 2h, notify: {slack: [C9], teams: ["19:x@thread.tacv2"]}}
  quiet:
    requesters: [{issuer: github, claims: {repository: "*"}}]
    approvers: {groups: [sre]}
    notify: {slack: [C1], requester: false}
`, nil)
	p, err := c.Policy()
	if err != nil {
		t.Fatal(err)
	}
	a := p.Actions["deploy-prod"]
	if a.Remind == nil || a.Remind.Every != time.Hour || a.Remind.Max != 3 {
		t.Errorf("remind: %+v", a.Remind)
	}
	if a.Escalate == nil || a.Escalate.After != 2*time.Hour || len(a.Escalate.Notify.Slack) != 1 || len(a.Escalate.Notify.Teams) != 1 {
		t.Errorf("escalate: %+v", a.Escalate)
	}
	if !a.NotifyRequester || p.Actions["quiet"].NotifyRequester {
		t.Errorf("notify.requester: default %v, false %v", a.NotifyRequester, p.Actions["quiet"].NotifyRequester)
	}
	if q := p.Actions["quiet"]; q.Remind != nil || q.Escalate != nil {
		t.Errorf("quiet has timers: %+v %+v", q.Remind, q.Escalate)
	}
}

func TestRemindWarnings(t *testing.T) {
	c := mustLoad(t, base+`
    ttl: 1h
    remind: {every: 1h, max: 1}
    escalate: {after: 2h, notify: {slack: [C9]}}
`, nil)
	got := map[string]bool{}
	for _, w := range c.Warnings() {
		got[w.Key] = true
	}
	for _, k := range []string{"actions.deploy-prod.remind", "actions.deploy-prod.escalate.notify.slack", "actions.deploy-prod.escalate.after"} {
		if !got[k] {
			t.Errorf("no warning at %s; got %v", k, got)
		}
	}
}
