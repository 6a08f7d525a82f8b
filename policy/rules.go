package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Rule is one entry of approvers.require: at least Min approvals from
// people in one of Groups. Every rule of an action must hold, as well as
// min_approvals. One person's approval counts toward one rule only
// (separation of duties), so a person in two rules' groups satisfies at
// most one of them.
type Rule struct {
	Groups []string
	Min    int
}

// Ballot is one counted vote as the tally sees it: whether it approves and
// the groups its approver held when voting. Callers pass only eligible,
// distinct approvers (one ballot per person).
type Ballot struct {
	Approve bool
	Groups  []string
}

// RuleProgress is how far one rule is: Have approvals assigned to it of
// the Min it needs; Needs is what is still missing (0 once it holds).
type RuleProgress struct {
	Groups []string
	Min    int
	Have   int
	Needs  int
}

// String says what the rule still needs, e.g. "needs 1 more from
// security", or that it is met.
func (p RuleProgress) String() string {
	from := strings.Join(p.Groups, " or ")
	if p.Needs == 0 {
		return fmt.Sprintf("%d of %d from %s: met", p.Have, p.Min, from)
	}
	return fmt.Sprintf("needs %d more from %s (%d of %d)", p.Needs, from, p.Have, p.Min)
}

// Progress is what the votes so far decide, with the counts behind it.
type Progress struct {
	Outcome Outcome
	// Approvals counts the approving ballots; MinApprovals is the quorum
	// they are held to.
	Approvals    int
	MinApprovals int
	// Rules is one entry per approvers.require rule, in config order.
	Rules []RuleProgress
}

// RulesMet reports whether every rule holds.
func (p Progress) RulesMet() bool {
	for _, r := range p.Rules {
		if r.Needs > 0 {
			return false
		}
	}
	return true
}

// Remaining is how many more approvals the request needs at least: the
// missing quorum or the approvals the rules still miss, whichever is more.
func (p Progress) Remaining() int {
	if p.Outcome != OutcomePending {
		return 0
	}
	rules := 0
	for _, r := range p.Rules {
		rules += r.Needs
	}
	return max(p.MinApprovals-p.Approvals, rules, 0)
}

// Decide is the one decision over a request's votes: any deny denies;
// otherwise it is approved when at least minApprovals ballots approve and
// every one of a's approvers.require rules holds under the best assignment
// of approvers to rules (AssignRules). The vote step of the lifecycle
// decides with it, and the card, the CLI and the API show its Progress.
func (a *Action) Decide(minApprovals int, ballots []Ballot) Progress {
	minApprovals = max(minApprovals, 1)
	p := Progress{MinApprovals: minApprovals}
	denials := 0
	var groups [][]string
	for _, b := range ballots {
		if !b.Approve {
			denials++
			continue
		}
		p.Approvals++
		groups = append(groups, b.Groups)
	}
	have := AssignRules(a.Approvers.Require, groups)
	for i, r := range a.Approvers.Require {
		need := max(r.Min, 1)
		p.Rules = append(p.Rules, RuleProgress{Groups: slices.Clone(r.Groups), Min: need, Have: have[i], Needs: max(need-have[i], 0)})
	}
	switch {
	case denials > 0:
		p.Outcome = OutcomeDenied
	case p.Approvals >= minApprovals && p.RulesMet():
		p.Outcome = OutcomeApproved
	default:
		p.Outcome = OutcomePending
	}
	return p
}

// AssignRules assigns approvers (each given by their groups) to rules so
// that as many rule slots as possible are filled: rule i takes at most
// max(rules[i].Min, 1) approvers, each approver serves at most one rule,
// and only a rule one of whose groups the approver holds. It returns how
// many approvers each rule received. This is a maximum flow (a bipartite
// matching with capacities), found with augmenting paths, so the result
// does not depend on the order of the votes: approvers are taken in a
// canonical order, so equal inputs always give the same assignment.
func AssignRules(rules []Rule, approvers [][]string) []int {
	have := make([]int, len(rules))
	if len(rules) == 0 {
		return have
	}
	// Canonical order of approvers, so the assignment (not only its
	// total) is the same whatever order the votes came in.
	order := make([][]string, len(approvers))
	for i, g := range approvers {
		c := slices.Clone(g)
		slices.Sort(c)
		order[i] = slices.Compact(c)
	}
	slices.SortFunc(order, func(x, y []string) int { return slices.Compare(x, y) })

	eligible := make([][]bool, len(order)) // eligible[person][rule]
	for p, g := range order {
		eligible[p] = make([]bool, len(rules))
		for i, r := range rules {
			eligible[p][i] = intersects(r.Groups, g)
		}
	}
	assigned := make([]int, len(order)) // rule index or -1
	for p := range assigned {
		assigned[p] = -1
	}
	members := make([][]int, len(rules)) // the people a rule holds
	// augment finds a free slot for person p, moving others along an
	// alternating path; seen marks rules visited on this path.
	var augment func(p int, seen []bool) bool
	augment = func(p int, seen []bool) bool {
		for i := range rules {
			if !eligible[p][i] || seen[i] {
				continue
			}
			seen[i] = true
			if len(members[i]) < max(rules[i].Min, 1) {
				members[i] = append(members[i], p)
				assigned[p] = i
				return true
			}
			for k, q := range members[i] {
				if augment(q, seen) {
					members[i][k] = p
					assigned[p] = i
					return true
				}
			}
		}
		return false
	}
	for p := range order {
		augment(p, make([]bool, len(rules)))
	}
	for i := range rules {
		have[i] = len(members[i])
	}
	return have
}
