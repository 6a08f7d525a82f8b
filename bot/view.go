package bot

// How stored records are shown at the API: the wire types are package
// api's; these turn the storage types into them.

import (
	"slices"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// APIRequest renders a stored request for the API; url is where a person
// can see it ("" when unknown).
func APIRequest(r storage.Request, url string) api.Request {
	v := api.Request{
		ID: r.ID, Action: r.Action, Params: r.Params, Reason: r.Reason, Links: apiLinks(r.Links), State: api.State(r.State),
		Requester:    api.Requester{Issuer: r.Requester.Issuer, Subject: r.Requester.Subject, Person: r.Requester.Person, Name: r.Requester.Name},
		MinApprovals: r.MinApprovals, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, URL: url, DecidedBy: r.DecidedBy,
	}
	for _, vote := range r.Votes {
		if vote.Decision == storage.DecisionApprove {
			v.Approvals++
		}
		v.Votes = append(v.Votes, api.Vote{
			Decision: api.Decision(vote.Decision), Name: vote.Approver.Name, Email: vote.Approver.Email, Subject: vote.Approver.Subject,
			Platform: vote.Approver.Platform, Time: vote.Time, Reason: vote.Reason,
		})
	}
	if r.State == storage.StatePending {
		v.Remaining = max(r.MinApprovals-v.Approvals, 0)
	}
	if !r.DecidedAt.IsZero() {
		t := r.DecidedAt
		v.DecidedAt = &t
	}
	if r.Execution != nil {
		v.Execution = &api.Execution{Status: api.ExecutionStatus(r.Execution.Status), Attempts: r.Execution.Attempts, LastError: r.Execution.LastError}
	}
	if bg := r.BreakGlass; bg != nil {
		v.BreakGlass = &api.BreakGlass{Review: bg.Review, Reviews: bg.Reviews, Due: bg.Due}
		if !bg.Unreviewed.IsZero() {
			t := bg.Unreviewed
			v.BreakGlass.Unreviewed = &t
		}
		if !bg.Lifted.IsZero() {
			t := bg.Lifted
			v.BreakGlass.Lifted = &t
		}
	}
	return v
}

func apiLinks(links []storage.Link) []api.Link {
	return mapSlice(links, func(l storage.Link) api.Link { return api.Link{Title: l.Title, URL: l.URL} })
}

// storageLinks is the reverse of apiLinks, for a create.
func storageLinks(links []api.Link) []storage.Link {
	return mapSlice(links, func(l api.Link) storage.Link { return storage.Link{Title: l.Title, URL: l.URL} })
}

// mapSlice returns f of each element of in, in order; nil stays nil, so an
// absent list stays absent.
func mapSlice[A, B any](in []A, f func(A) B) []B {
	if in == nil {
		return nil
	}
	out := make([]B, len(in))
	for i, a := range in {
		out[i] = f(a)
	}
	return out
}

// APILinkedAccount renders a stored link for the API (GET /v1/links, and
// `signoff links list --db --output json`).
func APILinkedAccount(l storage.IdentityLink) api.LinkedAccount {
	groups := l.Groups
	if groups == nil {
		groups = []string{}
	}
	return api.LinkedAccount{
		Platform: l.Platform, Workspace: l.Workspace, User: l.PlatformUser,
		Issuer: l.Issuer, Subject: l.Subject, Email: l.Email, Name: l.Name, Groups: groups,
		VerifiedAt: l.VerifiedAt, LinkedAt: l.LinkedAt, Stale: l.Stale, StaleReason: l.StaleReason, MatchedBy: l.MatchedBy,
	}
}

// withRules adds the progress of action a's approvers.require rules to v,
// the API's view of r, and counts what they still need in Remaining
// (approvals.Progress, the tally the vote step decides with).
func withRules(v *api.Request, a *policy.Action, r storage.Request) {
	p := approvals.Progress(a, r)
	for _, rule := range p.Rules {
		v.Rules = append(v.Rules, api.Rule{Groups: slices.Clone(rule.Groups), Min: rule.Min, Have: rule.Have, Needs: rule.Needs})
	}
	if r.State == storage.StatePending {
		v.Remaining = p.Remaining()
	}
}
