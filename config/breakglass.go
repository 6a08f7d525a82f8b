package config

import (
	"slices"
	"time"

	"github.com/signoff-dev/signoff/policy"
)

// Break-glass limits.
const (
	// DefaultBreakGlassWithin is break_glass.within when not set: how long
	// a break-glass request's review may stay pending before it is
	// flagged unreviewed.
	DefaultBreakGlassWithin = 24 * time.Hour
	// breakGlassWithinShort and breakGlassWithinLong bound the within
	// values that are accepted without a warning.
	breakGlassWithinShort = 5 * time.Minute
	breakGlassWithinLong  = 7 * 24 * time.Hour
)

// BreakGlassConfig is an action's break_glass: who may have a request
// approved at once (groups of their verified requester token), who reviews
// it afterwards (review, shaped like approvers) and how soon (within).
//
//	break_glass:
//	  groups: [oncall]
//	  review: {groups: [sre-leads], min_approvals: 1}
//	  within: 24h
type BreakGlassConfig struct {
	// Groups are requester token groups (the requesters entry's
	// groups_claim); membership in any one allows break-glass.
	Groups []string `mapstructure:"groups"`
	// Review says who reviews a break-glass request; required.
	Review *BreakGlassReviewConfig `mapstructure:"review"`
	// Within is how long the review may stay pending before it is
	// audited break_glass.unreviewed and announced again;
	// DefaultBreakGlassWithin when not set.
	Within time.Duration `mapstructure:"within"`
}

// BreakGlassReviewConfig says who reviews a break-glass request and how
// many must approve the review: the keys of approvers, without
// allow_self_approval (the person reviewed never approves their own
// review).
type BreakGlassReviewConfig struct {
	// Groups are IdP groups; membership in any makes a person a reviewer.
	Groups []string `mapstructure:"groups"`
	// Users are IdP subjects or email addresses who review by name.
	Users []string `mapstructure:"users"`
	// MinApprovals is how many distinct reviewers must approve;
	// DefaultMinApprovals when not set.
	MinApprovals int `mapstructure:"min_approvals"`
}

func buildBreakGlass(out *policy.Action, a ActionConfig) {
	bg := a.BreakGlass
	if bg == nil || bg.Review == nil {
		return // validatePolicy refuses a break_glass without review
	}
	out.BreakGlass = &policy.BreakGlass{
		Groups: slices.Clone(bg.Groups),
		Review: policy.Approvers{
			Groups:       slices.Clone(bg.Review.Groups),
			Users:        slices.Clone(bg.Review.Users),
			MinApprovals: bg.Review.MinApprovals,
		},
		Within: bg.Within,
	}
}

// validateBreakGlass checks an action's break_glass, at key (the action's
// key).
func validateBreakGlass(ps *problems, key string, a *ActionConfig) {
	bg := a.BreakGlass
	if bg == nil {
		return
	}
	key += ".break_glass"
	checkNonEmpty(ps, key+".groups", bg.Groups)
	if len(distinctNonEmpty(bg.Groups)) == 0 {
		ps.add(key+".groups", "required: the requester groups (from the requesters entry's groups_claim) whose members may break glass")
	}
	if bg.Within <= 0 {
		ps.add(key+".within", "must be > 0 (how long the review may wait before it is flagged unreviewed, e.g. 24h), got %s", FormatDuration(bg.Within))
	}
	rv := bg.Review
	if rv == nil {
		ps.add(key+".review", "required: who reviews a break-glass request afterwards, e.g. {groups: [sre-leads], min_approvals: 1}; break-glass without a review is not accountable")
		return
	}
	rk := key + ".review"
	checkNonEmpty(ps, rk+".groups", rv.Groups)
	checkNonEmpty(ps, rk+".users", rv.Users)
	users := distinctNonEmpty(rv.Users)
	if rv.MinApprovals < 1 {
		ps.add(rk+".min_approvals", "must be >= 1, got %d", rv.MinApprovals)
	}
	switch {
	case len(distinctNonEmpty(rv.Groups)) == 0 && len(users) == 0:
		ps.add(rk, "no groups and no users: nobody could review a break-glass request, so its requester could never break glass again")
	case len(distinctNonEmpty(rv.Groups)) == 0 && rv.MinApprovals > len(users):
		ps.add(rk+".min_approvals", "is %d but only %d user(s) are named and no groups: reviews could never be approved", rv.MinApprovals, len(users))
	}
}

// breakGlassWarnings returns what is allowed but probably not meant in an
// action's break_glass: a within so short that every review is flagged or
// so long that nobody notices, a group that both breaks glass and reviews,
// requester entries that carry no groups, and (in dev mode) reviews nobody
// could approve.
func (c *Config) breakGlassWarnings(key string, a ActionConfig) []Problem {
	bg := a.BreakGlass
	if bg == nil || bg.Review == nil {
		return nil
	}
	var ws problems
	key += ".break_glass"
	switch {
	case bg.Within > 0 && bg.Within < breakGlassWithinShort:
		ws.add(key+".within", "is %s: reviews will almost always be flagged unreviewed before anyone can look; use hours, e.g. 24h", FormatDuration(bg.Within))
	case bg.Within > breakGlassWithinLong:
		ws.add(key+".within", "is %s: an unreviewed break-glass goes unnoticed for that long; the same person cannot break glass again meanwhile", FormatDuration(bg.Within))
	}
	for _, g := range bg.Groups {
		if slices.Contains(bg.Review.Groups, g) {
			ws.add(key+".groups", "%q is also a review group: the people who break glass review each other (self-review is refused, but one colleague may cover for another); prefer a separate review group", g)
			break
		}
	}
	withGroups := false
	for _, r := range a.Requesters {
		for _, rc := range c.Requesters {
			if rc.Name == r.Issuer && (rc.GroupsClaim != "" || rc.Name == "dev") {
				withGroups = true
			}
		}
	}
	if !withGroups {
		ws.add(key+".groups", "none of the action's requester issuers has a groups_claim: no token carries groups, so nobody can break glass; set groups_claim on the requesters entry")
	}
	if len(c.Dev.Approvers) > 0 {
		reviewers := ApproversConfig{Groups: bg.Review.Groups, Users: bg.Review.Users}
		eligible := 0
		for _, d := range c.Dev.Approvers {
			if devMayApprove(reviewers, d) {
				eligible++
			}
		}
		if eligible < bg.Review.MinApprovals {
			ws.add(key+".review", "in dev mode only %d of the dev approvers may review, fewer than min_approvals (%d)", eligible, bg.Review.MinApprovals)
		}
	}
	return ws
}
