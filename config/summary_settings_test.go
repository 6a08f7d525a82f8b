package config_test

import (
	"strings"
	"testing"
)

// TestSummaryPolicySettings: the summary lists an action's
// approvers.require rules, windows and freezes, reminders, escalation,
// whether the requester is told the decision, break_glass and the
// attestation audience; an action without them shows only the defaults.
func TestSummaryPolicySettings(t *testing.T) {
	c := mustLoad(t, `
requesters:
  - {name: github, issuer: "https://token.actions.githubusercontent.com", audience: signoff, person_claim: actor, groups_claim: groups}
actions:
  deploy-prod:
    requesters: [{issuer: github, claims: {repository: "acme/*"}}]
    approvers:
      groups: [sre, security]
      min_approvals: 2
      require: [{groups: [sre], min: 1}, {groups: [security], min: 1}]
    ttl: 1h
    windows: [{days: [mon, tue], from: "09:00", to: "17:00", tz: Europe/Berlin}]
    freeze: [{from: "2026-12-20T00:00:00Z", to: "2027-01-04T00:00:00+01:00", reason: year-end}]
    notify: {slack: [C1], requester: false}
    remind: {every: 30m, max: 3}
    escalate: {after: 45m, notify: {slack: [C2], teams: [T2]}}
    break_glass: {groups: [oncall], review: {groups: [sre-leads], users: [lee@example.com], min_approvals: 2}, within: 12h}
    attestation: {audience: deployer}
  rotate-keys:
    requesters: [{issuer: github, claims: {repository: acme/keys}}]
    approvers: {groups: [security]}
`, nil)
	sum := c.Summary()
	prod, rotate, ok := strings.Cut(sum[strings.Index(sum, "Action deploy-prod"):], "Action rotate-keys")
	if !ok {
		t.Fatalf("no rotate-keys section:\n%s", sum)
	}
	wantContains(t, "deploy-prod summary", prod,
		"  approved by    2 approvals from groups sre, security; self-approval not allowed\n"+
			"  require        1 from sre (one approval counts toward one rule)\n"+
			"                 1 from security (one approval counts toward one rule)\n",
		"  windows        mon,tue 09:00-17:00 Europe/Berlin\n",
		"  freeze         2026-12-20T00:00:00Z to 2027-01-03T23:00:00Z: year-end\n",
		"  reminds        every 30m, at most 3 times, in the card's thread\n",
		"  escalates      after 45m to slack C2; teams T2\n",
		"  requester      not told the decision (notify.requester is false)\n",
		"  break-glass    requesters with token groups oncall: approved at once, reviewed afterwards\n"+
			"                 review: 2 approvals from groups sre-leads or users lee@example.com, within 12h\n",
		"  attestation    audience deployer\n",
	)
	wantContains(t, "rotate-keys summary", rotate,
		"  requester      told the decision in a message to their linked chat accounts\n",
		"  attestation    audience ",
	)
	for _, absent := range []string{"require ", "windows ", "freeze ", "reminds ", "escalates ", "break-glass "} {
		if strings.Contains(rotate, absent) {
			t.Errorf("rotate-keys sets no %s, yet the summary shows it:\n%s", absent, rotate)
		}
	}
}
