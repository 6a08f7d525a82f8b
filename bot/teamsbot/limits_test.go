package teamsbot

import (
	"strings"
	"testing"
	"time"

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
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	eve := e.linked("eve", "dev") // linked, not an approver
	before := len(e.Records())

	const flood = 5 * limit
	var answers []string
	for range flood {
		answers = append(answers, e.vote(eve, r.ID, VerbApprove).message())
	}
	e.CheckClickFlood(answers, limit, before)

	// An older client's Action.Submit click is limited the same way.
	data := map[string]any{"signoff": "signoff.vote", "requestId": r.ID, "decision": "approve"}
	personal := teamstest.Place{Conversation: "a:1personal-eve", Type: "personal"}
	e.send(e.bf.SubmitMessage(teamstest.Click{Place: personal, User: eve, Data: data}))
	replies := e.bf.Replies()
	if len(replies) == 0 || !strings.Contains(replies[len(replies)-1], "Try again in") {
		t.Errorf("submit fallback while limited: replies %q", replies)
	}
	if got := len(e.RecordsOf(audit.TypeVoteRejected)); got != limit {
		t.Errorf("a limited Action.Submit click reached approvals: %d vote.rejected records", got)
	}

	// Another account clicks as usual.
	alice := e.linked("alice", "sre")
	if msg := e.vote(alice, r.ID, VerbApprove).card(); msg == nil {
		t.Errorf("alice's click was not counted")
	}
	if got := e.Get(r.ID); len(got.Votes) != 1 {
		t.Errorf("votes: %+v", got.Votes)
	}

	// A minute later the bucket is full again.
	e.clock.Advance(time.Minute)
	if msg := e.vote(eve, r.ID, VerbApprove).message(); !strings.Contains(msg, "Not counted") {
		t.Errorf("a minute later: %q", msg)
	}
}
