// Package policy holds signoff's rules: which requester may ask for which
// action with which parameters, who may approve it, how many approvals it
// needs, how long it waits, where it is announced and what runs on approval.
//
// Everything here is a pure function of its inputs: no I/O, no clock. An
// action that is not declared cannot be requested (deny by default).
package policy

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/internal/platform"
)

// Policy is the whole rule set, built from configuration.
type Policy struct {
	// Actions by name.
	Actions map[string]*Action
	// AuditorGroups may read the audit log and every request.
	AuditorGroups []string
	// AdminGroups may use the admin API: list and revoke links, list and
	// cancel requests, take a backup.
	AdminGroups []string
}

// Action is one kind of thing CI may ask approval for.
type Action struct {
	Name        string
	Description string
	// Requesters lists who may ask; a request must match at least one rule.
	Requesters []RequesterRule
	// Params declares the accepted parameters; any other is refused.
	Params    map[string]Param
	Approvers Approvers
	TTL       time.Duration
	Notify    Notify
	// OnApprove is nil when approval runs nothing.
	OnApprove *OnApprove
	// StepUp is nil when a click counts without a fresh sign-in.
	StepUp               *StepUp
	RequireApproveReason bool
	RequireDenyReason    bool
	// AttestationAudience is the aud of the attestations of this action's
	// approvals (attestation.audience; docs/attestations.md); "" means
	// signoff's default.
	AttestationAudience string
	// BreakGlass, when set, lets some requesters have a request approved
	// at once, reviewed afterwards (breakglass.go); nil: no break-glass.
	BreakGlass *BreakGlass
	// Remind, when set, reminds the card's conversations of a pending
	// request (remind.go); nil: no reminders.
	Remind *Remind
	// Escalate, when set, posts the card to more conversations once a
	// request has waited a while (remind.go); nil: no escalation.
	Escalate *Escalate
	// NotifyRequester tells the requester the decision, in a message to
	// every chat account linked to them (notify.requester).
	NotifyRequester bool
	// Windows and Freezes say when the action may be requested and run
	// (windows.go); no windows means any time.
	Windows []Window
	Freezes []Freeze
}

// RequesterRule matches a verified CI token: the configured issuer name and
// claim matchers, each a glob where * matches any run of characters
// (including '/'). All claims must match.
type RequesterRule struct {
	Issuer string
	Claims map[string]string
}

// Param declares one request parameter.
type Param struct {
	Required bool
	// Pattern, when set, must match the whole value: build it with
	// CompilePattern, which anchors it.
	Pattern *regexp.Regexp
	// MaxLength caps the value's length in bytes; 0 means DefaultMaxParamLength.
	MaxLength int
}

// CompilePattern compiles a parameter pattern so that it must match the
// whole value, whether or not the author wrote ^ and $.
func CompilePattern(expr string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + expr + `)$`)
}

// DefaultMaxParamLength caps a parameter value when its declaration sets no
// max_length.
const DefaultMaxParamLength = 256

// Approvers says who may approve and how many must.
type Approvers struct {
	// Groups are IdP groups; membership in any one makes a person eligible.
	Groups []string
	// Users are IdP subjects or email addresses eligible by name.
	Users             []string
	MinApprovals      int
	AllowSelfApproval bool
	// Require are rules that must all hold as well as MinApprovals
	// (approvers.require; rules.go).
	Require []Rule
}

// Notify names where a request is announced.
type Notify struct {
	Slack []string
	Teams []string
}

// Targets returns the conversations on chat platform p (platform.Slack,
// platform.Teams) where the request is announced; none for any other
// platform.
func (n Notify) Targets(p string) []string {
	switch p {
	case platform.Slack:
		return n.Slack
	case platform.Teams:
		return n.Teams
	}
	return nil
}

// OnApprove is what runs once a request is approved.
type OnApprove struct {
	Webhook *Webhook
}

// Webhook is an HTTP endpoint that receives the approved request.
type Webhook struct {
	URL     string
	Secret  string
	Timeout time.Duration
}

// StepUp demands a recent interactive sign-in before a vote counts.
type StepUp struct {
	MaxAge     time.Duration
	ACRValues  []string
	RequireMFA bool
	// MFAMethods are amr values that count as multi-factor on their own
	// for this action (an IdP that reports a security key with a PIN as
	// "hwk" alone, say). Empty: only IsMultiFactor's rule.
	MFAMethods []string
}

// Kinds of authentication methods (RFC 8176 amr values): something the
// person knows, has, or is.
const (
	factorKnows = "knows"
	factorHas   = "has"
	factorIs    = "is"
)

// amrKinds sorts the RFC 8176 methods by kind. Methods not listed (geo,
// mca, rba, user, wia, and anything unregistered) prove no factor.
var amrKinds = map[string]string{
	"pwd": factorKnows, "pin": factorKnows, "kba": factorKnows,
	"hwk": factorHas, "swk": factorHas, "otp": factorHas, "sms": factorHas, "tel": factorHas, "sc": factorHas, "pop": factorHas,
	"face": factorIs, "fpt": factorIs, "iris": factorIs, "retina": factorIs, "vbm": factorIs,
}

// IsMultiFactor reports whether a sign-in's amr values (RFC 8176) show
// multi-factor authentication: "mfa", or methods of at least two different
// kinds (something known, held, inherent: pwd + otp counts, otp + sms does
// not), or one of strong, the methods an action accepts on their own.
func IsMultiFactor(amr, strong []string) bool {
	kinds := map[string]bool{}
	for _, m := range amr {
		if m == "mfa" || slices.Contains(strong, m) {
			return true
		}
		if k, ok := amrKinds[m]; ok {
			kinds[k] = true
		}
	}
	return len(kinds) >= 2
}

