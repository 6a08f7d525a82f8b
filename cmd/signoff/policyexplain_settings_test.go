package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// settingsConfig is a config whose deploy-prod has approvers.require
// rules, a window, a freeze, break_glass, reminders, escalation and an
// attestation audience; rotate-keys has none of them.
func settingsConfig(t *testing.T, issuer string) string {
	t.Helper()
	return writeConfig(t, `storage: {path: ./unused/signoff.db}
requesters:
  - {name: ci, issuer: "`+issuer+`", audience: signoff, person_claim: actor, groups_claim: groups}
actions:
  deploy-prod:
    requesters: [{issuer: ci, claims: {repository: "acme/*"}}]
    approvers:
      groups: [sre, security]
      min_approvals: 2
      require: [{groups: [sre], min: 1}, {groups: [security], min: 1}]
    ttl: 1h
    windows: [{days: [mon, tue], from: "09:00", to: "17:00", tz: Europe/Berlin}]
    freeze: [{from: "2026-12-20T00:00:00Z", to: "2027-01-04T00:00:00Z", reason: year-end}]
    remind: {every: 30m, max: 3}
    escalate: {after: 45m, notify: {teams: [T2]}}
    notify: {teams: [T1], requester: false}
    break_glass: {groups: [oncall], review: {groups: [sre-leads], min_approvals: 1}, within: 24h}
    attestation: {audience: deployer}
  rotate-keys:
    requesters: [{issuer: ci, claims: {repository: acme/keys}}]
    approvers: {groups: [security]}
    ttl: 1h
`)
}

