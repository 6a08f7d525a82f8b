package policy

import (
	"strings"
	"testing"
)

// explainPolicy has actions with several rules per issuer, rules for other
// issuers only, a rule without claims and an action without rules.
func explainPolicy(t *testing.T) *Policy {
	t.Helper()
	return &Policy{Actions: map[string]*Action{
		"deploy-prod": testAction(t),
		"deploy-staging": {Name: "deploy-staging", Requesters: []RequesterRule{
			{Issuer: "gitlab", Claims: map[string]string{"project_path": "acme/*", "ref": "main"}},
			{Issuer: "github", Claims: map[string]string{"repository": "acme/*", "environment": "staging"}},
			{Issuer: "github", Claims: map[string]string{"repository": "*/infra", "ref": "refs/heads/*"}},
		}},
		"rotate-keys": {Name: "rotate-keys", Requesters: []RequesterRule{
			{Issuer: "gitlab", Claims: map[string]string{"project_path": "acme/keys"}},
		}},
		"anything-from-dev": {Name: "anything-from-dev", Requesters: []RequesterRule{{Issuer: "dev"}}},
		"nobody":            {Name: "nobody"},
	}}
}

// oracleAllowed is the rule of requester matching written as plainly as
// possible, independently of the code under test: some rule names the
// issuer and every one of its claims is present and matches its glob
// (checked by globOracle, not by Glob).
func oracleAllowed(a *Action, issuer string, claims map[string]string) bool {
	for _, r := range a.Requesters {
		if r.Issuer != issuer {
			continue
		}
		ok := true
		for k, want := range r.Claims {
			got, present := claims[k]
			if !present || !globOracle(want, got) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// globOracle is the glob matched by dynamic programming over bytes, not
// by Glob: * is any run of bytes, every other byte matches itself.
// m[i][j]: pattern[:i] matches value[:j].
func globOracle(pattern, value string) bool {
	m := make([][]bool, len(pattern)+1)
	for i := range m {
		m[i] = make([]bool, len(value)+1)
	}
	m[0][0] = true
	for i := 1; i <= len(pattern); i++ {
		for j := 0; j <= len(value); j++ {
			if pattern[i-1] == '*' {
				m[i][j] = m[i-1][j] || (j > 0 && m[i][j-1])
			} else {
				m[i][j] = j > 0 && m[i-1][j-1] && pattern[i-1] == value[j-1]
			}
		}
	}
	return m[len(pattern)][len(value)]
}

// checkRequesterVerdict fails t unless the explanation of (issuer, claims)
// for a agrees with the decision, with the oracle, and with itself: the
// matched rule is the first that matches, and every mismatch it reports is
// one.
func checkRequesterVerdict(t *testing.T, a *Action, issuer string, claims map[string]string) {
	t.Helper()
	v := a.ExplainRequester(issuer, claims)
	err := a.CheckRequester(issuer, claims)
	want := oracleAllowed(a, issuer, claims)
	if v.Allowed != (err == nil) || v.Allowed != want {
		t.Fatalf("%s, issuer %q, claims %q: explained allowed=%v, CheckRequester err=%v, oracle %v", a.Name, issuer, claims, v.Allowed, err, want)
	}
	if err != nil && (code(err) != CodeForbidden || err.Error() != v.Err().Error()) {
		t.Fatalf("CheckRequester refused with %v (code %s), the explanation with %v", err, code(err), v.Err())
	}
	if (v.Matched() != nil) != v.Allowed {
		t.Fatalf("allowed=%v but matched rule %+v", v.Allowed, v.Matched())
	}
	if v.Allowed && !strings.HasPrefix(v.Reason(), "rule ") {
		t.Fatalf("allowed, but the reason is %q", v.Reason())
	}
	for i, c := range v.Checks {
		if c.Index != i+1 {
			t.Fatalf("check %d has index %d", i, c.Index)
		}
		single := &Action{Name: a.Name, Requesters: []RequesterRule{c.Rule}}
		if c.Matches() != oracleAllowed(single, issuer, claims) {
			t.Fatalf("rule %d: explained matches=%v, oracle disagrees (claims %q)", c.Index, c.Matches(), claims)
		}
		if c.Matches() && i != len(v.Checks)-1 {
			t.Fatalf("rule %d matches, yet later rules were checked", c.Index)
		}
		if c.OtherIssuer != (c.Rule.Issuer != issuer) {
			t.Fatalf("rule %d: OtherIssuer=%v for rule issuer %q, token issuer %q", c.Index, c.OtherIssuer, c.Rule.Issuer, issuer)
		}
		if m := c.Mismatch; m != nil {
			got, present := claims[m.Claim]
			if m.Want != c.Rule.Claims[m.Claim] || m.Missing == present || (present && (got != m.Got || Glob(m.Want, got))) {
				t.Fatalf("rule %d: mismatch %+v is not one (claims %q)", c.Index, *m, claims)
			}
			if !v.Allowed && !strings.Contains(v.Err().Error(), m.String()) {
				t.Fatalf("refusal %q does not name %q", v.Err(), m)
			}
			for k := range c.Rule.Claims {
				if k < m.Claim && !globOracle(c.Rule.Claims[k], claims[k]) {
					t.Fatalf("rule %d: mismatch on %q reported, but %q before it fails too", c.Index, m.Claim, k)
				}
			}
		}
	}
	if !v.Allowed && len(a.Requesters) != len(v.Checks) {
		t.Fatalf("refused after checking %d of %d rules", len(v.Checks), len(a.Requesters))
	}
}

// TestExplainRequesterAgreesWithDecision: for every combination of issuer
// and claim values below (each claim absent or one of several values), on
// every action, the explanation's verdict equals CheckRequester's and an
// independent oracle's.
func TestExplainRequesterAgreesWithDecision(t *testing.T) {
	p := explainPolicy(t)
	values := map[string][]string{
		"repository":   {"acme/api", "evil/api", "acme/infra", "", "acme/"},
		"ref":          {"refs/heads/main", "refs/heads/dev", "main"},
		"environment":  {"staging", "production"},
		"project_path": {"acme/keys", "acme/web", "other/keys"},
	}
	keys := []string{"environment", "project_path", "ref", "repository"}
	var sets []map[string]string
	var build func(i int, cur map[string]string)
	build = func(i int, cur map[string]string) {
		if i == len(keys) {
			c := make(map[string]string, len(cur))
			for k, v := range cur {
				c[k] = v
			}
			sets = append(sets, c)
			return
		}
		build(i+1, cur) // absent
		for _, v := range values[keys[i]] {
			cur[keys[i]] = v
			build(i+1, cur)
			delete(cur, keys[i])
		}
	}
	build(0, map[string]string{})
	checked, allowed := 0, 0
	for _, issuer := range []string{"github", "gitlab", "dev", "", "GitHub"} {
		for _, claims := range sets {
			for _, a := range p.Actions {
				checkRequesterVerdict(t, a, issuer, claims)
				checked++
				if a.ExplainRequester(issuer, claims).Allowed {
					allowed++
				}
			}
		}
	}
	if allowed == 0 || allowed == checked {
		t.Fatalf("%d of %d claim sets allowed: the table does not exercise both verdicts", allowed, checked)
	}
	t.Logf("%d verdicts checked, %d allowed", checked, allowed)
}

func TestExplainRequesterReasons(t *testing.T) {
	p := explainPolicy(t)
	cases := []struct {
		action, issuer string
		claims         map[string]string
		allowed        bool
		reason         string
		checks         []string
	}{
		{"deploy-prod", "github", map[string]string{"repository": "acme/api", "ref": "refs/heads/main"}, true,
			`rule 1 matches: issuer "github", claims ref "refs/heads/main", repository "acme/*"`,
			[]string{"rule 1 matches"}},
		{"deploy-staging", "github", map[string]string{"repository": "acme/infra", "ref": "refs/heads/x"}, true,
			`rule 3 matches: issuer "github", claims ref "refs/heads/*", repository "*/infra"`,
			[]string{`rule 1 wants issuer "gitlab"`, `rule 2: claim "environment" is missing (want "staging")`, "rule 3 matches"}},
		{"deploy-staging", "github", map[string]string{"repository": "evil/api", "environment": "staging", "ref": "refs/tags/v1"}, false,
			`rule 2: claim "repository" is "evil/api", which does not match "acme/*"; rule 3: claim "ref" is "refs/tags/v1", which does not match "refs/heads/*"`,
			[]string{`rule 1 wants issuer "gitlab"`, `rule 2: claim "repository" is "evil/api", which does not match "acme/*"`, `rule 3: claim "ref" is "refs/tags/v1", which does not match "refs/heads/*"`}},
		{"rotate-keys", "github", map[string]string{"project_path": "acme/keys"}, false,
			`no rule names issuer "github" (the rules name "gitlab")`,
			[]string{`rule 1 wants issuer "gitlab"`}},
		{"anything-from-dev", "dev", nil, true, `rule 1 matches: issuer "dev", no claims required`, []string{"rule 1 matches"}},
		{"nobody", "github", map[string]string{"repository": "acme/api"}, false,
			`action "nobody" has no requester rules, so nobody may request it`, nil},
	}
	for _, c := range cases {
		v := p.Actions[c.action].ExplainRequester(c.issuer, c.claims)
		if v.Allowed != c.allowed || v.Reason() != c.reason {
			t.Errorf("%s for %s %q: allowed=%v reason %q, want allowed=%v reason %q", c.action, c.issuer, c.claims, v.Allowed, v.Reason(), c.allowed, c.reason)
		}
		var checks []string
		for _, ch := range v.Checks {
			checks = append(checks, ch.String())
		}
		if strings.Join(checks, "\n") != strings.Join(c.checks, "\n") {
			t.Errorf("%s for %s: checks\n%s\nwant\n%s", c.action, c.issuer, strings.Join(checks, "\n"), strings.Join(c.checks, "\n"))
		}
	}
	// The policy-wide explanation covers every action, in name order.
	var names []string
	for _, v := range p.ExplainRequester("github", map[string]string{"repository": "acme/api", "ref": "refs/heads/main"}) {
		names = append(names, v.Action)
	}
	if got := strings.Join(names, ","); got != "anything-from-dev,deploy-prod,deploy-staging,nobody,rotate-keys" {
		t.Errorf("actions explained: %s", got)
	}
}

// oracleMayApprove is eligibility written plainly, independently of the
// code under test.
func oracleMayApprove(a *Action, p Person) bool {
	for _, g := range a.Approvers.Groups {
		for _, pg := range p.Groups {
			if g != "" && g == pg {
				return true
			}
		}
	}
	for _, u := range a.Approvers.Users {
		if u != "" && (u == p.Subject || (p.Email != "" && !p.EmailUnverified && strings.ToLower(u) == strings.ToLower(p.Email))) {
			return true
		}
	}
	return false
}

func checkApproverVerdict(t *testing.T, a *Action, p Person) ApproverVerdict {
	t.Helper()
	v := a.ExplainApprover(p)
	if v.Eligible != a.MayApprove(p) || v.Eligible != oracleMayApprove(a, p) {
		t.Fatalf("%s, person %+v: explained eligible=%v, MayApprove %v, oracle %v", a.Name, p, v.Eligible, a.MayApprove(p), oracleMayApprove(a, p))
	}
	switch {
	case v.Group != "":
		if !v.Eligible || v.User != "" || v.Group == "" {
			t.Fatalf("verdict %+v", v)
		}
		found := false
		for _, g := range p.Groups {
			found = found || g == v.Group
		}
		if !found {
			t.Fatalf("eligible through group %q, which %+v is not in", v.Group, p)
		}
	case v.User != "":
		if !v.Eligible || (v.MatchedBy == MatchedBySubject && v.User != p.Subject) ||
			(v.MatchedBy == MatchedByEmail && !strings.EqualFold(v.User, p.Email)) ||
			(v.MatchedBy != MatchedBySubject && v.MatchedBy != MatchedByEmail) {
			t.Fatalf("verdict %+v for %+v", v, p)
		}
	default:
		if v.Eligible {
			t.Fatalf("eligible without a group or user entry: %+v", v)
		}
	}
	return v
}

func TestExplainApprover(t *testing.T) {
	a := testAction(t) // groups [sre], users [dana@example.com, sub-erin]
	cases := []struct {
		name   string
		p      Person
		group  string
		user   string
		by     string
		reason string
	}{
		{"group member", Person{Subject: "x", Groups: []string{"dev", "sre"}}, "sre", "", "", `member of approver group "sre"`},
		{"group beats name", Person{Subject: "sub-erin", Groups: []string{"sre"}}, "sre", "", "", `member of approver group "sre"`},
		{"by email, any case", Person{Subject: "x", Email: "Dana@Example.com"}, "", "dana@example.com", MatchedByEmail, `named in approvers.users as "dana@example.com" (their email)`},
		{"by subject", Person{Subject: "sub-erin"}, "", "sub-erin", MatchedBySubject, `named in approvers.users as "sub-erin" (their subject)`},
		{"subject exactly", Person{Subject: "SUB-ERIN"}, "", "", "", "in none of the approver groups and not named in approvers.users"},
		{"email the IdP does not vouch for", Person{Subject: "x", Email: "dana@example.com", EmailUnverified: true}, "", "", "",
			`in none of the approver groups; approvers.users names "dana@example.com", their email, but the identity provider does not mark it verified (see idp.email_verified)`},
		{"nothing", Person{}, "", "", "", "in none of the approver groups and not named in approvers.users"},
		{"empty group", Person{Subject: "x", Groups: []string{""}}, "", "", "", "in none of the approver groups and not named in approvers.users"},
	}
	for _, c := range cases {
		v := checkApproverVerdict(t, a, c.p)
		if v.Group != c.group || v.User != c.user || v.MatchedBy != c.by || v.Reason() != c.reason {
			t.Errorf("%s: %+v reason %q, want group %q user %q by %q reason %q", c.name, v, v.Reason(), c.group, c.user, c.by, c.reason)
		}
	}
	// Empty entries in the config never match an empty name.
	blank := &Action{Name: "blank", Approvers: Approvers{Groups: []string{""}, Users: []string{""}}}
	if v := checkApproverVerdict(t, blank, Person{Groups: []string{""}}); v.Eligible {
		t.Errorf("empty entries made an empty person eligible: %+v", v)
	}
	p := explainPolicy(t)
	if vs := p.ExplainApprover(Person{Groups: []string{"sre"}}); len(vs) != len(p.Actions) || vs[0].Action != "anything-from-dev" {
		t.Errorf("policy-wide approver explanation: %+v", vs)
	}
}

func TestSelfMatch(t *testing.T) {
	cases := []struct {
		person string
		p      Person
		want   string
	}{
		{"octocat", Person{Subject: "00u1", PreferredUsername: "OctoCat"}, SelfByPreferredUsername},
		{"octo@example.com", Person{Email: " octo@example.com "}, SelfByEmail},
		{"00u1", Person{Subject: "00u1", Email: "00u1"}, SelfBySubject},
		{" gh-octo ", Person{Subject: "00u1", Handles: []string{"other", "GH-OCTO"}}, SelfByPersonClaim},
		{"octocat", Person{Subject: "00u2", Email: "hubot@example.com", PreferredUsername: "hubot", Handles: []string{"hubot"}}, ""},
		{"", Person{}, ""},
		{"  ", Person{Subject: " "}, ""},
	}
	for _, c := range cases {
		got := SelfMatch(c.person, c.p)
		if got != c.want || IsSelf(c.person, c.p) != (c.want != "") {
			t.Errorf("SelfMatch(%q, %+v) = %q (IsSelf %v), want %q", c.person, c.p, got, IsSelf(c.person, c.p), c.want)
		}
	}
}

// FuzzExplainRequester: for any issuer, glob and claim values, the
// explanation agrees with the decision and the oracle.
func FuzzExplainRequester(f *testing.F) {
	f.Add("github", "acme/*", "acme/api", "refs/heads/main", uint8(3))
	f.Add("gitlab", "*/api", "evil/api", "main", uint8(1))
	f.Add("github", "a*b*c", "axxbyy", "", uint8(2))
	f.Add("dev", "*", "", "refs/heads/*", uint8(0))
	f.Add("github", "a*a", "a", "x*", uint8(3))
	f.Fuzz(func(t *testing.T, issuer, glob, repo, ref string, present uint8) {
		a := &Action{Name: "fuzz", Requesters: []RequesterRule{
			{Issuer: "github", Claims: map[string]string{"repository": glob, "ref": "refs/heads/main"}},
			{Issuer: issuer, Claims: map[string]string{"repository": glob}},
			{Issuer: "gitlab", Claims: map[string]string{"ref": ref, "repository": "acme/*"}},
			{Issuer: issuer, Claims: map[string]string{"ref": glob, "repository": repo}},
		}}
		claims := map[string]string{}
		if present&1 != 0 {
			claims["repository"] = repo
		}
		if present&2 != 0 {
			claims["ref"] = ref
		}
		for _, iss := range []string{issuer, "github", "gitlab"} {
			checkRequesterVerdict(t, a, iss, claims)
		}
		if Glob(glob, repo) != globOracle(glob, repo) {
			t.Fatalf("Glob(%q, %q) = %v, the oracle disagrees", glob, repo, Glob(glob, repo))
		}
	})
}

// FuzzExplainApprover: for any person and entries, the explanation agrees
// with MayApprove and the oracle, and SelfMatch with IsSelf.
func FuzzExplainApprover(f *testing.F) {
	f.Add("sre", "dana@example.com", "sub-1", "Dana@Example.com", "sre", "dana")
	f.Add("", "", "", "", "", "")
	f.Add("ops", "sub-1", "sub-1", "", "dev", " SUB-1 ")
	f.Fuzz(func(t *testing.T, group, user, sub, email, personGroup, requester string) {
		a := &Action{Name: "fuzz", Approvers: Approvers{Groups: []string{"admins", group}, Users: []string{user, "fixed@example.com"}}}
		p := Person{Subject: sub, Email: email, PreferredUsername: user, Groups: []string{personGroup}, Handles: []string{group}}
		checkApproverVerdict(t, a, p)
		// An email the IdP does not vouch for: never eligible by it.
		unvouched := p
		unvouched.EmailUnverified = true
		if v := checkApproverVerdict(t, a, unvouched); v.MatchedBy == MatchedByEmail {
			t.Fatalf("eligible by an unvouched email: %+v", v)
		}
		if IsSelf(requester, unvouched) != IsSelf(requester, p) {
			t.Fatalf("an unvouched email changed the self-approval check for %q, %+v", requester, p)
		}
		if (SelfMatch(requester, p) != "") != IsSelf(requester, p) {
			t.Fatalf("SelfMatch and IsSelf disagree for %q, %+v", requester, p)
		}
	})
}
