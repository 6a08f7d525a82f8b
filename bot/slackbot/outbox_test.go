package slackbot

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/storage"
)

// blockByID returns the block with block_id id, or nil.
func blockByID(blocks []map[string]any, id string) map[string]any {
	for _, b := range blocks {
		if b["block_id"] == id {
			return b
		}
	}
	return nil
}

func sectionText(b map[string]any) string {
	if b == nil {
		return ""
	}
	t, _ := b["text"].(map[string]any)
	s, _ := t["text"].(string)
	return s
}

func TestCardPostedOnCreate(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "ship the fix for INC-42", storage.Link{Title: "CI run", URL: "https://ci.example/run/7"})
	e.Deliver()

	posts := e.slack.OK("chat.postMessage")
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1", len(posts))
	}
	p := posts[0]
	if p.Form.Get("channel") != "C1" {
		t.Errorf("posted to %q, want C1", p.Form.Get("channel"))
	}
	if p.Form.Get("unfurl_links") != "false" {
		t.Errorf("link unfurling not disabled: %v", p.Form)
	}
	blocks := blocksOf(t, p)
	header := blocks[0]
	if header["type"] != "header" || !strings.Contains(header["text"].(map[string]any)["text"].(string), "deploy-prod") {
		t.Errorf("header block: %v", header)
	}
	if s := sectionText(blockByID(blocks, "requester")); !strings.Contains(s, "Requested by *octocat* (issuer github)") || !strings.Contains(s, "Deploy a service to production") {
		t.Errorf("requester section: %q", s)
	}
	params := blockByID(blocks, "params-0")
	fields, _ := params["fields"].([]any)
	var ftexts []string
	for _, f := range fields {
		ftexts = append(ftexts, f.(map[string]any)["text"].(string))
	}
	if strings.Join(ftexts, "|") != "*service*\napi|*version*\n1.4.2" {
		t.Errorf("param fields: %q", ftexts)
	}
	if s := sectionText(blockByID(blocks, "reason")); s != "*Reason*\nship the fix for INC-42" {
		t.Errorf("reason section: %q", s)
	}
	if s := sectionText(blockByID(blocks, "links")); s != "*Links*\n• <https://ci.example/run/7|CI run> (ci.example)" {
		t.Errorf("links section: %q", s)
	}
	meta, _ := json.Marshal(blockByID(blocks, "meta"))
	if !strings.Contains(string(meta), "Needs 2 approvals") || !strings.Contains(string(meta), `Expires \u003c!date^`) {
		t.Errorf("meta block: %s", meta)
	}
	if s := sectionText(blockByID(blocks, "status")); !strings.Contains(s, "0 of 2 approvals, 2 more needed") {
		t.Errorf("status: %q", s)
	}
	actions := blockByID(blocks, "actions")
	if actions == nil {
		t.Fatal("no actions block")
	}
	els := actions["elements"].([]any)
	approve, deny := els[0].(map[string]any), els[1].(map[string]any)
	if approve["action_id"] != ActionApprove || approve["style"] != "primary" || approve["value"] != r.ID || approve["text"].(map[string]any)["text"] != "Approve" {
		t.Errorf("approve button: %v", approve)
	}
	if deny["action_id"] != ActionDeny || deny["style"] != "danger" || deny["value"] != r.ID || deny["confirm"] == nil {
		t.Errorf("deny button: %v", deny)
	}

	got := e.Get(r.ID)
	if len(got.Cards) != 1 || got.Cards[0] != (storage.Card{Platform: "slack", Conversation: "C1", MessageID: "1772366400.000001"}) {
		t.Errorf("cards: %+v", got.Cards)
	}
	if n, _ := e.bot.DeliverOnce(context.Background()); n != 0 {
		t.Errorf("%d entries left after delivery", n)
	}
}

func TestCardUpdatedOnEveryStateChange(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	ts := e.Get(r.ID).Cards[0].MessageID

	vote := func(name string) {
		t.Helper()
		e.VoteAs(r.ID, identity(name, "sre"), storage.DecisionApprove,
			approvals.Source{Platform: "slack", Workspace: testTeam, PlatformUser: "U" + name, CallbackID: "cb-" + name})
		e.Deliver()
	}
	vote("alice")
	vote("bob")

	updates := e.slack.OK("chat.update")
	if len(updates) != 2 {
		t.Fatalf("%d updates, want 2", len(updates))
	}
	for _, u := range updates {
		if u.Form.Get("channel") != "C1" || u.Form.Get("ts") != ts {
			t.Errorf("update went to %s/%s, want C1/%s", u.Form.Get("channel"), u.Form.Get("ts"), ts)
		}
	}
	first, second := blocksOf(t, updates[0]), blocksOf(t, updates[1])
	if s := sectionText(blockByID(first, "status")); !strings.Contains(s, "1 of 2 approvals, 1 more needed") || !strings.Contains(s, "alice@example.com approved <!date^") {
		t.Errorf("first update status: %q", s)
	}
	if blockByID(first, "actions") == nil {
		t.Error("buttons removed before the request was decided")
	}
	if s := sectionText(blockByID(second, "status")); !strings.Contains(s, "*Approved*") || !strings.Contains(s, "2 of 2") || !strings.Contains(s, "bob@example.com approved") || !strings.Contains(s, "*Execution:* pending") {
		t.Errorf("second update status: %q", s)
	}
	if blockByID(second, "actions") != nil {
		t.Error("buttons still shown on a decided request")
	}

	// The execution result shows too.
	claimed, err := e.svc.Claim(context.Background(), approvals.KindExecute, 1, time.Minute)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim execution: %v %v", claimed, err)
	}
	if _, err := e.svc.RecordExecution(context.Background(), claimed[0], approvals.ExecutionResult{OK: true, StatusCode: 200}); err != nil {
		t.Fatal(err)
	}
	e.Deliver()
	updates = e.slack.OK("chat.update")
	if len(updates) != 3 || !strings.Contains(sectionText(blockByID(blocksOf(t, updates[2]), "status")), "*Execution:* :rocket: succeeded") {
		t.Errorf("execution not shown: %d updates", len(updates))
	}
	if len(e.slack.OK("chat.postMessage")) != 1 {
		t.Error("card posted more than once")
	}
}