// TestPolicyExplainSettingsJSON: each action entry carries its
// approvers.require rules, windows, freezes and break_glass (with whether
// this token may break glass); an action without them carries exactly the
// documented four keys. With --approver-claims, each rule says whether
// the approver counts toward it, and break_glass_review whether they
// could review.
func TestPolicyExplainSettingsJSON(t *testing.T) {
	iss := startExplainIssuer(t)
	cfg := settingsConfig(t, iss.url)

	type breakGlass struct {
		Groups []string
		Review struct {
			Groups, Users []string
			MinApprovals  int `json:"min_approvals"`
		}
		WithinSeconds int64 `json:"within_seconds"`
		Allowed       bool
		Reason        string
	}
	explain := func(groups []string, approver map[string]any) (map[string]json.RawMessage, map[string]json.RawMessage, string) {
		t.Helper()
		args := []string{"policy", "explain", "--config", cfg, "--claims", writeClaims(t, iss.claims(map[string]any{"groups": groups})), "--output", "json"}
		if approver != nil {
			args = append(args, "--approver-claims", writeClaims(t, approver))
		}
		code, out, stderr := runCmd(t, args...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var doc struct {
			Actions  []map[string]json.RawMessage
			Approver *struct{ Actions []map[string]json.RawMessage }
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Actions) != 2 {
			t.Fatalf("%v, %d actions:\n%s", err, len(doc.Actions), out)
		}
		wantKeys(t, "deploy-prod", doc.Actions[0], "action", "allowed", "break_glass", "freeze", "reason", "require", "rule", "windows")
		wantKeys(t, "rotate-keys", doc.Actions[1], "action", "allowed", "reason", "rule")
		if doc.Approver != nil {
			return doc.Actions[0], doc.Approver.Actions[0], out
		}
		return doc.Actions[0], nil, out
	}
	decode := func(raw json.RawMessage, v any) {
		t.Helper()
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
	}

	// A token in group oncall may break glass.
	prod, _, out := explain([]string{"ci-bots", "oncall"}, nil)
	var rules []map[string]any
	decode(prod["require"], &rules)
	if want := []map[string]any{{"groups": []any{"sre"}, "min": 1.0}, {"groups": []any{"security"}, "min": 1.0}}; !reflect.DeepEqual(rules, want) {
		t.Errorf("require = %v, want %v", rules, want)
	}
	var windows, freeze []map[string]any
	decode(prod["windows"], &windows)
	decode(prod["freeze"], &freeze)
	if want := []map[string]any{{"days": []any{"mon", "tue"}, "from": "09:00", "to": "17:00", "tz": "Europe/Berlin"}}; !reflect.DeepEqual(windows, want) {
		t.Errorf("windows = %v, want %v", windows, want)
	}
	if want := []map[string]any{{"from": "2026-12-20T00:00:00Z", "to": "2027-01-04T00:00:00Z", "reason": "year-end"}}; !reflect.DeepEqual(freeze, want) {
		t.Errorf("freeze = %v, want %v", freeze, want)
	}
	var bg breakGlass
	decode(prod["break_glass"], &bg)
	if !bg.Allowed || !strings.Contains(bg.Reason, `token group "oncall"`) || !reflect.DeepEqual(bg.Groups, []string{"oncall"}) ||
		!reflect.DeepEqual(bg.Review.Groups, []string{"sre-leads"}) || len(bg.Review.Users) != 0 || bg.Review.MinApprovals != 1 || bg.WithinSeconds != 86400 {
		t.Errorf("break_glass for an oncall token = %+v\n%s", bg, out)
	}

	// A token without the group may not, and the reason names its groups.
	prod, _, _ = explain([]string{"ci-bots"}, nil)
	bg = breakGlass{}
	decode(prod["break_glass"], &bg)
	if bg.Allowed || bg.Reason != `break-glass on deploy-prod is for members of oncall; this token's "groups" claim names ci-bots` {
		t.Errorf("break_glass for a ci-bots token = %+v", bg)
	}

	// Dana (sre, sre-leads) counts toward the sre rule, not the security
	// one, and may review; Erin (security) the other way round, and may
	// not review.
	type approverAction struct {
		Require []struct {
			Groups []string
			Min    int
			Counts bool
			Group  string
		}
		Review *struct {
			Allowed      bool
			Via, Entry   string
			MinApprovals int `json:"min_approvals"`
			Reason       string
		} `json:"break_glass_review"`
	}
	for _, c := range []struct {
		name         string
		groups       []string
		counts       [2]bool
		group        string
		review       bool
		reviewReason string
	}{
		{"dana", []string{"sre", "sre-leads"}, [2]bool{true, false}, "sre", true, `member of break_glass.review group "sre-leads"`},
		{"erin", []string{"security"}, [2]bool{false, true}, "security", false, "in none of the break_glass.review groups and not named in its users"},
	} {
		_, ap, out := explain([]string{"ci-bots"}, map[string]any{"sub": "00u-" + c.name, "groups": c.groups})
		var a approverAction
		b, _ := json.Marshal(ap)
		decode(b, &a)
		if len(a.Require) != 2 || a.Require[0].Counts != c.counts[0] || a.Require[1].Counts != c.counts[1] ||
			a.Require[0].Groups[0] != "sre" || a.Require[1].Min != 1 {
			t.Errorf("%s: require = %+v\n%s", c.name, a.Require, out)
		}
		for _, r := range a.Require {
			if r.Counts != (r.Group == c.group) || (!r.Counts && r.Group != "") {
				t.Errorf("%s: rule %v counts %v through group %q", c.name, r.Groups, r.Counts, r.Group)
			}
		}
		if a.Review == nil || a.Review.Allowed != c.review || a.Review.Reason != c.reviewReason || a.Review.MinApprovals != 1 {
			t.Errorf("%s: break_glass_review = %+v\n%s", c.name, a.Review, out)
		}
		if c.review && (a.Review.Via != "group" || a.Review.Entry != "sre-leads") {
			t.Errorf("%s: break_glass_review via %q entry %q", c.name, a.Review.Via, a.Review.Entry)
		}
	}

	// An action without rules or break_glass: the approver entry has
	// neither key.
	code, out, _ := runCmd(t, "policy", "explain", "--config", cfg, "--approver-claims", writeClaims(t, map[string]any{"sub": "00u-x"}), "--action", "rotate-keys", "--output", "json")
	if code != exitOK || strings.Contains(out, `"require"`) || strings.Contains(out, "break_glass_review") {
		t.Errorf("rotate-keys has neither rules nor break_glass, yet its approver entry shows them: exit %d\n%s", code, out)
	}
}

// TestPolicyExplainSettingsText: the text adds, for an action the token
// may request, whether it may break glass and who reviews; for an
// approver, whether they count toward each rule and could review.
func TestPolicyExplainSettingsText(t *testing.T) {
	iss := startExplainIssuer(t)
	cfg := settingsConfig(t, iss.url)
	dana := writeClaims(t, map[string]any{"sub": "00u-dana", "groups": []string{"sre", "sre-leads"}, "preferred_username": "octocat"})
	code, out, stderr := runCmd(t, "policy", "explain", "--config", cfg, "--claims", writeClaims(t, iss.claims(map[string]any{"groups": []string{"oncall"}})),
		"--approver-claims", dana, "--action", "deploy-prod")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantLines(t, out,
		"deploy-prod: may request",
		"  window mon,tue 09:00-17:00 Europe/Berlin",
		"  freeze 2026-12-20T00:00:00Z to 2027-01-04T00:00:00Z: year-end",
		`  break-glass: may break glass, token group "oncall" is one of break_glass.groups (oncall)`,
		"  break-glass review: 1 approval from groups sre-leads, within 24h",
		"deploy-prod: may approve",
		`  require 1 from sre (one rule per person): counts, member of "sre"`,
		"  require 1 from security (one rule per person): does not count, in none of its groups",
		`  break-glass review: may review, member of break_glass.review group "sre-leads"; min_approvals 1; never their own break-glass`,
		`  the requester's person "octocat" is this approver: they could not review this requester's break-glass`,
	)

	// Another token: no break-glass.
	code, out, _ = runCmd(t, "policy", "explain", "--config", cfg, "--claims", writeClaims(t, iss.claims(nil)), "--action", "deploy-prod")
	wantLines(t, out, "deploy-prod: may request",
		`  break-glass: may not break glass, break-glass on deploy-prod is for members of oncall; this token's "groups" claim names ci-bots`)
	if code != exitOK {
		t.Errorf("exit %d", code)
	}
}

// TestConfigCheckJSONPolicySettings: config check's JSON carries each
// action's approvers.require, windows, freeze, notify.requester, remind,
// escalate, break_glass and attestation audience; an action without them
// has [] and null, and its notify.requester is true.
func TestConfigCheckJSONPolicySettings(t *testing.T) {
	cfg := settingsConfig(t, "https://ci.example.com")
	code, out, stderr := runCmd(t, "config", "check", "--config", cfg, "--output", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	doc := jsonDoc(t, "config", out, configReportMembers...)
	actions := doc["actions"].([]any)
	prod, rotate := actions[0].(map[string]any), actions[1].(map[string]any)
	want := map[string]any{
		"windows":     []any{map[string]any{"days": []any{"mon", "tue"}, "from": "09:00", "to": "17:00", "tz": "Europe/Berlin"}},
		"freeze":      []any{map[string]any{"from": "2026-12-20T00:00:00Z", "to": "2027-01-04T00:00:00Z", "reason": "year-end"}},
		"remind":      map[string]any{"every_seconds": 1800.0, "max": 3.0},
		"escalate":    map[string]any{"after_seconds": 2700.0, "notify": map[string]any{"slack": []any{}, "teams": []any{"T2"}}},
		"break_glass": map[string]any{"groups": []any{"oncall"}, "review": map[string]any{"groups": []any{"sre-leads"}, "users": []any{}, "min_approvals": 1.0}, "within_seconds": 86400.0},
		"attestation": map[string]any{"audience": "deployer"},
	}
	for k, v := range want {
		if !reflect.DeepEqual(prod[k], v) {
			t.Errorf("deploy-prod %s = %#v, want %#v", k, prod[k], v)
		}
	}
	if got := prod["approvers"].(map[string]any)["require"]; !reflect.DeepEqual(got, []any{
		map[string]any{"groups": []any{"sre"}, "min": 1.0}, map[string]any{"groups": []any{"security"}, "min": 1.0},
	}) {
		t.Errorf("deploy-prod approvers.require = %#v", got)
	}
	if got := prod["notify"].(map[string]any)["requester"]; got != false {
		t.Errorf("deploy-prod notify.requester = %v, want false", got)
	}

	for k, v := range map[string]any{"windows": []any{}, "freeze": []any{}, "remind": nil, "escalate": nil, "break_glass": nil} {
		if !reflect.DeepEqual(rotate[k], v) {
			t.Errorf("rotate-keys %s = %#v, want %#v", k, rotate[k], v)
		}
	}
	if got := rotate["approvers"].(map[string]any)["require"]; !reflect.DeepEqual(got, []any{}) {
		t.Errorf("rotate-keys approvers.require = %#v, want []", got)
	}
	if rotate["notify"].(map[string]any)["requester"] != true || rotate["attestation"].(map[string]any)["audience"] == "" {
		t.Errorf("rotate-keys notify %v, attestation %v: want the defaults", rotate["notify"], rotate["attestation"])
	}
}
