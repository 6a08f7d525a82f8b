package cards

import (
	"testing"

	"github.com/signoff-dev/signoff/storage"
)

// TestCountedLine: the confirmation of a counted vote says what the vote
// did, with the platform's icons.
func TestCountedLine(t *testing.T) {
	m := Markup{Approved: "(ok)", Denied: "(no)"}
	pending := storage.Request{State: storage.StatePending, MinApprovals: 2}
	approved := storage.Request{State: storage.StateApproved, MinApprovals: 2}
	denied := storage.Request{State: storage.StateDenied, MinApprovals: 2}
	for _, c := range []struct {
		r         storage.Request
		approvals int
		d         storage.Decision
		want      string
	}{
		{pending, 1, storage.DecisionApprove, "(ok) Your approval of deploy (req_1) was counted (1 of 2); 1 more needed."},
		{pending, 3, storage.DecisionApprove, "(ok) Your approval of deploy (req_1) was counted (3 of 2); 0 more needed."},
		{approved, 2, storage.DecisionApprove, "(ok) Your approval of deploy (req_1) was counted (2 of 2); the request is approved."},
		{denied, 0, storage.DecisionDeny, "(no) Your deny of deploy (req_1) was counted; the request is denied."},
	} {
		if got := CountedLine(c.r, c.approvals, c.d, "deploy (req_1)", m); got != c.want {
			t.Errorf("CountedLine(%s, %d, %s) = %q, want %q", c.r.State, c.approvals, c.d, got, c.want)
		}
	}
}