// Slack answers rate_limited, then a 500, then ok: the update lands once
// per state change, in order, and the post is never repeated; a younger
// update that is due earlier waits behind the failing one.
func TestOutboxRetriesInOrderWithoutDuplicates(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.slack.Fail("chat.postMessage", rateLimited(3))
	e.Deliver()
	if n := len(e.slack.OK("chat.postMessage")); n != 0 {
		t.Fatalf("posted through a rate limit: %d", n)
	}
	e.clock.Advance(3 * time.Second)
	e.Deliver()
	if n := len(e.slack.OK("chat.postMessage")); n != 1 {
		t.Fatalf("%d posts after the rate limit, want 1", n)
	}

	vote := func(name string) {
		t.Helper()
		e.VoteAs(r.ID, identity(name, "sre"), storage.DecisionApprove,
			approvals.Source{Platform: "slack", Workspace: testTeam, PlatformUser: "U" + name})
	}
	e.slack.Fail("chat.update", rateLimited(1), serverError)
	vote("alice")
	e.Deliver() // 429
	vote("bob") // a younger update, due now, while alice's waits for Retry-After
	e.Deliver() // bob's must wait behind alice's
	if calls := e.slack.All("chat.update"); len(calls) != 1 {
		t.Fatalf("%d chat.update calls while the first was rate limited, want 1", len(calls))
	}
	e.clock.Advance(time.Second)
	e.Deliver() // 500 → backoff
	if n := len(e.slack.OK("chat.update")); n != 0 {
		t.Fatalf("%d updates landed during failures", n)
	}
	e.clock.Advance(cards.Backoff(2))
	e.Deliver()

	calls := e.slack.All("chat.update")
	if len(calls) != 4 || calls[0].OK || calls[1].OK || !calls[2].OK || !calls[3].OK {
		var oks []bool
		for _, c := range calls {
			oks = append(oks, c.OK)
		}
		t.Fatalf("chat.update calls (ok?) = %v, want [false false true true]", oks)
	}
	if n := len(e.slack.OK("chat.postMessage")); n != 1 {
		t.Errorf("%d posts, want 1", n)
	}
	if n, _ := e.bot.DeliverOnce(context.Background()); n != 0 {
		t.Errorf("%d entries left", n)
	}
}

func TestUpdateWaitsForPost(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.slack.Fail("chat.postMessage", serverError, serverError)
	e.Deliver()
	e.VoteAs(r.ID, identity("alice", "sre"), storage.DecisionApprove,
		approvals.Source{Platform: "slack", Workspace: testTeam, PlatformUser: "Ualice"})
	for range 4 {
		e.Deliver()
		e.clock.Advance(cards.Backoff(2))
	}
	var seq []string
	for _, c := range e.slack.Calls() {
		if c.OK {
			seq = append(seq, c.Method)
		} else {
			seq = append(seq, c.Method+"(failed)")
		}
	}
	want := "chat.postMessage(failed) chat.postMessage(failed) chat.postMessage chat.update"
	if strings.Join(seq, " ") != want {
		t.Fatalf("calls %q, want %q", strings.Join(seq, " "), want)
	}
}

// Slack took the post, then the transaction storing the card failed: the
// retry stores the card without posting it again.
func TestPostNotRepeatedWhenCompletionFails(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.store.failUpdate(2) // 1: the claim, 2: the completion
	if _, err := e.bot.DeliverOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(e.slack.OK("chat.postMessage")); n != 1 {
		t.Fatalf("%d posts, want 1", n)
	}
	if cards := e.Get(r.ID).Cards; len(cards) != 0 {
		t.Fatalf("card stored despite the failed completion: %v", cards)
	}
	e.clock.Advance(time.Minute)
	e.Deliver()
	if n := len(e.slack.OK("chat.postMessage")); n != 1 {
		t.Fatalf("card posted %d times, want once", n)
	}
	cards := e.Get(r.ID).Cards
	if len(cards) != 1 || cards[0].MessageID != "1772366400.000001" {
		t.Fatalf("cards: %+v", cards)
	}
}

