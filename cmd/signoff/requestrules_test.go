package main

import (
	"testing"

	"github.com/signoff-dev/signoff/api"
)

func TestPendingSummarySaysWhichRulesNeedWhom(t *testing.T) {
	v := api.Request{Approvals: 1, MinApprovals: 2, Remaining: 1, Rules: []api.Rule{
		{Groups: []string{"sre"}, Min: 1, Have: 1},
		{Groups: []string{"security"}, Min: 1, Needs: 1},
	}}
	if got, want := pendingSummary(v), "1 of 2 approvals, 1 more needed; needs 1 more from security"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
