package bot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/slackbot"
	"github.com/signoff-dev/signoff/bot/teamsbot"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

const (
	xpSlackSecret = "xp-slack-signing-secret-0123456789"
	xpSlackTeam   = "T0XPTEAM"
	xpSlackChan   = "C0XPDEPLOY"
	xpTeamsChan   = "19:xpdeploys0000000000000000000000@thread.tacv2"
)

// xpSlackClick is a block_actions callback shaped like Slack's.
func xpSlackClick(user, requestID string, seq int) string {
	payload := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": user, "username": strings.ToLower(user), "team_id": xpSlackTeam},
		"api_app_id":   "A0SIGNOFF",
		"container":    map[string]any{"type": "message", "message_ts": "1772366400.000001", "channel_id": xpSlackChan},
		"trigger_id":   fmt.Sprintf("%d.4744562912.%032x", 8000000000+seq, seq),
		"team":         map[string]any{"id": xpSlackTeam, "domain": "acme"},
		"channel":      map[string]any{"id": xpSlackChan, "name": "deploys"},
		"response_url": "https://hooks.slack.com/actions/" + xpSlackTeam + "/1/abc",
		"actions": []any{map[string]any{
			"action_id": slackbot.ActionApprove, "block_id": "actions", "type": "button", "value": requestID,
			"text": map[string]any{"type": "plain_text", "text": "Approve"}, "action_ts": fmt.Sprintf("1772366400.%06d", seq),
		}},
	}
	raw, _ := json.Marshal(payload)
	return url.Values{"payload": {string(raw)}}.Encode()
}

