package teamsbot

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

func TestQuorumAcrossTwoApprovers(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	alice, bob := e.linked("alice", "sre"), e.linked("bob", "sre")

	click := e.click(alice, r.ID, VerbApprove, nil)
	ans := e.invokeActivity(click)
	if ans.StatusCode != http.StatusOK || ans.Type != "application/vnd.microsoft.card.adaptive" {
		t.Fatalf("answer to alice: %+v", ans)
	}
	if s := statusText(ans.card()); !strings.Contains(s, "1 of 2 approvals, 1 more needed") || !strings.Contains(s, "alice@example.com approved") {
		t.Errorf("card answered to alice: %q", s)
	}
	e.Deliver()
	updates := e.bf.OK(http.MethodPut)
	if len(updates) != 1 || updates[0].Conversation != chanOps || updates[0].ActivityID != e.Get(r.ID).Cards[0].MessageID {
		t.Fatalf("updates after alice: %+v", updates)
	}
	if s := statusText(updates[0].Card()); !strings.Contains(s, "1 of 2 approvals") {
		t.Errorf("updated card after alice: %q", s)
	}

	ans = e.vote(bob, r.ID, VerbApprove)
	final := ans.card()
	if s := statusText(final); !strings.Contains(s, "✅ Approved") || !strings.Contains(s, "bob@example.com approved") {
		t.Errorf("card answered to bob: %q", s)
	}
	if final["actions"] != nil {
		t.Error("buttons left on the approved card")
	}
	e.Deliver()
	updates = e.bf.OK(http.MethodPut)
	if len(updates) != 2 || !strings.Contains(statusText(updates[1].Card()), "Approved") {
		t.Fatalf("updates: %d", len(updates))
	}

	_, aliceAccount := e.teamsUser("alice")
	if v := e.CheckApprovedByTwo(r.ID, aliceAccount, "sub-alice"); v.Source != click["id"] {
		t.Errorf("vote: %+v", v)
	}
}

func TestDenyPath(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	alice := e.linked("alice", "sre")
	ans := e.vote(alice, r.ID, VerbDeny)
	if s := statusText(ans.card()); !strings.Contains(s, "⛔ Denied") || !strings.Contains(s, "alice@example.com denied") {
		t.Errorf("card: %q", s)
	}
	if got := e.Get(r.ID); got.State != storage.StateDenied {
		t.Fatalf("state %s", got.State)
	}
	e.Deliver()
	if u := e.bf.OK(http.MethodPut); len(u) != 1 || !strings.Contains(statusText(u[0].Card()), "Denied") {
		t.Errorf("updates: %+v", u)
	}
	if len(e.RecordsOf(audit.TypeRequestDenied)) != 1 {
		t.Error("no request.denied record")
	}
}

