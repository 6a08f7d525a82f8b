package config

import (
	"fmt"
	"maps"
	"slices"

	"github.com/signoff-dev/signoff/policy"
)

// Policy builds the rule set the server enforces. It first checks the parts
// of the configuration the policy is made of (requesters, auditors, actions)
// and refuses to build from invalid ones, returning a *ValidationError; the
// rest (listen, storage, integrations) is Validate's business. Parameter
// patterns are compiled with policy.CompilePattern, so they match whole
// values. The result shares no memory with c.
func (c *Config) Policy() (*policy.Policy, error) {
	var ps problems
	c.validatePolicy(&ps)
	if err := ps.err(); err != nil {
		return nil, err
	}
	p := &policy.Policy{
		Actions:       make(map[string]*policy.Action, len(c.Actions)),
		AuditorGroups: slices.Clone(c.Auditors.Groups),
		AdminGroups:   slices.Clone(c.Admins.Groups),
	}
	for _, name := range slices.Sorted(maps.Keys(c.Actions)) {
		a, err := buildAction(name, c.Actions[name])
		if err != nil {
			return nil, err
		}
		p.Actions[name] = a
	}
	return p, nil
}

func buildAction(name string, a ActionConfig) (*policy.Action, error) {
	out := &policy.Action{
		Name:        name,
		Description: a.Description,
		Params:      make(map[string]policy.Param, len(a.Params)),
		Approvers: policy.Approvers{
			Groups:            slices.Clone(a.Approvers.Groups),
			Users:             slices.Clone(a.Approvers.Users),
			MinApprovals:      a.Approvers.MinApprovals,
			AllowSelfApproval: a.Approvers.AllowSelfApproval,
		},
		TTL: a.TTL,
		Notify: policy.Notify{
			Slack: slices.Clone(a.Notify.Slack),
			Teams: slices.Clone(a.Notify.Teams),
		},
		RequireApproveReason: a.RequireApproveReason,
		RequireDenyReason:    a.RequireDenyReason,
		AttestationAudience:  a.Attestation.Audience,
	}
	buildRemind(out, a)
	buildBreakGlass(out, a)
	for _, r := range a.Requesters {
		out.Requesters = append(out.Requesters, policy.RequesterRule{Issuer: r.Issuer, Claims: maps.Clone(r.Claims)})
	}
	if err := buildRulesAndWindows(out, a); err != nil {
		return nil, err
	}
	for _, pn := range slices.Sorted(maps.Keys(a.Params)) {
		pc := a.Params[pn]
		param := policy.Param{Required: pc.Required, MaxLength: pc.MaxLength}
		if pc.Pattern != "" {
			re, err := policy.CompilePattern(pc.Pattern)
			if err != nil { // Validate reports this; kept for safety
				return nil, fmt.Errorf("actions.%s.params.%s.pattern: %w", name, pn, err)
			}
			param.Pattern = re
		}
		out.Params[pn] = param
	}
	if w := a.OnApprove.Webhook; w.Configured() {
		out.OnApprove = &policy.OnApprove{Webhook: &policy.Webhook{
			URL:     w.URL,
			Secret:  w.Secret.Reveal(),
			Timeout: w.Timeout,
		}}
	}
	if s := a.StepUp; s != nil {
		out.StepUp = &policy.StepUp{
			MaxAge:     s.MaxAge,
			ACRValues:  slices.Clone(s.ACRValues),
			RequireMFA: s.RequireMFA,
			MFAMethods: slices.Clone(s.MFAMethods),
		}
	}
	return out, nil
}
