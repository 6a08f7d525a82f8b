package policy

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// This file holds the matchers behind the decisions in policy.go, written
// to return why: CheckRequester, MayApprove and IsSelf call them and keep
// only the verdict, and `signoff policy explain` renders the rest. The
// decision and its explanation are one computation, so they cannot
// disagree.

// ClaimMismatch is the first claim of a requester rule that a token does
// not satisfy.
type ClaimMismatch struct {
	// Claim is the claim's name.
	Claim string
	// Want is the rule's glob for it.
	Want string
	// Got is the token's value; empty when Missing.
	Got string
	// Missing is set when the token has no such claim.
	Missing bool
}

// String says what is wrong with the claim, e.g. `claim "ref" is
// "refs/heads/dev", which does not match "refs/heads/main"`.
func (m ClaimMismatch) String() string {
	if m.Missing {
		return fmt.Sprintf("claim %q is missing (want %q)", m.Claim, m.Want)
	}
	return fmt.Sprintf("claim %q is %q, which does not match %q", m.Claim, m.Got, m.Want)
}

// RuleCheck is how one requester rule judged a token.
type RuleCheck struct {
	// Index is the rule's position in the action's requesters, from 1.
	Index int
	// Rule is the rule itself.
	Rule RequesterRule
	// OtherIssuer is set when the rule names another issuer than the
	// token's; its claims were not looked at.
	OtherIssuer bool
	// Mismatch is the first claim, in name order, the token fails; nil
	// when the rule names the token's issuer and every claim matches.
	Mismatch *ClaimMismatch
}

// Matches reports whether the rule admits the token.
func (c RuleCheck) Matches() bool { return !c.OtherIssuer && c.Mismatch == nil }

// String is the check in a few words: `rule 2 wants issuer "gitlab"`,
// `rule 1: claim "ref" is missing (want "refs/heads/main")`, or `rule 1
// matches` (the wording of CheckRequester's refusals).
func (c RuleCheck) String() string {
	switch {
	case c.OtherIssuer:
		return fmt.Sprintf("rule %d wants issuer %q", c.Index, c.Rule.Issuer)
	case c.Mismatch != nil:
		return fmt.Sprintf("rule %d: %s", c.Index, c.Mismatch)
	}
	return fmt.Sprintf("rule %d matches", c.Index)
}

// RequesterVerdict is whether a token may request an action, and which
// rules decided it.
type RequesterVerdict struct {
	// Action is the action's name.
	Action string
	// Issuer is the token's issuer name (a requesters entry's name).
	Issuer string
	// Allowed is the decision: exactly when CheckRequester returns nil.
	Allowed bool
	// Checks holds the rules in order, each as it judged the token, up to
	// and including the first that matches (rules after it are not
	// checked). Empty when the action has no requester rules.
	Checks []RuleCheck
}

// Matched is the rule that admitted the token, or nil when it was
// refused.
func (v RequesterVerdict) Matched() *RuleCheck {
	if !v.Allowed || len(v.Checks) == 0 {
		return nil
	}
	c := v.Checks[len(v.Checks)-1]
	return &c
}

// IssuerNamed reports whether any rule names the token's issuer. When
// none does, the token's claims were not looked at.
func (v RequesterVerdict) IssuerNamed() bool {
	for _, c := range v.Checks {
		if !c.OtherIssuer {
			return true
		}
	}
	return false
}

// Reason says in one sentence why the verdict is what it is: the rule
// that matched, or for a refusal the first mismatching claim of every
// rule naming the token's issuer, or that no rule names it.
func (v RequesterVerdict) Reason() string {
	if m := v.Matched(); m != nil {
		return fmt.Sprintf("rule %d matches: issuer %q, %s", m.Index, m.Rule.Issuer, describeClaims(m.Rule.Claims))
	}
	if len(v.Checks) == 0 {
		return fmt.Sprintf("action %q has no requester rules, so nobody may request it", v.Action)
	}
	if !v.IssuerNamed() {
		var names []string
		for _, c := range v.Checks {
			if !slices.Contains(names, c.Rule.Issuer) {
				names = append(names, c.Rule.Issuer)
			}
		}
		sort.Strings(names)
		return fmt.Sprintf("no rule names issuer %q (the rules name %s)", v.Issuer, quoteAll(names))
	}
	var why []string
	for _, c := range v.Checks {
		if !c.OtherIssuer {
			why = append(why, c.String())
		}
	}
	return strings.Join(why, "; ")
}

// Err is the refusal CheckRequester returns for the verdict, nil when it
// is allowed. Its message names every rule and why it did not match.
func (v RequesterVerdict) Err() error {
	if v.Allowed {
		return nil
	}
	if len(v.Checks) == 0 {
		return refuse(CodeForbidden, "action %q has no requester rules, so nobody may request it", v.Action)
	}
	why := make([]string, len(v.Checks))
	for i, c := range v.Checks {
		why[i] = c.String()
	}
	return refuse(CodeForbidden, "issuer %q may not request action %q: %s", v.Issuer, v.Action, strings.Join(why, "; "))
}

// ExplainRequester judges a token from the named issuer with the given
// string claims against a's requester rules, in order, and says why. It
// is the matcher CheckRequester decides with: the verdict's Allowed is
// exactly CheckRequester's nil.
func (a *Action) ExplainRequester(issuer string, claims map[string]string) RequesterVerdict {
	v := RequesterVerdict{Action: a.Name, Issuer: issuer}
	for i, rule := range a.Requesters {
		c := checkRule(i+1, rule, issuer, claims)
		v.Checks = append(v.Checks, c)
		if c.Matches() {
			v.Allowed = true
			break
		}
	}
	return v
}

