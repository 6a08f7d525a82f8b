package config_test

import (
	"strings"
	"testing"
	"time"
)

const breakGlassBase = `
requesters:
  - {name: github, issuer: "https://token.actions.githubusercontent.com", audience: signoff, person_claim: actor, groups_claim: groups}
actions:
  deploy-prod:
    requesters: [{issuer: github, claims: {repository: "acme/*"}}]
    approvers: {groups: [sre]}
`

func TestBreakGlassBuildsThePolicy(t *testing.T) {
	c := mustLoad(t, breakGlassBase+`
    break_glass:
      groups: [oncall]
      review: {groups: [sre-leads], users: [dana@example.com]}
`, nil)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if ws := c.Warnings(); len(ws) != 0 {
		t.Errorf("warnings %v", ws)
	}
	pol, err := c.Policy()
	if err != nil {
		t.Fatal(err)
	}
	a := pol.Actions["deploy-prod"]
	bg := a.BreakGlass
	if bg == nil || bg.Groups[0] != "oncall" || bg.Within != 24*time.Hour || bg.Review.MinApprovals != 1 || bg.Review.Groups[0] != "sre-leads" || bg.Review.Users[0] != "dana@example.com" {
		t.Fatalf("break_glass %+v", bg)
	}
	if !a.MayBreakGlass([]string{"dev", "oncall"}) || a.MayBreakGlass([]string{"sre"}) || a.MayBreakGlass(nil) {
		t.Error("MayBreakGlass")
	}
	review, err := pol.Action("deploy-prod:review")
	if err != nil || review.Name != "deploy-prod:review" || review.Approvers.AllowSelfApproval || len(review.Requesters) != 0 || review.OnApprove != nil || review.BreakGlass != nil {
		t.Fatalf("review action %+v %v", review, err)
	}
	if _, ok := pol.Actions["deploy-prod:review"]; ok {
		t.Error("the review action is listed among the declared actions")
	}
	if _, err := pol.Action("db-migrate:review"); err == nil {
		t.Error("a review action of an undeclared action")
	}
}

func TestBreakGlassRefusals(t *testing.T) {
	err := mustLoad(t, breakGlassBase+`
    break_glass:
      groups: [oncall]
`, nil).Validate()
	wantProblemKeys(t, err, []string{"actions.deploy-prod.break_glass.review"}, "break_glass.review: required")

	err = mustLoad(t, breakGlassBase+`
    break_glass:
      groups: [""]
      review: {min_approvals: 0}
      within: 0s
`, nil).Validate()
	wantProblemKeys(t, err, []string{
		"actions.deploy-prod.break_glass.groups",
		"actions.deploy-prod.break_glass.groups[0]",
		"actions.deploy-prod.break_glass.review",
		"actions.deploy-prod.break_glass.review.min_approvals",
		"actions.deploy-prod.break_glass.within",
	})

	err = mustLoad(t, breakGlassBase+`
    break_glass:
      groups: [oncall]
      review: {users: [dana@example.com], min_approvals: 2}
`, nil).Validate()
	wantProblemKeys(t, err, []string{"actions.deploy-prod.break_glass.review.min_approvals"})

	// The person reviewed never approves their own review: no such key.
	_, err = load(t, breakGlassBase+`
    break_glass:
      groups: [oncall]
      review: {groups: [sre-leads], allow_self_approval: true}
`, nil)
	if err == nil || !strings.Contains(err.Error(), "actions.deploy-prod.break_glass.review.allow_self_approval: unknown key") {
		t.Fatalf("allow_self_approval on a review: %v", err)
	}
}

func TestBreakGlassWarnings(t *testing.T) {
	c := mustLoad(t, strings.Replace(breakGlassBase, ", groups_claim: groups", "", 1)+`
    break_glass:
      groups: [oncall, sre-leads]
      review: {groups: [sre-leads]}
      within: 1m
`, nil)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, w := range c.Warnings() {
		keys = append(keys, w.Key+": "+w.Message)
	}
	got := strings.Join(keys, "\n")
	wantContains(t, "warnings", got,
		"break_glass.within: is 1m:",
		`break_glass.groups: "sre-leads" is also a review group`,
		"break_glass.groups: none of the action's requester issuers has a groups_claim",
	)
	c = mustLoad(t, breakGlassBase+`
    break_glass:
      groups: [oncall]
      review: {groups: [sre-leads]}
      within: 720h
`, nil)
	if ws := c.Warnings(); len(ws) != 1 || ws[0].Key != "actions.deploy-prod.break_glass.within" {
		t.Errorf("warnings %v", ws)
	}
}
