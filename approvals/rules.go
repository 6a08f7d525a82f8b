package approvals

import (
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// RuleProgress is how far one approvers.require rule of a request is
// (policy.RuleProgress), as the card and the API show it.
type RuleProgress = policy.RuleProgress

// Progress is what r's votes decide under action's rules: the outcome,
// the approvals against r's quorum and each approvers.require rule's
// count under the best assignment of approvers to rules. The vote step
// decides with it (votesDecide), so what the card, the command line and
// the API show is what decides. A nil action (no longer declared) has no
// rules.
func Progress(action *policy.Action, r storage.Request) policy.Progress {
	if action == nil {
		action = &policy.Action{}
	}
	ballots := make([]policy.Ballot, len(r.Votes))
	for i, v := range r.Votes {
		ballots[i] = policy.Ballot{Approve: v.Decision == storage.DecisionApprove, Groups: v.Approver.Groups}
	}
	return action.Decide(r.MinApprovals, ballots)
}

// rulesRecord is the rules of a request.approved record: each rule's
// groups, min and the approvals assigned to it.
func rulesRecord(rules []policy.RuleProgress) []any {
	out := make([]any, len(rules))
	for i, r := range rules {
		out[i] = map[string]any{"groups": stringsAny(r.Groups), "min": r.Min, "have": r.Have}
	}
	return out
}