func TestClicksThatDoNotCount(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	votes := func() int { return len(e.Get(r.ID).Votes) }

	t.Run("unlinked", func(t *testing.T) {
		carol, _ := e.teamsUser("carol")
		ans := e.vote(carol, r.ID, VerbApprove)
		msg := ans.message()
		if ans.Type != "application/vnd.microsoft.activity.message" || !strings.Contains(msg, "not linked") ||
			!strings.Contains(msg, "https://signoff.example.com/link/start?id=link-aad-carol") || !strings.Contains(msg, "Nothing was counted") {
			t.Errorf("answer: %+v %q", ans, msg)
		}
		recs := e.RecordsOf(audit.TypeVoteRejected)
		last := recs[len(recs)-1]
		if last.Data["reason"] != string(approvals.ReasonNotLinked) || last.Actor.PlatformUser != "aad-carol" || last.Actor.Workspace != e.bf.TenantID() || last.RequestID != r.ID {
			t.Errorf("record: %+v", last)
		}
	})
	t.Run("stale", func(t *testing.T) {
		dan := e.linked("dan", "sre")
		_, p := e.teamsUser("dan")
		e.links.MarkStale(p)
		msg := e.vote(dan, r.ID, VerbApprove).message()
		if !strings.Contains(msg, "no longer valid") || !strings.Contains(msg, "id=relink-aad-dan") {
			t.Errorf("answer: %q", msg)
		}
		recs := e.RecordsOf(audit.TypeVoteRejected)
		if last := recs[len(recs)-1]; last.Data["reason"] != string(approvals.ReasonStaleIdentity) || last.Data["detail"] != string(linkflow.LinkReasonStale) {
			t.Errorf("record: %+v", last)
		}
	})
	t.Run("not eligible", func(t *testing.T) {
		eve := e.linked("eve", "dev")
		msg := e.vote(eve, r.ID, VerbApprove).message()
		if !strings.Contains(msg, "Not counted") || !strings.Contains(msg, "may not approve") {
			t.Errorf("answer: %q", msg)
		}
	})
	t.Run("self-approval", func(t *testing.T) {
		oct, p := e.teamsUser("octocat")
		id := identity("octocat", "sre")
		e.links.Link(p, id)
		msg := e.vote(oct, r.ID, VerbApprove).message()
		if !strings.Contains(msg, "someone else must approve") {
			t.Errorf("answer: %q", msg)
		}
	})
	if n := votes(); n != 0 {
		t.Fatalf("%d votes counted", n)
	}
	reasons := map[string]bool{}
	for _, rec := range e.RecordsOf(audit.TypeVoteRejected) {
		reasons[rec.Data["reason"].(string)] = true
	}
	for _, want := range []string{string(approvals.ReasonNotLinked), string(approvals.ReasonStaleIdentity), string(approvals.ReasonNotEligible), string(approvals.ReasonSelfApproval)} {
		if !reasons[want] {
			t.Errorf("no vote.rejected record with reason %s", want)
		}
	}

	t.Run("double click", func(t *testing.T) {
		alice := e.linked("alice", "sre")
		click := e.click(alice, r.ID, VerbApprove, nil)
		first := e.send(click)
		second := e.send(click) // Teams retries the same invoke
		if first.Code != http.StatusOK || !bytes.Equal(first.Body.Bytes(), second.Body.Bytes()) {
			t.Errorf("the repeated invoke got another answer:\n%s\n%s", first.Body, second.Body)
		}
		if n := votes(); n != 1 {
			t.Fatalf("%d votes after a repeated invoke", n)
		}
		// A second press (a new activity) by the same person counts once.
		msg := e.vote(alice, r.ID, VerbApprove).message()
		if !strings.Contains(msg, "already voted approve") {
			t.Errorf("second press: %q", msg)
		}
		if n := len(e.RecordsOf(audit.TypeVoteApprove)); n != 1 || votes() != 1 {
			t.Errorf("%d vote records, %d votes", n, votes())
		}
	})
	t.Run("decided", func(t *testing.T) {
		bob := e.linked("bob", "sre")
		e.vote(bob, r.ID, VerbApprove)
		frank := e.linked("frank", "sre")
		msg := e.vote(frank, r.ID, VerbDeny).message()
		if !strings.Contains(msg, "already approved") {
			t.Errorf("answer: %q", msg)
		}
		if got := e.Get(r.ID); got.State != storage.StateApproved || len(got.Votes) != 2 {
			t.Errorf("request: %s, %d votes", got.State, len(got.Votes))
		}
	})
	t.Run("unknown request", func(t *testing.T) {
		alice, _ := e.teamsUser("alice")
		msg := e.vote(alice, "req_doesnotexist", VerbApprove).message()
		if !strings.Contains(msg, "no request has id") {
			t.Errorf("answer: %q", msg)
		}
	})
}

func TestBadActionData(t *testing.T) {
	e := newEnv(t)
	alice := e.linked("alice", "sre")
	for name, act := range map[string]map[string]any{
		"not ours": e.bf.Invoke(teamstest.Click{Place: opsPlace, User: alice, Verb: "approve", Data: map[string]any{"foo": "bar"}}),
		"bad verb": e.bf.Invoke(teamstest.Click{Place: opsPlace, User: alice, Verb: "delete", Data: map[string]any{"signoff": "signoff.vote", "requestId": "req_x"}}),
		"no user": func() map[string]any {
			a := e.bf.Invoke(teamstest.Click{Place: opsPlace, User: teamstest.User{ID: "29:guest"}, Verb: "approve", Data: map[string]any{"signoff": "signoff.vote", "requestId": "req_x"}})
			return a
		}(),
	} {
		ans := e.invokeActivity(act)
		if ans.StatusCode != http.StatusBadRequest || ans.Type != "application/vnd.microsoft.error" {
			t.Errorf("%s: %+v", name, ans)
		}
	}
}

