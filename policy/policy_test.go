package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, value string
		want           bool
	}{
		{"acme/*", "acme/api", true},
		{"acme/*", "acme/", true},
		{"acme/*", "acme", false},
		{"acme/*", "evil/acme/api", false},
		{"*/api", "acme/api", true},
		{"*/api", "acme/apis", false},
		{"refs/heads/main", "refs/heads/main", true},
		{"refs/heads/main", "refs/heads/main2", false},
		{"refs/heads/*", "refs/heads/feature/x", true},
		{"*", "", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*a", "a", false},
		{"", "", true},
		{"", "x", false},
		{"acme/[ab]pi", "acme/api", false}, // only * is special
		{"acme/?pi", "acme/api", false},
	}
	for _, c := range cases {
		if got := Glob(c.pattern, c.value); got != c.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", c.pattern, c.value, got, c.want)
		}
	}
}

func testAction(t *testing.T) *Action {
	t.Helper()
	svc, err := CompilePattern("[a-z-]+")
	if err != nil {
		t.Fatal(err)
	}
	return &Action{
		Name: "deploy-prod",
		Requesters: []RequesterRule{
			{Issuer: "github", Claims: map[string]string{"repository": "acme/*", "ref": "refs/heads/main"}},
			{Issuer: "gitlab", Claims: map[string]string{"project_path": "acme/*"}},
		},
		Params: map[string]Param{
			"service": {Required: true, Pattern: svc},
			"version": {Required: true, MaxLength: 8},
			"note":    {},
		},
		Approvers: Approvers{Groups: []string{"sre"}, Users: []string{"dana@example.com", "sub-erin"}, MinApprovals: 2},
		TTL:       time.Hour,
	}
}

func code(err error) Reason {
	var r *RefusalError
	if errors.As(err, &r) {
		return r.Code
	}
	return ""
}

func TestCheckRequester(t *testing.T) {
	a := testAction(t)
	cases := []struct {
		name    string
		issuer  string
		claims  map[string]string
		ok      bool
		mention string
	}{
		{"github main", "github", map[string]string{"repository": "acme/api", "ref": "refs/heads/main"}, true, ""},
		{"gitlab", "gitlab", map[string]string{"project_path": "acme/web"}, true, ""},
		{"other repo", "github", map[string]string{"repository": "evil/api", "ref": "refs/heads/main"}, false, `claim "repository" is "evil/api", which does not match "acme/*"`},
		{"other branch", "github", map[string]string{"repository": "acme/api", "ref": "refs/heads/dev"}, false, `"ref"`},
		{"missing claim", "github", map[string]string{"repository": "acme/api"}, false, `claim "ref" is missing`},
		{"unknown issuer", "dev", map[string]string{"repository": "acme/api", "ref": "refs/heads/main"}, false, `rule 1 wants issuer "github"`},
	}
	for _, c := range cases {
		err := a.CheckRequester(c.issuer, c.claims)
		if c.ok != (err == nil) {
			t.Errorf("%s: err = %v, want ok=%v", c.name, err, c.ok)
			continue
		}
		if err != nil && (code(err) != CodeForbidden || !strings.Contains(err.Error(), c.mention)) {
			t.Errorf("%s: %v (code %s), want forbidden mentioning %s", c.name, err, code(err), c.mention)
		}
	}
	empty := &Action{Name: "x"}
	if err := empty.CheckRequester("github", nil); code(err) != CodeForbidden {
		t.Errorf("action without requester rules allowed a request: %v", err)
	}
}

func TestCheckParams(t *testing.T) {
	a := testAction(t)
	cases := []struct {
		name     string
		params   map[string]string
		mentions []string
	}{
		{"valid", map[string]string{"service": "api", "version": "1.4.2"}, nil},
		{"valid optional", map[string]string{"service": "api", "version": "1", "note": "hi"}, nil},
		{"missing", map[string]string{"service": "api"}, []string{`param "version" is required`}},
		{"undeclared", map[string]string{"service": "api", "version": "1", "force": "1"}, []string{`param "force" is not declared`}},
		{"pattern", map[string]string{"service": "api2", "version": "1"}, []string{`param "service" value "api2" does not match`}},
		{"pattern is anchored", map[string]string{"service": "ok; rm -rf /", "version": "1"}, []string{`"service"`}},
		{"too long", map[string]string{"service": "api", "version": "123456789"}, []string{`param "version" is 9 bytes long; at most 8`}},
		{"default max length", map[string]string{"service": "api", "version": "1", "note": strings.Repeat("x", DefaultMaxParamLength+1)}, []string{`param "note" is 257 bytes`}},
		{"all at once", map[string]string{"service": "API", "force": "1"}, []string{`"force"`, `"service"`, `"version" is required`}},
	}
	for _, c := range cases {
		err := a.CheckParams(c.params)
		if len(c.mentions) == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if code(err) != CodeInvalidParams {
			t.Errorf("%s: err %v, want invalid_params", c.name, err)
			continue
		}
		for _, m := range c.mentions {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: %q does not mention %q", c.name, err, m)
			}
		}
	}
}

