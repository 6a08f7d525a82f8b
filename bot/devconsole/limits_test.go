package devconsole_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/chatlimit"
	"github.com/signoff-dev/signoff/bot/devconsole"
	"github.com/signoff-dev/signoff/clock"
)

// TestChatVotesLimitedPerChatUser: votes "as chat user" beyond the
// per-account limit are refused with a message saying when to try again
// and never reach approvals; another chat user is not affected; a minute
// later the limit is back.
func TestChatVotesLimitedPerChatUser(t *testing.T) {
	const limit = 3
	clk := clock.NewFake(time.Now())
	clicks := chatlimit.New(limit, clk)
	f := newChatFixture(t, func(o *devconsole.Options) { o.Clicks = clicks })
	r := f.create(t, "x")
	f.link(t, "bob", nil, time.Time{}) // linked, but in no approver group: every vote is refused and audited
	token := csrfRE.FindStringSubmatch(f.page(t))[1]
	vote := func(user string) string {
		_, body := f.post(t, "/dev/chat-vote", url.Values{"csrf": {token}, "request": {r.ID}, "chat_user": {user}, "decision": {"approve"}})
		return body
	}
	refused := func() uint64 { return f.svc.Metrics().VotesRefused[string(approvals.ReasonNotEligible)] }

	limited := 0
	for range 3 * limit {
		body := vote("bob")
		switch {
		case strings.Contains(body, "may not approve"):
		case strings.Contains(body, "more than 3 times in the last minute") && strings.Contains(body, "Try again in"):
			limited++
		default:
			t.Fatalf("vote answered neither with a refusal nor with the limit:\n%s", body)
		}
	}
	if got := refused(); got != limit {
		t.Errorf("%d votes reached approvals, want %d", got, limit)
	}
	if limited != 2*limit || clicks.Refused() != 2*limit {
		t.Errorf("%d votes told to wait (limiter counted %d), want %d", limited, clicks.Refused(), 2*limit)
	}
	// Another chat user has their own allowance.
	if body := vote("alice"); !strings.Contains(body, "not linked") {
		t.Errorf("alice's vote was limited:\n%s", body)
	}
	clk.Advance(time.Minute)
	if body := vote("bob"); !strings.Contains(body, "may not approve") {
		t.Errorf("a minute later bob is still limited:\n%s", body)
	}
}