func TestStepUpAnswersWithSignInLink(t *testing.T) {
	e := newEnv(t)
	r := e.Create("break-glass", nil, "")
	e.Deliver()
	alice := e.linked("alice", "sre")
	msg := e.vote(alice, r.ID, VerbApprove).message()
	if !strings.Contains(msg, "fresh sign-in") || !strings.Contains(msg, "https://signoff.example.com/link/start?id=stepup-aad-alice") {
		t.Errorf("answer: %q", msg)
	}
	if got := e.links.StepUps(); len(got) != 1 || got[0] != "aad-alice:"+r.ID+":approve" {
		t.Errorf("step-ups: %q", got)
	}
	if len(e.Get(r.ID).Votes) != 0 {
		t.Error("a vote counted before the step-up sign-in")
	}
}

func TestReasonRequiredToDeny(t *testing.T) {
	e := newEnv(t)
	r := e.Create("restart", nil, "")
	e.Deliver()
	alice := e.linked("alice", "sre")
	msg := e.vote(alice, r.ID, VerbDeny).message()
	if !strings.Contains(msg, "requires a reason to deny") || !strings.Contains(msg, "Reason field") {
		t.Errorf("answer: %q", msg)
	}
	ans := e.invokeActivity(e.click(alice, r.ID, VerbDeny, map[string]any{commentInputID: "  host is healthy  "}))
	if ans.Type != "application/vnd.microsoft.card.adaptive" {
		t.Fatalf("answer: %s", ans.message())
	}
	got := e.Get(r.ID)
	if got.State != storage.StateDenied || got.Votes[0].Reason != "host is healthy" {
		t.Errorf("request: %s %+v", got.State, got.Votes)
	}
	if s := statusText(ans.card()); !strings.Contains(s, "denied 2026-03-01 12:00 UTC: host is healthy") {
		t.Errorf("card: %q", s)
	}
}

// serve posts an activity without waiting for the work it starts.
func (e *env) serve(act map[string]any) *httptest.ResponseRecorder {
	body, _ := json.Marshal(act)
	req := httptest.NewRequest(http.MethodPost, MessagesPath, bytes.NewReader(body))
	req.Header.Set("Authorization", e.bf.Authorization(act))
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	return rec
}

func TestSlowIdentityCheckAnswersInTime(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	alice := e.linked("alice", "sre")
	e.links.SetSlow(true)

	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- e.serve(e.click(alice, r.ID, VerbApprove, nil)) }()
	select {
	case <-e.links.Entered():
	case <-time.After(10 * time.Second):
		t.Fatal("Resolve was never called")
	}
	// The IdP is slow: the invoke's timer runs out first.
	e.clock.Advance(DefaultResolveTimeout)
	var rec *httptest.ResponseRecorder
	select {
	case rec = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the invoke was not answered when the identity check timed out")
	}
	var ans decodedInvoke
	_ = json.Unmarshal(rec.Body.Bytes(), &ans)
	if msg := ans.message(); !strings.Contains(msg, "Checking your identity") || !strings.Contains(msg, "Click again in a moment") {
		t.Errorf("answer: %q", msg)
	}
	// The check completes in the background; nothing was counted.
	e.links.Release()
	e.bot.work.Wait()
	if n := len(e.Get(r.ID).Votes); n != 0 {
		t.Errorf("%d votes after a timed-out identity check", n)
	}
	e.links.SetSlow(false)
	if ans := e.vote(alice, r.ID, VerbApprove); ans.Type != "application/vnd.microsoft.card.adaptive" {
		t.Errorf("click again: %s", ans.message())
	}
}

