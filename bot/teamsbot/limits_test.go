package teamsbot

import (
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/chatlimit"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
)

// TestClickFloodIsLimitedPerAccount: a linked Teams user clicking far more
// than limits.clicks_per_minute gets at most that many clicks to
// approvals (each a vote.rejected record, as the user may not approve)
// and an invoke answer saying when to try again for every other one; the
// audit log grows by the limit, not by the flood. The Action.Submit
// fallback counts against the same limit; another account is not
// affected; a minute later the account may click again.
func TestClickFloodIsLimitedPerAccount(t *testing.T) {
	const limit = 4
	e := newEnv(t, func(o *Options) { o.Clicks = chatlimit.New(limit, o.Clock) })
	r := e.create("deploy-prod", deployParams(), "")
	e.deliver()
	eve := e.linked("eve", "dev") // linked, not an approver
	before := len(e.records())

	const flood = 5 * limit
	refused, told := 0, 0
	for range flood {
		msg := e.vote(eve, r.ID, VerbApprove).message()
		switch {
		case strings.Contains(msg, "Not counted"):
			refused++
		case strings.Contains(msg, "more than 4 times in the last minute") && strings.Contains(msg, "Try again in 15 seconds"):
			told++
		default:
			t.Errorf("unexpected answer %q", msg)
		}
	}
	if refused != limit || told != flood-limit {
		t.Errorf("%d clicks reached approvals and %d were told to wait; want %d and %d", refused, told, limit, flood-limit)
	}
	if got := len(e.recordsOf(audit.TypeVoteRejected)); got != limit {
		t.Errorf("%d vote.rejected records, want %d", got, limit)
	}
	if grew := len(e.records()) - before; grew > limit {
		t.Errorf("the audit log grew by %d records under a flood of %d clicks; want at most %d", grew, flood, limit)
	}
	if got := e.svc.Metrics().VotesRefused[string(approvals.ReasonNotEligible)]; got != limit {
		t.Errorf("approvals saw %d votes, want %d", got, limit)
	}

	// An older client's Action.Submit click is limited the same way.
	data := map[string]any{"signoff": "signoff.vote", "requestId": r.ID, "decision": "approve"}
	personal := teamstest.Place{Conversation: "a:1personal-eve", Type: "personal"}
	e.send(e.bf.SubmitMessage(teamstest.Click{Place: personal, User: eve, Data: data}))
	replies := e.bf.Replies()
	if len(replies) == 0 || !strings.Contains(replies[len(replies)-1], "Try again in") {
		t.Errorf("submit fallback while limited: replies %q", replies)
	}
	if got := len(e.recordsOf(audit.TypeVoteRejected)); got != limit {
		t.Errorf("a limited Action.Submit click reached approvals: %d vote.rejected records", got)
	}

	// Another account clicks as usual.
	alice := e.linked("alice", "sre")
	if msg := e.vote(alice, r.ID, VerbApprove).card(); msg == nil {
		t.Errorf("alice's click was not counted")
	}
	if got := e.get(r.ID); len(got.Votes) != 1 {
		t.Errorf("votes: %+v", got.Votes)
	}

	// A minute later the bucket is full again.
	e.clock.Advance(time.Minute)
	if msg := e.vote(eve, r.ID, VerbApprove).message(); !strings.Contains(msg, "Not counted") {
		t.Errorf("a minute later: %q", msg)
	}
}
