package policy

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func approve(groups ...string) Ballot { return Ballot{Approve: true, Groups: groups} }

func TestDecideWithRules(t *testing.T) {
	sreSec := []Rule{{Groups: []string{"sre"}, Min: 1}, {Groups: []string{"security"}, Min: 1}}
	tests := []struct {
		name     string
		rules    []Rule
		min      int
		ballots  []Ballot
		want     Outcome
		haves    []int
		remain   int
		describe string // of the first unmet rule
	}{
		{name: "no rules: quorum alone", min: 2, ballots: []Ballot{approve("a"), approve("b")}, want: OutcomeApproved},
		{name: "one person in both groups satisfies one rule only", rules: sreSec, min: 1,
			ballots: []Ballot{approve("sre", "security")}, want: OutcomePending, haves: []int{1, 0}, remain: 1, describe: "needs 1 more from security (0 of 1)"},
		{name: "two people in both groups satisfy both", rules: sreSec, min: 2,
			ballots: []Ballot{approve("sre", "security"), approve("security", "sre")}, want: OutcomeApproved, haves: []int{1, 1}},
		{name: "best assignment, not vote order", rules: sreSec, min: 2,
			ballots: []Ballot{approve("sre", "security"), approve("sre")}, want: OutcomeApproved, haves: []int{1, 1}},
		{name: "rules met but quorum not", rules: sreSec, min: 3,
			ballots: []Ballot{approve("sre"), approve("security")}, want: OutcomePending, haves: []int{1, 1}, remain: 1},
		{name: "quorum met but a rule not", rules: sreSec, min: 2,
			ballots: []Ballot{approve("sre"), approve("sre"), approve("dev")}, want: OutcomePending, haves: []int{1, 0}, remain: 1},
		{name: "person in no rule counts toward min_approvals", rules: []Rule{{Groups: []string{"sre"}, Min: 1}}, min: 2,
			ballots: []Ballot{approve("sre"), approve("dev")}, want: OutcomeApproved, haves: []int{1}},
		{name: "rule with two groups", rules: []Rule{{Groups: []string{"dba", "sre"}, Min: 2}}, min: 1,
			ballots: []Ballot{approve("dba"), approve("sre")}, want: OutcomeApproved, haves: []int{2}},
		{name: "rules that cannot all be met by these approvers", rules: []Rule{{Groups: []string{"sre"}, Min: 2}, {Groups: []string{"sre"}, Min: 1}}, min: 1,
			ballots: []Ballot{approve("sre"), approve("sre")}, want: OutcomePending, haves: []int{2, 0}, remain: 1},
		{name: "a deny denies even with rules met", rules: sreSec, min: 1,
			ballots: []Ballot{approve("sre"), approve("security"), {Groups: []string{"dev"}}}, want: OutcomeDenied, haves: []int{1, 1}},
		{name: "denials do not count toward rules", rules: sreSec, min: 1,
			ballots: []Ballot{{Groups: []string{"sre"}}}, want: OutcomeDenied, haves: []int{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Action{Approvers: Approvers{Require: tt.rules}}
			p := a.Decide(tt.min, tt.ballots)
			if p.Outcome != tt.want {
				t.Fatalf("outcome %s, want %s (%+v)", p.Outcome, tt.want, p)
			}
			var haves []int
			for _, r := range p.Rules {
				haves = append(haves, r.Have)
			}
			if !slices.Equal(haves, tt.haves) {
				t.Errorf("haves %v, want %v", haves, tt.haves)
			}
			if p.Remaining() != tt.remain {
				t.Errorf("remaining %d, want %d", p.Remaining(), tt.remain)
			}
			if tt.describe != "" {
				for _, r := range p.Rules {
					if r.Needs > 0 {
						if r.String() != tt.describe {
							t.Errorf("describe %q, want %q", r.String(), tt.describe)
						}
						break
					}
				}
			}
		})
	}
}

// oracle is the best total of rule slots filled, by trying every
// assignment of approvers to a rule or to none.
func oracle(rules []Rule, approvers [][]string) int {
	best := 0
	counts := make([]int, len(rules))
	var try func(p int)
	try = func(p int) {
		if p == len(approvers) {
			total := 0
			for i, c := range counts {
				total += min(c, max(rules[i].Min, 1))
			}
			best = max(best, total)
			return
		}
		try(p + 1) // to no rule
		for i, r := range rules {
			if intersects(r.Groups, approvers[p]) {
				counts[i]++
				try(p + 1)
				counts[i]--
			}
		}
	}
	try(0)
	return best
}

func TestAssignRulesAgainstOracle(t *testing.T) {
	groups := []string{"a", "b", "c"}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 3000 {
		var rules []Rule
		for range 1 + rng.IntN(3) {
			var g []string
			for _, x := range groups {
				if rng.IntN(2) == 0 {
					g = append(g, x)
				}
			}
			if len(g) == 0 {
				g = []string{groups[rng.IntN(3)]}
			}
			rules = append(rules, Rule{Groups: g, Min: 1 + rng.IntN(3)})
		}
		var approvers [][]string
		for range rng.IntN(7) {
			var g []string
			for _, x := range append(groups, "other") {
				if rng.IntN(3) == 0 {
					g = append(g, x)
				}
			}
			approvers = append(approvers, g)
		}
		have := AssignRules(rules, approvers)
		total := 0
		for i, h := range have {
			if h > max(rules[i].Min, 1) {
				t.Fatalf("case %d: rule %d over its capacity: %v", n, i, have)
			}
			total += h
		}
		if want := oracle(rules, approvers); total != want {
			t.Fatalf("case %d: rules %v approvers %v: assigned %v (total %d), oracle %d", n, rules, approvers, have, total, want)
		}
		// Independent of vote order: every permutation gives the same.
		shuffled := slices.Clone(approvers)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if again := AssignRules(rules, shuffled); !slices.Equal(again, have) {
			t.Fatalf("case %d: order changed the assignment: %v then %v", n, have, again)
		}
	}
}

func TestRuleProgressWording(t *testing.T) {
	if s := (RuleProgress{Groups: []string{"sre", "dba"}, Min: 2, Have: 1, Needs: 1}).String(); s != "needs 1 more from sre or dba (1 of 2)" {
		t.Errorf("got %q", s)
	}
	if s := (RuleProgress{Groups: []string{"sre"}, Min: 1, Have: 1}).String(); s != "1 of 1 from sre: met" {
		t.Errorf("got %q", s)
	}
}