// Reason is why policy refused a request: one of the Code… constants,
// stable across releases. The HTTP API maps each to its own error code
// (bot.Server.serviceError); nothing recognises a refusal by its message.
type Reason string

// Refusal codes, stable across releases.
const (
	// CodeUnknownAction: the action is not declared in the config.
	CodeUnknownAction Reason = "unknown_action"
	// CodeForbidden: the requester's issuer or claims match none of the
	// action's requester rules.
	CodeForbidden Reason = "forbidden"
	// CodeInvalidParams: a parameter is missing, undeclared, too long or
	// does not match its pattern.
	CodeInvalidParams Reason = "invalid_params"
)

// RefusalError says why policy refused a request, with a stable code and a
// message meant for the person who sent it.
type RefusalError struct {
	Code    Reason
	Message string
}

func (e *RefusalError) Error() string { return e.Message }

func refuse(code Reason, format string, args ...any) error {
	return &RefusalError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Action returns the named action, or an unknown_action refusal.
func (p *Policy) Action(name string) (*Action, error) {
	a, ok := p.Actions[name]
	if !ok {
		// The review action of an action with break_glass
		// (breakglass.go): named, never declared.
		if r, ok := p.reviewAction(name); ok {
			return r, nil
		}
		names := slices.Sorted(maps.Keys(p.Actions))
		return nil, refuse(CodeUnknownAction, "action %q is not declared; declared actions: %s", name, strings.Join(names, ", "))
	}
	return a, nil
}

// IsAuditor reports whether any of groups is an auditor group.
func (p *Policy) IsAuditor(groups []string) bool {
	return intersects(p.AuditorGroups, groups)
}

// IsAdmin reports whether any of groups is an admin group.
func (p *Policy) IsAdmin(groups []string) bool {
	return intersects(p.AdminGroups, groups)
}

// CheckRequester decides whether a token from the named issuer with the
// given string claims may request a. The refusal names every rule and the
// claim that failed it. It keeps the verdict of ExplainRequester, the one
// matcher behind both the decision and its explanation.
func (a *Action) CheckRequester(issuer string, claims map[string]string) error {
	return a.ExplainRequester(issuer, claims).Err()
}

// CheckParams validates params against the declaration: every required one
// present, none undeclared, each within its length and matching its pattern.
// All problems are reported together.
func (a *Action) CheckParams(params map[string]string) error {
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v := params[k]
		decl, ok := a.Params[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("param %q is not declared for action %q", k, a.Name))
			continue
		}
		max := decl.MaxLength
		if max <= 0 {
			max = DefaultMaxParamLength
		}
		if len(v) > max {
			problems = append(problems, fmt.Sprintf("param %q is %d bytes long; at most %d allowed", k, len(v), max))
			continue
		}
		if decl.Pattern != nil && !decl.Pattern.MatchString(v) {
			problems = append(problems, fmt.Sprintf("param %q value %q does not match pattern %s", k, v, decl.Pattern.String()))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(a.Params)) {
		if _, ok := params[k]; !ok && a.Params[k].Required {
			problems = append(problems, fmt.Sprintf("param %q is required", k))
		}
	}
	if len(problems) > 0 {
		return refuse(CodeInvalidParams, "%s", strings.Join(problems, "; "))
	}
	return nil
}

// Person is what is known of someone for eligibility and self-approval
// checks.
type Person struct {
	Subject string
	Email   string
	// EmailUnverified: the IdP did not vouch for Email (no
	// email_verified: true). Such an email still names the person for the
	// self-approval check, but never makes them an approver an
	// approvers.users entry names by email: whoever may set their own
	// email at the IdP could otherwise claim another's.
	EmailUnverified   bool
	PreferredUsername string
	Groups            []string
	// Handles are the values of the claims listed in idp.person_claims
	// (e.g. a GitHub login an IdP keeps in a custom attribute): the names
	// this person may have in the requesters' identity systems.
	Handles []string
}

// MayApprove reports whether p is eligible to vote on a: a member of one of
// the approver groups, or named by subject or email (emails compare
// case-insensitively). ExplainApprover says through which entry.
func (a *Action) MayApprove(p Person) bool {
	return a.ExplainApprover(p).Eligible
}

// IsSelf reports whether approver p is the person behind the request: the
// requester's person (the issuer's person_claim, e.g. GitHub's actor) equals
// p's subject, email, preferred username or one of p's Handles (the
// idp.person_claims values), compared case-insensitively after trimming.
// An empty requester person never matches. SelfMatch says which name
// matched.
func IsSelf(requesterPerson string, p Person) bool {
	return SelfMatch(requesterPerson, p) != ""
}

// Outcome is what the votes so far decide.
type Outcome string

// Outcomes of Tally.
const (
	OutcomePending  Outcome = "pending"
	OutcomeApproved Outcome = "approved"
	OutcomeDenied   Outcome = "denied"
)

// Tally decides a request from its counted votes: any deny denies; approvals
// from at least minApprovals distinct approvers approve. Callers count only
// eligible, distinct approvers.
func Tally(minApprovals, approvals, denials int) Outcome {
	if minApprovals < 1 {
		minApprovals = 1
	}
	switch {
	case denials > 0:
		return OutcomeDenied
	case approvals >= minApprovals:
		return OutcomeApproved
	default:
		return OutcomePending
	}
}

// Glob reports whether value matches pattern, where * matches any run of
// characters (including none and including '/') and every other character
// matches itself.
func Glob(pattern, value string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == value
	}
	if !strings.HasPrefix(value, parts[0]) {
		return false
	}
	value = value[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(value, mid)
		if i < 0 {
			return false
		}
		value = value[i+len(mid):]
	}
	return strings.HasSuffix(value, last)
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if x != "" && slices.Contains(b, x) {
			return true
		}
	}
	return false
}
