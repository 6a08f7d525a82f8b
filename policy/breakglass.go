package policy

import (
	"slices"
	"strings"
	"time"
)

// BreakGlass lets a requester in one of Groups have a request of the
// action approved at once, without votes, on the condition that it is
// reviewed afterwards: the review is a request of its own, of the action's
// review action (ReviewAction), approved by Review.
type BreakGlass struct {
	// Groups are requester groups (the groups the requester's verified
	// token carries, read from its requesters entry's groups_claim);
	// membership in any one allows break-glass.
	Groups []string
	// Review says who reviews a break-glass request and how many must
	// approve the review. Self-approval is never allowed on a review.
	Review Approvers
	// Within is how long a review may stay pending before it is flagged
	// unreviewed (audited and announced again).
	Within time.Duration
}

// ReviewSuffix ends the name of an action's review action
// ("deploy-prod:review"). Action names cannot contain ':', so a review
// action never collides with a declared one.
const ReviewSuffix = ":review"

// ReviewActionName is the name of the review action of the named action.
func ReviewActionName(action string) string { return action + ReviewSuffix }

// MayBreakGlass reports whether a requester whose verified token carries
// groups may break glass on a: the action has break_glass and one of the
// groups is one of its break_glass.groups.
func (a *Action) MayBreakGlass(groups []string) bool {
	return a.BreakGlass != nil && intersects(a.BreakGlass.Groups, groups)
}

// ReviewAction returns the action a review of a's break-glass requests is
// a request of, or nil when a has no break_glass. It cannot be requested
// (it has no requester rules), runs nothing on approval, is announced
// where a is, and is approved by break_glass.review, never by the person
// reviewed (no self-approval). It is not bound by windows or freezes and
// has no reminders of its own: the within deadline is its reminder.
func (a *Action) ReviewAction() *Action {
	if a.BreakGlass == nil {
		return nil
	}
	review := a.BreakGlass.Review
	review.Groups = slices.Clone(review.Groups)
	review.Users = slices.Clone(review.Users)
	review.AllowSelfApproval = false
	review.Require = nil
	return &Action{
		Name:                 ReviewActionName(a.Name),
		Description:          "Review of a break-glass request of " + a.Name,
		Approvers:            review,
		TTL:                  a.BreakGlass.Within,
		Notify:               a.Notify,
		StepUp:               a.StepUp,
		RequireApproveReason: a.RequireApproveReason,
		RequireDenyReason:    a.RequireDenyReason,
		AttestationAudience:  a.AttestationAudience,
	}
}

// reviewAction resolves a review action's name to the review action of
// the declared action it reviews.
func (p *Policy) reviewAction(name string) (*Action, bool) {
	base, ok := strings.CutSuffix(name, ReviewSuffix)
	if !ok {
		return nil, false
	}
	a, ok := p.Actions[base]
	if !ok || a.BreakGlass == nil {
		return nil, false
	}
	return a.ReviewAction(), true
}