func xpServe(mux http.Handler, path string, body []byte, h http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header = h
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

// TestCrossPlatformQuorum carries one request in Slack and Teams: a vote
// in each platform counts toward one quorum, the same person voting in
// both counts once, both cards end in the same final state, and one
// execution is queued.
func TestCrossPlatformQuorum(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	logger := testenv.DiscardLogger()
	st := testenv.OpenStore(t)
	pol := &policy.Policy{Actions: map[string]*policy.Action{
		"deploy-prod": {
			Name: "deploy-prod", Requesters: []policy.RequesterRule{{Issuer: "github"}},
			Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 2},
			TTL:       time.Hour,
			Notify:    policy.Notify{Slack: []string{xpSlackChan}, Teams: []string{xpTeamsChan}},
			OnApprove: &policy.OnApprove{Webhook: &policy.Webhook{URL: "https://deploy.example/hook", Timeout: time.Second}},
		},
	}}
	svc := approvals.New(st, pol, approvals.Options{Clock: clk, Logger: logger, Platforms: []string{"slack", "teams"}})
	links := chattest.NewLinks()
	mux := http.NewServeMux()

	fs := chattest.NewSlackAPI(t, nil)
	sb, err := slackbot.New(slackbot.Options{
		Service: svc, Resolver: links, BotToken: "xoxb-test", SigningSecret: xpSlackSecret, TeamID: xpSlackTeam,
		APIURL: fs.URL(), PublicURL: "https://signoff.example.com", Clock: clk, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Shutdown(context.Background()) })
	sb.Register(mux)

	bf := teamstest.NewServer(teamstest.Options{Now: clk.Now})
	t.Cleanup(bf.Close)
	tb, err := teamsbot.New(teamsbot.Options{
		Service: svc, Resolver: links,
		AppID: bf.AppID(), AppPassword: bf.AppPassword(), TenantIDs: []string{bf.TenantID()},
		OpenIDMetadataURL: bf.OpenIDMetadataURL(), TokenURL: bf.TokenURL(),
		PublicURL: "https://signoff.example.com", Clock: clk, Logger: logger,
		ServiceURLHosts: []string{bf.ServiceHost()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tb.Shutdown(context.Background()) })
	tb.Register(mux)

	teams := func(act map[string]any) *httptest.ResponseRecorder {
		body, _ := json.Marshal(act)
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set("Authorization", bf.Authorization(act))
		return xpServe(mux, teamsbot.MessagesPath, body, h)
	}
	place := teamstest.Place{Conversation: xpTeamsChan, TeamID: "19:xpteam@thread.tacv2", TeamName: "Ops", ChannelName: "deploys"}
	if rec := teams(bf.Installed(place, teamstest.NewUser("admin"))); rec.Code != http.StatusOK {
		t.Fatalf("install: %d", rec.Code)
	}
	deliver := func() {
		t.Helper()
		for range 20 {
			n1, err1 := sb.DeliverOnce(context.Background())
			n2, err2 := tb.DeliverOnce(context.Background())
			if err1 != nil || err2 != nil {
				t.Fatalf("deliver: %v %v", err1, err2)
			}
			if n1+n2 == 0 {
				return
			}
		}
		t.Fatal("outboxes never drained")
	}
	slackClicks := 0
	slackApprove := func(user, requestID string) string {
		t.Helper()
		slackClicks++
		body := xpSlackClick(user, requestID, slackClicks)
		if rec := xpServe(mux, slackbot.InteractionsPath, []byte(body), chattest.SlackHeaders(xpSlackSecret, clk.Now().Unix(), body)); rec.Code != http.StatusOK {
			t.Fatalf("slack click: %d %s", rec.Code, rec.Body)
		}
		return fs.NextEphemeral(t).Form.Get("text")
	}
	teamsApprove := func(u teamstest.User, requestID, replyTo string) (map[string]any, string) {
		t.Helper()
		rec := teams(bf.Invoke(teamstest.Click{Place: place, User: u, ReplyToID: replyTo, Verb: "approve",
			Data: map[string]any{"signoff": "signoff.vote", "requestId": requestID, "decision": "approve"}}))
		var ans struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &ans) != nil {
			t.Fatalf("teams invoke: %d %s", rec.Code, rec.Body)
		}
		var card map[string]any
		var msg string
		if ans.Type == "application/vnd.microsoft.card.adaptive" {
			_ = json.Unmarshal(ans.Value, &card)
		} else {
			_ = json.Unmarshal(ans.Value, &msg)
		}
		return card, msg
	}

	r, _, err := svc.Create(context.Background(), approvals.CreateInput{
		Requester: storage.Requester{Issuer: "github", Subject: "repo:acme/api:ref:refs/heads/main", Person: "octocat"},
		Action:    "deploy-prod",
	})
	if err != nil {
		t.Fatal(err)
	}
	deliver()
	if p := fs.All("chat.postMessage"); len(p) != 1 {
		t.Fatalf("%d Slack posts", len(p))
	}
	if p := bf.Posted(); len(p) != 1 {
		t.Fatalf("%d Teams posts", len(p))
	}
	cards := chattest.Get(t, svc, r.ID).Cards
	if len(cards) != 2 {
		t.Fatalf("cards: %+v", cards)
	}
	teamsCard := ""
	for _, c := range cards {
		if c.Platform == "teams" {
			teamsCard = c.MessageID
		}
	}

	alice := oidc.Identity{Issuer: "https://idp.example", Subject: "sub-alice", Email: "alice@example.com", Groups: []string{"sre"}, VerifiedAt: t0.Add(-time.Minute)}
	bob := oidc.Identity{Issuer: "https://idp.example", Subject: "sub-bob", Email: "bob@example.com", Groups: []string{"sre"}, VerifiedAt: t0.Add(-time.Minute)}
	aliceTeams := teamstest.NewUser("alice")
	links.Link(linkflow.PlatformUser{Platform: "teams", Workspace: bf.TenantID(), UserID: aliceTeams.AADObjectID}, alice)
	links.Link(linkflow.PlatformUser{Platform: "slack", Workspace: xpSlackTeam, UserID: "UALICE"}, alice)
	links.Link(linkflow.PlatformUser{Platform: "slack", Workspace: xpSlackTeam, UserID: "UBOB"}, bob)

	// Alice approves in Teams, then again in Slack: it counts once.
	if card, msg := teamsApprove(aliceTeams, r.ID, teamsCard); card == nil {
		t.Fatalf("alice's Teams approval: %q", msg)
	}
	if msg := slackApprove("UALICE", r.ID); !strings.Contains(msg, "already voted approve") {
		t.Errorf("alice's Slack approval: %q", msg)
	}
	if got := chattest.Get(t, svc, r.ID); got.State != storage.StatePending || len(got.Votes) != 1 {
		t.Fatalf("after alice twice: %s with %d votes", got.State, len(got.Votes))
	}
	deliver()

	// Bob approves in Slack: quorum.
	if msg := slackApprove("UBOB", r.ID); !strings.Contains(msg, "the request is approved") {
		t.Errorf("bob's Slack approval: %q", msg)
	}
	deliver()
	// A late click in Teams changes nothing.
	carol := teamstest.NewUser("carol")
	links.Link(linkflow.PlatformUser{Platform: "teams", Workspace: bf.TenantID(), UserID: carol.AADObjectID},
		oidc.Identity{Issuer: "https://idp.example", Subject: "sub-carol", Email: "carol@example.com", Groups: []string{"sre"}, VerifiedAt: t0})
	if _, msg := teamsApprove(carol, r.ID, teamsCard); !strings.Contains(msg, "already approved") {
		t.Errorf("late Teams click: %q", msg)
	}
	deliver()

	got := chattest.Get(t, svc, r.ID)
	if got.State != storage.StateApproved || len(got.Votes) != 2 {
		t.Fatalf("request: %s with %d votes", got.State, len(got.Votes))
	}
	if got.Votes[0].Approver.Platform != "teams" || got.Votes[1].Approver.Platform != "slack" {
		t.Errorf("votes: %+v", got.Votes)
	}

	// Both cards end in the same final state.
	updates := fs.All("chat.update")
	slackFinal := updates[len(updates)-1].Form.Get("blocks")
	if !strings.Contains(slackFinal, "Approved") || !strings.Contains(slackFinal, "alice@example.com approved") || !strings.Contains(slackFinal, "bob@example.com approved") ||
		strings.Contains(slackFinal, slackbot.ActionApprove) {
		t.Errorf("final Slack card: %s", slackFinal)
	}
	puts := bf.OK(http.MethodPut)
	teamsFinal, _ := json.Marshal(puts[len(puts)-1].Card())
	if !strings.Contains(string(teamsFinal), "Approved") || !strings.Contains(string(teamsFinal), "alice@example.com approved") ||
		!strings.Contains(string(teamsFinal), "bob@example.com approved") || strings.Contains(string(teamsFinal), "Action.Execute") {
		t.Errorf("final Teams card: %s", teamsFinal)
	}
	if n := len(bf.Posted()); n != 1 {
		t.Errorf("%d Teams posts", n)
	}
	if n := len(fs.All("chat.postMessage")); n != 1 {
		t.Errorf("%d Slack posts", n)
	}

	// One decision, one execution.
	executions := testenv.DueOutbox(t, st, approvals.KindExecute)
	if len(executions) != 1 || got.Execution == nil || got.Execution.Status != storage.ExecutionPending {
		t.Errorf("executions: %+v, request execution %+v", executions, got.Execution)
	}
	approved, approves := len(chattest.RecordsOf(t, st, audit.TypeRequestApproved)), len(chattest.RecordsOf(t, st, audit.TypeVoteApprove))
	if approved != 1 || approves != 2 {
		t.Errorf("%d request.approved and %d vote.approve records", approved, approves)
	}
}
