package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
)

// maxClaimsFileBytes bounds a --claims or --approver-claims file: claims
// sets are a few KiB.
const maxClaimsFileBytes = 1 << 20

func newPolicyCommand() *cobra.Command {
	return commandGroup("policy", "Preview what a config's policy allows", newPolicyExplainCommand())
}

// explainFlags are the flags of `signoff policy explain`.
type explainFlags struct {
	config, token, claims, approverClaims, action, output string
}

func newPolicyExplainCommand() *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "explain --config FILE (--token JWT | --claims FILE) [--approver-claims FILE] [--action NAME] [--output text|json]",
		Short: "Say which actions a CI token may request, and who may approve them, and why",
		Long: `Explain the policy of the config FILE for one requester and, optionally, one
approver: for each action (or only --action NAME), whether it may be
requested, and the rule and claim that decided.

--token JWT (or --token - to read it from standard input) is verified
exactly as 'signoff serve' verifies it, against the requesters issuers of
FILE: the issuer's discovery document and keys are fetched over the
network, then the signature, issuer, audience, expiry and required claims
are checked. A token that does not verify exits 3 with the reason.

--claims FILE reads a JSON claims object instead (a decoded token's
payload, or one written by hand with iss, aud, sub and the claims the rules
name). Nothing about it is verified, and the output says so; claims a token
could not be accepted with (an unknown iss, another audience, no sub or
person claim) exit 3 as a token would.

--approver-claims FILE reads an approver's ID-token claims (sub, email,
preferred_username, the idp.groups_claim, the idp.person_claims), NOT
verified either, and says for each action whether they could approve and
through which approvers entry, with min_approvals and the self-approval
rule (checked against the requester, when one is given). It may also be
given alone.

For each action a line 'ACTION: may request' or 'ACTION: may not request',
then the requesters rule that matched (its number, issuer and claim globs),
its windows and freezes, and whether the token may break glass and who
reviews it, or for each rule naming the token's issuer the first claim that
does not match, or that no rule names the issuer. For an approver, each
approvers.require rule says whether their approval could count toward it
(one rule per person), and a break_glass whether they could review it. --output json prints
{"verified": bool, "claims": {…}, "actions": [{"action", "allowed", "rule",
"reason"}]} (and "approver": {…} with --approver-claims); an action with
approvers.require, windows, freeze or break_glass adds "require", "windows",
"freeze" and "break_glass" (with "allowed": whether this token may break
glass), and under "approver" "require" (each rule with "counts") and
"break_glass_review". Exit 0 whatever
the verdicts; 3 for a token (or claims) signoff would refuse; 2 for a usage
or config error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPolicyExplain(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "config file whose policy and requesters to use")
	fl.StringVar(&f.token, "token", "", "a CI token to verify and explain; - reads it from standard input")
	fl.StringVar(&f.claims, "claims", "", "a JSON file of requester claims to explain without verifying them")
	fl.StringVar(&f.approverClaims, "approver-claims", "", "a JSON file of an approver's ID-token claims (not verified)")
	fl.StringVar(&f.action, "action", "", "explain only this action")
	fl.StringVar(&f.output, "output", "text", "text or json")
	return cmd
}

// explanation is everything `policy explain` found, ready to render.
type explanation struct {
	// requester is nil without --token and --claims.
	requester *requesterExplanation
	// approver is nil without --approver-claims.
	approver *approverExplanation
}

type requesterExplanation struct {
	verified bool
	source   string // the claims file's name; empty for a token
	tok      *oidc.RequesterToken
	entry    oidc.TrustedIssuer
	verdicts []policy.RequesterVerdict
	// schedule is each action's windows and freezes, one line each
	// (scheduleLines), by action name.
	schedule map[string][]string
	// actions are the explained actions, by name.
	actions map[string]*policy.Action
	// claimNames are the claims the shown actions' rules for this issuer
	// name, sorted.
	claimNames []string
}

type approverExplanation struct {
	source      string
	idpIssuer   string
	id          identity.Identity
	groupsClaim string
	verdicts    []approverVerdict
}

type approverVerdict struct {
	policy.ApproverVerdict
	approvers policy.Approvers
	stepUp    bool
	// self is which of the approver's names matched the requester's
	// person (policy.SelfMatch); "" when none or no requester was given.
	self string
	// rules is, for each approvers.require rule in order, the rule group
	// the approver is a member of, "" when none; counts says whether
	// their approval could count toward it (an eligible member).
	rules []ruleCount
	// review is whether they could review a break-glass request of the
	// action; nil when it has no break_glass.
	review *reviewVerdict
}

type ruleCount struct {
	group  string
	counts bool
}

type reviewVerdict struct {
	policy.ApproverVerdict
	minApprovals int
}

func runPolicyExplain(cmd *cobra.Command, f explainFlags) error {
	switch {
	case f.output != "text" && f.output != "json":
		return usageErrorf("--output %q: use text or json", f.output)
	case f.config == "":
		return usageErrorf("policy explain needs --config FILE: the config whose policy to explain")
	case f.token != "" && f.claims != "":
		return usageErrorf("--token and --claims are mutually exclusive: explain a token, or a claims file")
	case f.token == "" && f.claims == "" && f.approverClaims == "":
		return usageErrorf("policy explain needs --token JWT or --claims FILE (a requester), and/or --approver-claims FILE (an approver)")
	}
	cfg, err := loadConfig(f.config)
	if err != nil {
		return err
	}
	pol, err := cfg.Policy()
	if err != nil {
		return withCode(exitUsage, err)
	}
	if f.action != "" {
		a, err := pol.Action(f.action)
		if err != nil {
			return usageErrorf("--action: %v", err)
		}
		pol = &policy.Policy{Actions: map[string]*policy.Action{a.Name: a}}
	}
	var ex explanation
	if f.token != "" || f.claims != "" {
		if ex.requester, err = explainRequester(cmd, cfg, pol, f); err != nil {
			return err
		}
	}
	if f.approverClaims != "" {
		if ex.approver, err = explainApprover(cfg, pol, f.approverClaims, ex.requester); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	if f.output == "json" {
		err = writeExplanationJSON(&buf, ex)
	} else {
		writeExplanationText(&buf, ex)
	}
	if err != nil {
		return err
	}
	if _, err := cmd.OutOrStdout().Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write the explanation: %w", err)
	}
	return nil
}

// explainRequester verifies --token (or reads --claims) with the
// verifier serve builds from the same config, and judges it against pol.
func explainRequester(cmd *cobra.Command, cfg *config.Config, pol *policy.Policy, f explainFlags) (*requesterExplanation, error) {
	issuers, _, err := requesterIssuers(cfg, false, "")
	if err != nil {
		return nil, err
	}
	issuers = append(issuers, loginIssuers(cfg)...)
	if len(issuers) == 0 {
		return nil, usageErrorf("config %s has no requesters: add a requesters entry (name, issuer, audience) for the issuer of the tokens to explain", f.config)
	}
	v, err := oidc.NewRequesterVerifier(issuers, oidc.VerifierOptions{})
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("requesters: %w", err))
	}
	ex := &requesterExplanation{}
	if f.token != "" {
		raw := f.token
		if raw == "-" {
			b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxClaimsFileBytes))
			if err != nil {
				return nil, fmt.Errorf("read the token from standard input: %w", err)
			}
			raw = strings.TrimSpace(string(b))
		}
		ex.verified = true
		ex.tok, err = v.Verify(cmd.Context(), raw)
		var terr *oidc.TokenError
		if errors.As(err, &terr) {
			return nil, withCode(exitRefused, fmt.Errorf("the token does not verify (%s): %s", terr.Reason, terr.Message))
		}
		if err != nil {
			return nil, err
		}
	} else {
		data, err := readClaimsFile("--claims", f.claims)
		if err != nil {
			return nil, err
		}
		ex.source = f.claims
		ex.tok, err = v.ReadUnverified(data)
		var terr *oidc.TokenError
		switch {
		case errors.As(err, &terr) && terr.Reason == oidc.ReasonMalformed:
			return nil, usageErrorf("--claims %s: %s", f.claims, terr.Message)
		case errors.As(err, &terr):
			return nil, withCode(exitRefused, fmt.Errorf("--claims %s: signoff would refuse a token with these claims, even signed (%s): %s", f.claims, terr.Reason, terr.Message))
		case err != nil:
			return nil, err
		}
	}
	for _, ti := range issuers {
		if ti.Name == ex.tok.IssuerName {
			ex.entry = ti
		}
	}
	if ex.entry.PersonClaim == "" {
		ex.entry.PersonClaim = oidc.DefaultPersonClaim
	}
	ex.verdicts = pol.ExplainRequester(ex.tok.IssuerName, ex.tok.Claims)
	ex.schedule = map[string][]string{}
	ex.actions = pol.Actions
	for name, a := range pol.Actions {
		ex.schedule[name] = scheduleLines(a)
	}
	for _, a := range pol.Actions {
		for _, r := range a.Requesters {
			if r.Issuer != ex.tok.IssuerName {
				continue
			}
			for k := range r.Claims {
				if !slices.Contains(ex.claimNames, k) {
					ex.claimNames = append(ex.claimNames, k)
				}
			}
		}
	}
	slices.Sort(ex.claimNames)
	return ex, nil
}

// explainApprover reads --approver-claims as the link flow reads an ID
// token and judges the person against pol.
func explainApprover(cfg *config.Config, pol *policy.Policy, path string, req *requesterExplanation) (*approverExplanation, error) {
	data, err := readClaimsFile("--approver-claims", path)
	if err != nil {
		return nil, err
	}
	id, err := linkflow.ReadUnverifiedIdentity(data, cfg.IdP.GroupsClaim, cfg.IdP.PersonClaims, cfg.IdP.EmailVerified == config.EmailVerifiedAssumed)
	if err != nil {
		return nil, usageErrorf("--approver-claims %s: %v", path, err)
	}
	ex := &approverExplanation{source: path, id: id, groupsClaim: cfg.IdP.GroupsClaim, idpIssuer: cfg.IdP.Issuer}
	if ex.groupsClaim == "" {
		ex.groupsClaim = linkflow.DefaultGroupsClaim
	}
	person := id.Person()
	for _, v := range pol.ExplainApprover(person) {
		a := pol.Actions[v.Action]
		av := approverVerdict{ApproverVerdict: v, approvers: a.Approvers, stepUp: a.StepUp != nil}
		if req != nil {
			av.self = policy.SelfMatch(req.tok.Person, person)
		}
		for _, r := range a.Approvers.Require {
			rc := ruleCount{}
			for _, g := range r.Groups {
				if g != "" && slices.Contains(person.Groups, g) {
					rc.group = g
					break
				}
			}
			rc.counts = v.Eligible && rc.group != ""
			av.rules = append(av.rules, rc)
		}
		if review := a.ReviewAction(); review != nil {
			av.review = &reviewVerdict{review.ExplainApprover(person), max(review.Approvers.MinApprovals, 1)}
		}
		ex.verdicts = append(ex.verdicts, av)
	}
	return ex, nil
}

// readClaimsFile reads a claims file named by flag.
func readClaimsFile(flag, path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, usageErrorf("%s: %v", flag, err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxClaimsFileBytes+1))
	if err != nil {
		return nil, usageErrorf("%s: reading %s: %v", flag, path, err)
	}
	if len(data) > maxClaimsFileBytes {
		return nil, usageErrorf("%s: %s is larger than %d bytes; a claims file holds one JSON object of claims", flag, path, maxClaimsFileBytes)
	}
	return data, nil
}

// Every unverified input is announced with one of these.
const (
	claimsNotVerified   = "NOT VERIFIED: no signature, issuer, audience or expiry was checked; a real token gets these answers only if it verifies"
	approverNotVerified = "NOT VERIFIED: read from a file, not from a sign-in at the identity provider; a vote counts only through a linked identity the identity provider confirmed"
)

func writeExplanationText(w *bytes.Buffer, ex explanation) {
	if r := ex.requester; r != nil {
		writeRequesterText(w, r)
	}
	if a := ex.approver; a != nil {
		if ex.requester != nil {
			w.WriteString("\n")
		}
		writeApproverText(w, a, ex.requester)
	}
}

func writeRequesterText(w *bytes.Buffer, r *requesterExplanation) {
	tok := r.tok
	if r.verified {
		fmt.Fprintf(w, "Token VERIFIED against requester %q (%s): signature, issuer, audience and expiry checked as signoff serve checks them.\n", tok.IssuerName, tok.Issuer)
	} else {
		fmt.Fprintf(w, "Claims from %s, %s.\n", termSafe(r.source), claimsNotVerified)
	}
	if tok.Login {
		fmt.Fprintf(w, "This is a 'signoff login' ID token (idp.cli_client_id): the API takes it on admin and auditor endpoints only, never to request an action.\n")
	}
	fmt.Fprintf(w, "\nClaims signoff reads:\n")
	fmt.Fprintf(w, "  issuer   %s (%s)\n", termSafe(tok.IssuerName), termSafe(tok.Issuer))
	fmt.Fprintf(w, "  subject  %s\n", termSafe(tok.Subject))
	fmt.Fprintf(w, "  person   %s (claim %s)\n", termSafe(tok.Person), r.entry.PersonClaim)
	switch {
	case tok.GroupsClaim == "":
		fmt.Fprintf(w, "  groups   none read (requester %s names no groups_claim)\n", tok.IssuerName)
	case len(tok.Groups) == 0:
		fmt.Fprintf(w, "  groups   none (claim %s)\n", tok.GroupsClaim)
	default:
		fmt.Fprintf(w, "  groups   %s (claim %s)\n", termSafe(strings.Join(tok.Groups, ", ")), tok.GroupsClaim)
	}
	if len(r.claimNames) == 0 {
		fmt.Fprintf(w, "  no action's requesters rule names issuer %q, so no other claim matters\n", tok.IssuerName)
	} else {
		fmt.Fprintf(w, "  claims the policy matches:\n")
		for _, k := range r.claimNames {
			if v, ok := tok.Claims[k]; ok {
				fmt.Fprintf(w, "    %s: %q\n", termSafe(k), v)
			} else {
				fmt.Fprintf(w, "    %s: missing\n", termSafe(k))
			}
		}
	}
	w.WriteString("\n")
	for _, v := range r.verdicts {
		if v.Allowed {
			fmt.Fprintf(w, "%s: may request\n  %s\n", v.Action, v.Reason())
			for _, line := range r.schedule[v.Action] {
				fmt.Fprintf(w, "  %s\n", line)
			}
			if a := r.actions[v.Action]; a != nil && a.BreakGlass != nil {
				ok, why := breakGlassVerdict(a, v.Allowed, r.tok.GroupsClaim, r.tok.Groups)
				verdict := "may not break glass"
				if ok {
					verdict = "may break glass"
				}
				fmt.Fprintf(w, "  break-glass: %s, %s\n", verdict, termSafe(why))
				fmt.Fprintf(w, "  break-glass review: %s\n", reviewersText(a.BreakGlass))
			}
			continue
		}
		fmt.Fprintf(w, "%s: may not request\n", v.Action)
		if len(v.Checks) == 0 || !v.IssuerNamed() {
			fmt.Fprintf(w, "  %s\n", v.Reason())
			continue
		}
		for _, c := range v.Checks {
			if !c.OtherIssuer {
				fmt.Fprintf(w, "  %s\n", c)
			}
		}
	}
}

func writeApproverText(w *bytes.Buffer, a *approverExplanation, req *requesterExplanation) {
	id := a.id
	fmt.Fprintf(w, "Approver claims from %s, %s.\n", termSafe(a.source), approverNotVerified)
	if note := a.issuerNote(); note != "" {
		fmt.Fprintf(w, "%s\n", note)
	}
	fmt.Fprintf(w, "\nApprover claims signoff reads:\n")
	fmt.Fprintf(w, "  subject             %s\n", termSafe(id.Subject))
	fmt.Fprintf(w, "  email               %s\n", termSafe(orDash(id.Email)))
	fmt.Fprintf(w, "  preferred_username  %s\n", termSafe(orDash(id.PreferredUsername)))
	fmt.Fprintf(w, "  groups              %s (claim %s)\n", termSafe(orDash(strings.Join(id.Groups, ", "))), a.groupsClaim)
	for _, k := range slices.Sorted(maps.Keys(id.PersonClaims)) {
		fmt.Fprintf(w, "  person claim %s: %s\n", termSafe(k), termSafe(strings.Join(id.PersonClaims[k], ", ")))
	}
	w.WriteString("\n")
	for _, v := range a.verdicts {
		if v.Eligible {
			fmt.Fprintf(w, "%s: may approve\n", v.Action)
		} else {
			fmt.Fprintf(w, "%s: may not approve\n", v.Action)
		}
		fmt.Fprintf(w, "  %s\n", v.Reason())
		fmt.Fprintf(w, "  %s\n", approvalRules(v))
		for i, line := range requireLines(v.approvers) {
			fmt.Fprintf(w, "  %s: %s\n", line, ruleCountText(v, i))
		}
		if note := selfNote(v, req); note != "" {
			fmt.Fprintf(w, "  %s\n", note)
		}
		if rv := v.review; rv != nil {
			fmt.Fprintf(w, "  break-glass review: %s\n", reviewText(rv))
			if note := reviewSelfNote(v, req); note != "" {
				fmt.Fprintf(w, "  %s\n", note)
			}
		}
	}
}

// approvalRules is the action's quorum, self-approval and step-up rules in
// one line.
func approvalRules(v approverVerdict) string {
	s := fmt.Sprintf("min_approvals %d", max(v.approvers.MinApprovals, 1))
	if v.approvers.AllowSelfApproval {
		s += "; self-approval allowed"
	} else {
		s += "; self-approval not allowed"
	}
	if v.stepUp {
		s += "; a vote needs a fresh sign-in (step_up)"
	}
	return s
}

// selfNote says what the self-approval rule means for this approver and
// the requester given, or "" when there is nothing to say.
func selfNote(v approverVerdict, req *requesterExplanation) string {
	if req == nil || v.self == "" || !v.Eligible {
		return ""
	}
	which := "their " + v.self
	if v.self == policy.SelfByPersonClaim {
		which = "one of their idp.person_claims values"
	}
	s := fmt.Sprintf("the requester's person %q is this approver (%s)", req.tok.Person, which)
	if v.approvers.AllowSelfApproval {
		return s + ", and this action allows self-approval"
	}
	return s + ": they could not approve this requester's request"
}

// ruleCountText says whether the approver's approval could count toward
// approvers.require rule i, and why.
func ruleCountText(v approverVerdict, i int) string {
	rc := v.rules[i]
	switch {
	case rc.counts:
		return fmt.Sprintf("counts, member of %q", rc.group)
	case rc.group != "":
		return fmt.Sprintf("does not count: member of %q, but may not approve this action", rc.group)
	}
	return "does not count, in none of its groups"
}

// reviewText says whether the approver could review a break-glass request
// of the action, why, and the review's rules.
func reviewText(rv *reviewVerdict) string {
	verdict := "may not review"
	if rv.Eligible {
		verdict = "may review"
	}
	return fmt.Sprintf("%s, %s; min_approvals %d; never their own break-glass", verdict, reviewReason(rv), rv.minApprovals)
}

// reviewReason says why the approver could or could not review a
// break-glass request of the action.
func reviewReason(rv *reviewVerdict) string {
	switch {
	case rv.Group != "":
		return fmt.Sprintf("member of break_glass.review group %q", rv.Group)
	case rv.User != "":
		return fmt.Sprintf("named in break_glass.review users as %q (their %s)", rv.User, rv.MatchedBy)
	}
	return "in none of the break_glass.review groups and not named in its users"
}

// reviewSelfNote says that the approver could not review the requester's
// break-glass, being the requester; "" when that is not the case.
func reviewSelfNote(v approverVerdict, req *requesterExplanation) string {
	if req == nil || v.self == "" || v.review == nil || !v.review.Eligible {
		return ""
	}
	return fmt.Sprintf("the requester's person %q is this approver: they could not review this requester's break-glass", req.tok.Person)
}

// issuerNote warns when the approver claims name another issuer than
// idp.issuer, whose ID tokens alone the link flow accepts.
func (a *approverExplanation) issuerNote() string {
	if a.id.Issuer == "" || a.idpIssuer == "" || a.id.Issuer == a.idpIssuer {
		return ""
	}
	return fmt.Sprintf("Note: these claims name the issuer %q, but approvers sign in at idp.issuer %q; the link flow accepts no other issuer's ID tokens.", termSafe(a.id.Issuer), termSafe(a.idpIssuer))
}

// The JSON output: exactly {"verified", "claims", "actions"} for a
// requester, with "approver" added by --approver-claims.
type (
	explainJSON struct {
		Verified bool                 `json:"verified"`
		Claims   explainClaimsJSON    `json:"claims"`
		Actions  []explainActionJSON  `json:"actions"`
		Approver *explainApproverJSON `json:"approver,omitempty"`
	}
	explainClaimsJSON struct {
		Issuer      string   `json:"issuer"`
		IssuerURL   string   `json:"issuer_url"`
		Subject     string   `json:"subject"`
		PersonClaim string   `json:"person_claim"`
		Person      string   `json:"person"`
		GroupsClaim string   `json:"groups_claim,omitempty"`
		Groups      []string `json:"groups"`
		Login       bool     `json:"login,omitempty"`
		// Policy holds the claims the rules for this issuer name: the
		// token's value, null when it has none.
		Policy map[string]*string `json:"policy"`
	}
	explainActionJSON struct {
		Action  string           `json:"action"`
		Allowed bool             `json:"allowed"`
		Rule    *explainRuleJSON `json:"rule"`
		Reason  string           `json:"reason"`
		// Require, Windows, Freeze and BreakGlass are the action's
		// approvers.require, windows, freeze and break_glass, each left
		// out when the action has none.
		Require    []ruleJSON             `json:"require,omitempty"`
		Windows    []windowJSON           `json:"windows,omitempty"`
		Freeze     []freezeJSON           `json:"freeze,omitempty"`
		BreakGlass *explainBreakGlassJSON `json:"break_glass,omitempty"`
	}
	// explainBreakGlassJSON is the action's break_glass and whether this
	// token may break glass on it.
	explainBreakGlassJSON struct {
		breakGlassJSON
		Allowed bool   `json:"allowed"`
		Reason  string `json:"reason"`
	}
	explainRuleJSON struct {
		Index  int               `json:"index"`
		Issuer string            `json:"issuer"`
		Claims map[string]string `json:"claims"`
	}
	explainApproverJSON struct {
		Verified bool                        `json:"verified"`
		Claims   explainApproverClaimsJSON   `json:"claims"`
		Actions  []explainApproverActionJSON `json:"actions"`
	}
	explainApproverClaimsJSON struct {
		Issuer            string              `json:"issuer,omitempty"`
		Subject           string              `json:"subject"`
		Email             string              `json:"email,omitempty"`
		PreferredUsername string              `json:"preferred_username,omitempty"`
		GroupsClaim       string              `json:"groups_claim"`
		Groups            []string            `json:"groups"`
		PersonClaims      map[string][]string `json:"person_claims,omitempty"`
	}
	explainApproverActionJSON struct {
		Action  string `json:"action"`
		Allowed bool   `json:"allowed"`
		// Via is "group" or "users"; empty when not allowed.
		Via               string `json:"via,omitempty"`
		Entry             string `json:"entry,omitempty"`
		MatchedBy         string `json:"matched_by,omitempty"`
		MinApprovals      int    `json:"min_approvals"`
		AllowSelfApproval bool   `json:"allow_self_approval"`
		// Self names the approver's claim equal to the requester's person.
		Self   string `json:"self,omitempty"`
		Reason string `json:"reason"`
		// Require is the action's approvers.require rules, each saying
		// whether this approver's approval could count toward it; left
		// out when the action has none. One approval counts toward one
		// rule only.
		Require []explainApproverRuleJSON `json:"require,omitempty"`
		// BreakGlassReview says whether they could review a break-glass
		// request of the action; left out when it has no break_glass.
		BreakGlassReview *explainReviewJSON `json:"break_glass_review,omitempty"`
	}
	explainApproverRuleJSON struct {
		ruleJSON
		Counts bool `json:"counts"`
		// Group is the rule group the approver is a member of.
		Group string `json:"group,omitempty"`
	}
	explainReviewJSON struct {
		Allowed      bool   `json:"allowed"`
		Via          string `json:"via,omitempty"`
		Entry        string `json:"entry,omitempty"`
		MatchedBy    string `json:"matched_by,omitempty"`
		MinApprovals int    `json:"min_approvals"`
		Self         string `json:"self,omitempty"`
		Reason       string `json:"reason"`
	}
)

func writeExplanationJSON(w *bytes.Buffer, ex explanation) error {
	var out any
	var approver *explainApproverJSON
	if a := ex.approver; a != nil {
		approver = approverJSON(a, ex.requester)
	}
	if r := ex.requester; r != nil {
		out = requesterJSON(r, approver)
	} else {
		out = struct {
			Approver *explainApproverJSON `json:"approver"`
		}{approver}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("encode the explanation: %w", err)
	}
	return nil
}

func requesterJSON(r *requesterExplanation, approver *explainApproverJSON) explainJSON {
	tok := r.tok
	out := explainJSON{
		Verified: r.verified,
		Claims: explainClaimsJSON{
			Issuer: tok.IssuerName, IssuerURL: tok.Issuer, Subject: tok.Subject,
			PersonClaim: r.entry.PersonClaim, Person: tok.Person,
			GroupsClaim: tok.GroupsClaim, Groups: orEmpty(tok.Groups), Login: tok.Login,
			Policy: map[string]*string{},
		},
		Actions:  []explainActionJSON{},
		Approver: approver,
	}
	for _, k := range r.claimNames {
		if v, ok := tok.Claims[k]; ok {
			out.Claims.Policy[k] = &v
		} else {
			out.Claims.Policy[k] = nil
		}
	}
	for _, v := range r.verdicts {
		a := explainActionJSON{Action: v.Action, Allowed: v.Allowed, Reason: v.Reason()}
		if m := v.Matched(); m != nil {
			a.Rule = &explainRuleJSON{Index: m.Index, Issuer: m.Rule.Issuer, Claims: m.Rule.Claims}
			if a.Rule.Claims == nil {
				a.Rule.Claims = map[string]string{}
			}
		}
		if act := r.actions[v.Action]; act != nil {
			if len(act.Approvers.Require) > 0 {
				a.Require = rulesJSON(act.Approvers.Require)
			}
			if len(act.Windows) > 0 {
				a.Windows = windowsJSON(act.Windows)
			}
			if len(act.Freezes) > 0 {
				a.Freeze = freezesJSON(act.Freezes)
			}
			if bg := breakGlassOf(act); bg != nil {
				ok, why := breakGlassVerdict(act, v.Allowed, tok.GroupsClaim, tok.Groups)
				a.BreakGlass = &explainBreakGlassJSON{breakGlassJSON: *bg, Allowed: ok, Reason: why}
			}
		}
		out.Actions = append(out.Actions, a)
	}
	return out
}

func approverJSON(a *approverExplanation, req *requesterExplanation) *explainApproverJSON {
	id := a.id
	out := &explainApproverJSON{
		Claims: explainApproverClaimsJSON{
			Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, PreferredUsername: id.PreferredUsername,
			GroupsClaim: a.groupsClaim, Groups: orEmpty(id.Groups), PersonClaims: id.PersonClaims,
		},
		Actions: []explainApproverActionJSON{},
	}
	for _, v := range a.verdicts {
		j := explainApproverActionJSON{
			Action: v.Action, Allowed: v.Eligible, Entry: v.Group + v.User, MatchedBy: v.MatchedBy,
			MinApprovals: max(v.approvers.MinApprovals, 1), AllowSelfApproval: v.approvers.AllowSelfApproval,
			Self: v.self, Reason: v.Reason(),
		}
		switch {
		case v.Group != "":
			j.Via = "group"
		case v.User != "":
			j.Via = "users"
		}
		if note := selfNote(v, req); note != "" {
			j.Reason += "; " + note
		}
		for i, r := range v.approvers.Require {
			j.Require = append(j.Require, explainApproverRuleJSON{
				ruleJSON: ruleJSON{Groups: emptyIfNil(r.Groups), Min: max(r.Min, 1)},
				Counts:   v.rules[i].counts, Group: v.rules[i].group,
			})
		}
		if rv := v.review; rv != nil {
			rj := &explainReviewJSON{Allowed: rv.Eligible, Entry: rv.Group + rv.User, MatchedBy: rv.MatchedBy, MinApprovals: rv.minApprovals, Reason: reviewReason(rv)}
			switch {
			case rv.Group != "":
				rj.Via = "group"
			case rv.User != "":
				rj.Via = "users"
			}
			if note := reviewSelfNote(v, req); note != "" {
				rj.Self = v.self
				rj.Reason += "; " + note
			}
			j.BreakGlassReview = rj
		}
		out.Actions = append(out.Actions, j)
	}
	return out
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