func TestSlackErrorsAreRetriedNotDropped(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.slack.Fail("chat.postMessage", slackError("not_in_channel"), slackError("channel_not_found"))
	e.Deliver()
	e.clock.Advance(cards.Backoff(1))
	e.Deliver()
	e.clock.Advance(cards.Backoff(2))
	e.Deliver()
	if len(e.slack.OK("chat.postMessage")) != 1 || len(e.Get(r.ID).Cards) != 1 {
		t.Fatalf("card not posted after the channel was fixed")
	}
}

func TestDeletedCardUpdateGivesUp(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	e.slack.Fail("chat.update", slackError("message_not_found"))
	e.VoteAs(r.ID, identity("alice", "sre"), storage.DecisionDeny,
		approvals.Source{Platform: "slack", Workspace: testTeam, PlatformUser: "Ualice"})
	e.Deliver()
	e.clock.Advance(time.Hour)
	if n, _ := e.bot.DeliverOnce(context.Background()); n != 0 {
		t.Errorf("an update of a deleted message is still retried")
	}
}

// A card that was never posted (the channel joined notify.slack later)
// is posted by the first update that has waited long enough.
func TestOrphanUpdatePostsCard(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	claimed, err := e.svc.Claim(context.Background(), OutboxKind, 10, time.Minute)
	if err != nil || len(claimed) != 1 {
		t.Fatal(claimed, err)
	}
	if err := e.svc.Complete(context.Background(), claimed[0].ID); err != nil { // lose the post
		t.Fatal(err)
	}
	e.VoteAs(r.ID, identity("alice", "sre"), storage.DecisionApprove,
		approvals.Source{Platform: "slack", Workspace: testTeam, PlatformUser: "Ualice"})
	e.Deliver()
	if len(e.slack.All("chat.postMessage")) != 0 {
		t.Fatal("posted before the grace period")
	}
	e.clock.Advance(cards.OrphanAfter)
	e.Deliver()
	posts := e.slack.OK("chat.postMessage")
	if len(posts) != 1 || len(e.Get(r.ID).Cards) != 1 {
		t.Fatalf("orphan card not posted: %d posts", len(posts))
	}
	if !strings.Contains(sectionText(blockByID(blocksOf(t, posts[0]), "status")), "1 of 2") {
		t.Error("orphan card does not show the current state")
	}
}

func TestRunOutboxDelivers(t *testing.T) {
	e := newEnv(t)
	e.Create("deploy-prod", deployParams(), "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bot.RunOutbox(ctx) }()
	deadline := time.After(10 * time.Second)
	for len(e.slack.OK("chat.postMessage")) == 0 {
		select {
		case <-deadline:
			t.Fatal("RunOutbox posted nothing")
		default:
		}
		if e.clock.Waiters() > 0 {
			e.clock.Advance(time.Second)
		}
		runtime.Gosched()
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("RunOutbox returned %v", err)
	}
}

// TestClassifyHints: a failure only an operator can end is severe and
// says what to fix, naming the setting that lists the channel of a card
// or of a witness.
func TestClassifyHints(t *testing.T) {
	c := slackChat{}
	code := func(s string) error { return slack.SlackErrorResponse{Err: s} }
	pub := func(err error) error { return &publishError{err} }
	for _, tc := range []struct {
		err  error
		kind cards.FailureKind
		hint string
	}{
		{code("not_in_channel"), cards.Retry, "invite the signoff app to the channel listed in notify.slack, or fix the channel id"},
		{code("token_revoked"), cards.Retry, "check slack.bot_token and the app's scopes"},
		{pub(code("is_archived")), cards.Retry, "invite the signoff app to the channel listed in audit.publish.slack, or fix the channel id"},
		{pub(code("missing_scope")), cards.Retry, "check slack.bot_token and the app's scopes"},
		{&noticeError{err: code("not_authed")}, cards.Retry, "check slack.bot_token and the app's scopes"},
	} {
		f := c.Classify(tc.err, "C1")
		if f.Kind != tc.kind || !f.Severe || f.Err == nil || f.Err.Error() != tc.err.Error()+" ("+tc.hint+")" {
			t.Errorf("Classify(%v) = kind %d severe %v err %v, want kind %d, severe, hint %q", tc.err, f.Kind, f.Severe, f.Err, tc.kind, tc.hint)
		}
	}
	// Nothing but a rate limit is made of a witness's other errors, and a
	// card's message that is gone gives its update up without a hint.
	for _, tc := range []struct {
		err  error
		kind cards.FailureKind
	}{
		{pub(code("ratelimited")), cards.RateLimited},
		{pub(code("message_not_found")), cards.Retry},
		{code("edit_window_closed"), cards.Gone},
		{code("rate_limited"), cards.Retry},
	} {
		if f := c.Classify(tc.err, "C1"); f.Kind != tc.kind || f.Severe || f.Err == nil || f.Err.Error() != tc.err.Error() {
			t.Errorf("Classify(%v) = kind %d severe %v err %v, want kind %d", tc.err, f.Kind, f.Severe, f.Err, tc.kind)
		}
	}
}