// checkRule judges one rule: the issuer first, then each claim in name
// order, stopping at the first that fails.
func checkRule(index int, rule RequesterRule, issuer string, claims map[string]string) RuleCheck {
	c := RuleCheck{Index: index, Rule: rule}
	if rule.Issuer != issuer {
		c.OtherIssuer = true
		return c
	}
	for _, k := range slices.Sorted(maps.Keys(rule.Claims)) {
		want := rule.Claims[k]
		got, ok := claims[k]
		if !ok {
			c.Mismatch = &ClaimMismatch{Claim: k, Want: want, Missing: true}
			return c
		}
		if !Glob(want, got) {
			c.Mismatch = &ClaimMismatch{Claim: k, Want: want, Got: got}
			return c
		}
	}
	return c
}

// ExplainRequester judges the token against every action, in name order.
func (p *Policy) ExplainRequester(issuer string, claims map[string]string) []RequesterVerdict {
	out := make([]RequesterVerdict, 0, len(p.Actions))
	for _, name := range slices.Sorted(maps.Keys(p.Actions)) {
		out = append(out, p.Actions[name].ExplainRequester(issuer, claims))
	}
	return out
}

// How an approver is named in approvers.users (ApproverVerdict.MatchedBy).
const (
	MatchedBySubject = "subject"
	MatchedByEmail   = "email"
)

// ApproverVerdict is whether a person may approve an action, and through
// which approvers entry.
type ApproverVerdict struct {
	// Action is the action's name.
	Action string
	// Eligible is the decision: exactly MayApprove's answer.
	Eligible bool
	// Group is the first approvers.groups entry the person is a member
	// of; empty when none is.
	Group string
	// User is the first approvers.users entry naming the person, when no
	// group made them eligible; MatchedBy says whether it named their
	// subject or their email.
	User      string
	MatchedBy string
	// Unvouched is the approvers.users entry that names the person's
	// email when the IdP did not vouch for that email
	// (Person.EmailUnverified), so it did not make them eligible.
	Unvouched string
}

// Reason says in one sentence why the verdict is what it is.
func (v ApproverVerdict) Reason() string {
	switch {
	case v.Group != "":
		return fmt.Sprintf("member of approver group %q", v.Group)
	case v.User != "":
		return fmt.Sprintf("named in approvers.users as %q (their %s)", v.User, v.MatchedBy)
	case v.Unvouched != "":
		return fmt.Sprintf("in none of the approver groups; approvers.users names %q, their email, but the identity provider does not mark it verified (see idp.email_verified)", v.Unvouched)
	}
	return "in none of the approver groups and not named in approvers.users"
}

// ExplainApprover says whether p is eligible to vote on a and why: a
// member of one of the approver groups, or named by subject or email
// (emails compare case-insensitively). Groups are looked at first. It is
// the matcher MayApprove decides with.
func (a *Action) ExplainApprover(p Person) ApproverVerdict {
	v := ApproverVerdict{Action: a.Name}
	for _, g := range a.Approvers.Groups {
		if g != "" && slices.Contains(p.Groups, g) {
			v.Eligible, v.Group = true, g
			return v
		}
	}
	for _, u := range a.Approvers.Users {
		switch {
		case u == "":
		case u == p.Subject:
			v.Eligible, v.User, v.MatchedBy = true, u, MatchedBySubject
			return v
		case p.Email != "" && strings.EqualFold(u, p.Email):
			if p.EmailUnverified {
				v.Unvouched = cmp.Or(v.Unvouched, u)
				continue
			}
			v.Eligible, v.User, v.MatchedBy, v.Unvouched = true, u, MatchedByEmail, ""
			return v
		}
	}
	return v
}

// ExplainApprover judges p against every action, in name order.
func (p *Policy) ExplainApprover(person Person) []ApproverVerdict {
	out := make([]ApproverVerdict, 0, len(p.Actions))
	for _, name := range slices.Sorted(maps.Keys(p.Actions)) {
		out = append(out, p.Actions[name].ExplainApprover(person))
	}
	return out
}

// Which of an approver's names matched the requester's person
// (SelfMatch).
const (
	SelfBySubject           = "subject"
	SelfByEmail             = "email"
	SelfByPreferredUsername = "preferred_username"
	SelfByPersonClaim       = "person_claims"
)

// SelfMatch says which of approver p's names equals the requester's
// person (SelfBySubject, SelfByEmail, SelfByPreferredUsername or
// SelfByPersonClaim for one of p's Handles), compared case-insensitively
// after trimming; "" when none does. It is the matcher IsSelf decides
// with. An empty requester person never matches.
func SelfMatch(requesterPerson string, p Person) string {
	rp := strings.TrimSpace(requesterPerson)
	if rp == "" {
		return ""
	}
	same := func(v string) bool { return v != "" && strings.EqualFold(rp, strings.TrimSpace(v)) }
	switch {
	case same(p.Subject):
		return SelfBySubject
	case same(p.Email):
		return SelfByEmail
	case same(p.PreferredUsername):
		return SelfByPreferredUsername
	}
	for _, h := range p.Handles {
		if same(h) {
			return SelfByPersonClaim
		}
	}
	return ""
}

func describeClaims(claims map[string]string) string {
	if len(claims) == 0 {
		return "no claims required"
	}
	parts := make([]string, 0, len(claims))
	for _, k := range slices.Sorted(maps.Keys(claims)) {
		parts = append(parts, fmt.Sprintf("%s %q", k, claims[k]))
	}
	return "claims " + strings.Join(parts, ", ")
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