func TestIdPDownAnswersRetry(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	alice := e.linked("alice", "sre")
	e.links.SetDown(true)
	if msg := e.vote(alice, r.ID, VerbApprove).message(); !strings.Contains(msg, "could not be confirmed") {
		t.Errorf("answer: %q", msg)
	}
	if len(e.Get(r.ID).Votes) != 0 {
		t.Error("vote counted while the IdP was down")
	}
}

func TestSubmitFallbackFromOlderClients(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	cardID := e.Get(r.ID).Cards[0].MessageID
	alice := e.linked("alice", "sre")
	data := map[string]any{"signoff": "signoff.vote", "requestId": r.ID, "decision": "approve"}

	if rec := e.send(e.bf.SubmitMessage(teamstest.Click{Place: opsPlace, User: alice, ReplyToID: cardID, Data: data})); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if got := e.Get(r.ID); len(got.Votes) != 1 || got.Votes[0].Approver.PlatformUser != "aad-alice" {
		t.Fatalf("votes: %+v", got.Votes)
	}
	replies := e.bf.Replies()
	if len(replies) != 1 || !strings.Contains(replies[0], "counted (1 of 2)") {
		t.Errorf("replies: %q", replies)
	}
	if calls := e.bf.OK(http.MethodPost); calls[len(calls)-1].ActivityID != cardID {
		t.Errorf("the reply is not in the card's thread: %+v", calls[len(calls)-1])
	}

	// In a channel a sign-in link would be public: it is not posted.
	carol, _ := e.teamsUser("carol")
	e.send(e.bf.SubmitMessage(teamstest.Click{Place: opsPlace, User: carol, ReplyToID: cardID, Data: data}))
	replies = e.bf.Replies()
	if last := replies[len(replies)-1]; !strings.Contains(last, "not linked") || strings.Contains(last, "link/start") || !strings.Contains(last, "update Teams") {
		t.Errorf("public reply: %q", last)
	}
	// In a personal chat it is.
	personal := teamstest.Place{Conversation: "a:1personal-carol", Type: "personal"}
	e.send(e.bf.SubmitMessage(teamstest.Click{Place: personal, User: carol, Data: data}))
	replies = e.bf.Replies()
	if last := replies[len(replies)-1]; !strings.Contains(last, "link/start?id=link-aad-carol") {
		t.Errorf("private reply: %q", last)
	}

	// An ordinary message is ignored.
	before := len(e.bf.Calls())
	msg := e.bf.SubmitMessage(teamstest.Click{Place: opsPlace, User: alice})
	msg["text"] = "hello bot"
	delete(msg, "value")
	if rec := e.send(msg); rec.Code != http.StatusOK || len(e.bf.Calls()) != before {
		t.Errorf("ordinary message: %d, %d calls", rec.Code, len(e.bf.Calls())-before)
	}
}

func TestShutdownRefusesNewClicks(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	alice := e.linked("alice", "sre")
	if err := e.bot.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if msg := e.vote(alice, r.ID, VerbApprove).message(); !strings.Contains(msg, "restarting") {
		t.Errorf("answer: %q", msg)
	}
	if len(e.Get(r.ID).Votes) != 0 {
		t.Error("vote counted during shutdown")
	}
}

// storedLinksResolver is a resolver that says its identities are stored
// links (chatflow.StoredLinks), as the account-link flow's Linker does.
type storedLinksResolver struct{ IdentityResolver }

func (storedLinksResolver) ResolvesStoredLinks() bool { return true }

// The bound the bot puts around its resolver passes on whether the
// resolver's identities are stored links, so Teams votes through a link
// are checked against it in their transaction as Slack's are.
func TestBoundedResolverPassesOnStoredLinks(t *testing.T) {
	e := newEnv(t)
	if (boundedResolver{e.bot}).ResolvesStoredLinks() {
		t.Error("a resolver that keeps no stored links was reported as one")
	}
	e.bot.res = storedLinksResolver{e.bot.res}
	if !(boundedResolver{e.bot}).ResolvesStoredLinks() {
		t.Error("the stored-links resolver's answer was not passed on")
	}
}