func TestUndeclaredAction(t *testing.T) {
	p := &Policy{Actions: map[string]*Action{"deploy-prod": testAction(t), "restart": {Name: "restart"}}}
	if _, err := p.Action("deploy-prod"); err != nil {
		t.Fatal(err)
	}
	_, err := p.Action("drop-db")
	if code(err) != CodeUnknownAction || !strings.Contains(err.Error(), "deploy-prod, restart") {
		t.Fatalf("undeclared action: %v", err)
	}
}

func TestMayApprove(t *testing.T) {
	a := testAction(t)
	cases := []struct {
		name string
		p    Person
		want bool
	}{
		{"group member", Person{Subject: "x", Groups: []string{"dev", "sre"}}, true},
		{"no group", Person{Subject: "x", Groups: []string{"dev"}}, false},
		{"named by email, any case", Person{Subject: "x", Email: "Dana@Example.com"}, true},
		{"named by subject", Person{Subject: "sub-erin"}, true},
		{"subject must match exactly", Person{Subject: "SUB-ERIN"}, false},
		{"nothing", Person{}, false},
		{"empty group does not match", Person{Subject: "x", Groups: []string{""}}, false},
	}
	for _, c := range cases {
		if got := a.MayApprove(c.p); got != c.want {
			t.Errorf("%s: MayApprove = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestIsSelf(t *testing.T) {
	cases := []struct {
		name   string
		person string
		p      Person
		want   bool
	}{
		{"username", "octocat", Person{Subject: "00u1", PreferredUsername: "OctoCat"}, true},
		{"email", "octo@example.com", Person{Email: "octo@example.com"}, true},
		{"subject", "00u1", Person{Subject: "00u1"}, true},
		{"someone else", "octocat", Person{Subject: "00u2", Email: "hubot@example.com", PreferredUsername: "hubot"}, false},
		{"unknown requester person never matches", "", Person{Subject: ""}, false},
	}
	for _, c := range cases {
		if got := IsSelf(c.person, c.p); got != c.want {
			t.Errorf("%s: IsSelf = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestTally(t *testing.T) {
	cases := []struct {
		min, approvals, denials int
		want                    Outcome
	}{
		{1, 0, 0, OutcomePending},
		{1, 1, 0, OutcomeApproved},
		{2, 1, 0, OutcomePending},
		{2, 2, 0, OutcomeApproved},
		{2, 3, 0, OutcomeApproved},
		{2, 1, 1, OutcomeDenied},
		{2, 5, 1, OutcomeDenied},
		{0, 1, 0, OutcomeApproved}, // a minimum below 1 is treated as 1
		{0, 0, 0, OutcomePending},
	}
	for _, c := range cases {
		if got := Tally(c.min, c.approvals, c.denials); got != c.want {
			t.Errorf("Tally(%d, %d, %d) = %s, want %s", c.min, c.approvals, c.denials, got, c.want)
		}
	}
}

func TestIsAuditor(t *testing.T) {
	p := &Policy{AuditorGroups: []string{"audit"}}
	if !p.IsAuditor([]string{"dev", "audit"}) || p.IsAuditor([]string{"dev"}) || p.IsAuditor(nil) {
		t.Fatal("IsAuditor wrong")
	}
}

func TestIsMultiFactor(t *testing.T) {
	cases := []struct {
		amr, strong []string
		want        bool
	}{
		{[]string{"mfa"}, nil, true},
		{[]string{"pwd", "otp"}, nil, true},
		{[]string{"pwd", "hwk"}, nil, true},
		{[]string{"hwk", "fpt"}, nil, true},
		{[]string{"otp"}, nil, false},               // one factor, however strong it sounds
		{[]string{"sms"}, nil, false},               // likewise
		{[]string{"hwk"}, nil, false},               // likewise
		{[]string{"otp", "sms"}, nil, false},        // two methods, one kind (held)
		{[]string{"pwd", "pin", "kba"}, nil, false}, // one kind (known)
		{[]string{"pwd", "geo", "rba"}, nil, false}, // context, not factors
		{[]string{"pwd", "fido"}, nil, false},       // not an RFC 8176 value
		{[]string{"hwk"}, []string{"hwk"}, true},    // accepted on its own by the action
		{[]string{"otp"}, []string{"hwk"}, false},
		{nil, nil, false},
	}
	for _, c := range cases {
		if got := IsMultiFactor(c.amr, c.strong); got != c.want {
			t.Errorf("IsMultiFactor(%v, %v) = %v, want %v", c.amr, c.strong, got, c.want)
		}
	}
}
