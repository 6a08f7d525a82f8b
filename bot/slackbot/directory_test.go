package slackbot

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"go.yaml.in/yaml/v3"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

const vendorTeam = "T0VENDOR"

func slackAccount(user string) linkflow.PlatformUser {
	return linkflow.PlatformUser{Platform: Platform, Workspace: testTeam, UserID: user, Conversation: "C1"}
}

func TestLookupAccountMapsProfile(t *testing.T) {
	e := newEnv(t)
	e.slack.setUser(slackUser("UALICE", testTeam, "alice", "Alice Smith", "ally", " Alice@Example.com "))

	acct, err := e.bot.LookupAccount(context.Background(), slackAccount("UALICE"))
	if err != nil {
		t.Fatal(err)
	}
	want := linkflow.ChatAccount{DisplayName: "Alice Smith", Handle: "ally", Email: "Alice@Example.com"}
	if acct != want {
		t.Errorf("account %+v, want %+v", acct, want)
	}
	calls := e.slack.OK("users.info")
	if len(calls) != 1 || calls[0].Form.Get("user") != "UALICE" {
		t.Fatalf("users.info calls: %+v", calls)
	}

	// Once auth.test named the workspace, the account carries its name.
	if err := e.bot.CheckToken(context.Background(), RequiredScopes(linkflow.LinkMatchEmail)); err != nil {
		t.Fatal(err)
	}
	acct, err = e.bot.LookupAccount(context.Background(), slackAccount("UALICE"))
	if err != nil || acct.WorkspaceName != "Acme Corp" {
		t.Errorf("after auth.test: %+v, %v", acct, err)
	}

	// Without a display name the handle is the user name.
	e.slack.setUser(slackUser("UBOB", testTeam, "bob", "Bob Jones", "", "bob@example.com"))
	if acct, err := e.bot.LookupAccount(context.Background(), slackAccount("UBOB")); err != nil || acct.Handle != "bob" || acct.DisplayName != "Bob Jones" {
		t.Errorf("bob: %+v, %v", acct, err)
	}
}

// A profile without an email is an account without one: the Linker then
// refuses to link it.
func TestLookupAccountWithoutEmail(t *testing.T) {
	e := newEnv(t)
	e.slack.setUser(slackUser("UCAROL", testTeam, "carol", "Carol", "carol", ""))
	acct, err := e.bot.LookupAccount(context.Background(), slackAccount("UCAROL"))
	if err != nil || acct.Email != "" || acct.DisplayName != "Carol" {
		t.Errorf("carol: %+v, %v", acct, err)
	}

	// When the token is known to lack users:read.email, that is said.
	e.slack.setScopes("chat:write,commands,users:read")
	var te *TokenError
	if err := e.bot.CheckToken(context.Background(), RequiredScopes(linkflow.LinkMatchEmail)); !errors.As(err, &te) {
		t.Fatalf("CheckToken: %v", err)
	}
	_, err = e.bot.LookupAccount(context.Background(), slackAccount("UCAROL"))
	if err == nil || !strings.Contains(err.Error(), "users:read.email") || errors.Is(err, linkflow.ErrAccountNotFound) {
		t.Errorf("without the email scope: %v", err)
	}
}

func TestLookupAccountErrors(t *testing.T) {
	e := newEnv(t)
	deleted := slackUser("UGONE", testTeam, "gone", "Gone", "gone", "gone@example.com")
	deleted["deleted"] = true
	e.slack.setUser(deleted)
	for _, c := range []struct {
		name   string
		user   string
		answer func(http.ResponseWriter)
		is     error
		says   string
	}{
		{"user_not_found", "UNOBODY", slackError("user_not_found"), linkflow.ErrAccountNotFound, "user_not_found"},
		{"deactivated", "UGONE", nil, linkflow.ErrAccountNotFound, "deactivated"},
		{"rate limited", "UALICE", rateLimited(30), linkflow.ErrDirectoryUnavailable, "rate limited"},
		{"HTTP 500", "UALICE", serverError, linkflow.ErrDirectoryUnavailable, "500"},
		{"ratelimited in the body", "UALICE", slackError("ratelimited"), linkflow.ErrDirectoryUnavailable, "ratelimited"},
		{"missing_scope", "UALICE", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"ok":false,"error":"missing_scope","needed":"users:read","provided":"chat:write,commands"}`))
		}, nil, "users:read.email"},
		{"token refused", "UALICE", slackError("invalid_auth"), nil, "slack.bot_token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.answer != nil {
				e.slack.Fail("users.info", c.answer)
			}
			acct, err := e.bot.LookupAccount(context.Background(), slackAccount(c.user))
			if err == nil {
				t.Fatalf("no error; account %+v", acct)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
			if c.is == nil && (errors.Is(err, linkflow.ErrAccountNotFound) || errors.Is(err, linkflow.ErrDirectoryUnavailable)) {
				t.Errorf("error %v must be neither not-found nor unavailable", err)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q does not say %q", err, c.says)
			}
			if strings.Contains(err.Error(), "xoxb-test") {
				t.Errorf("error carries the token: %v", err)
			}
		})
	}
	if msg := lookupError(slack.SlackErrorResponse{Err: "missing_scope"}).Error(); !strings.Contains(msg, "reinstall") {
		t.Errorf("missing_scope does not say how to fix it: %q", msg)
	}
}

func TestLookupAccountNetworkDown(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/"
	ln.Close()
	b, err := New(Options{Service: e.svc, Resolver: e.links, BotToken: "xoxb-test", SigningSecret: testSecret, TeamID: testTeam,
		APIURL: dead, Clock: e.clock, Logger: testenv.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.LookupAccount(context.Background(), slackAccount("UALICE")); !errors.Is(err, linkflow.ErrDirectoryUnavailable) {
		t.Errorf("network down: %v", err)
	}
	if err := b.CheckToken(context.Background(), RequiredScopes("")); err == nil || errors.As(err, new(*TokenError)) {
		t.Errorf("CheckToken with the network down: %v, want a transient error", err)
	}
}

// A Slack Connect member of another organisation is not an account of the
// workspace signoff serves, whatever their email says.
func TestLookupAccountOfAnotherOrganisation(t *testing.T) {
	e := newEnv(t)
	e.slack.setUser(slackUser("UEXT", vendorTeam, "mallory", "Mallory", "mallory", "alice@example.com"))
	_, err := e.bot.LookupAccount(context.Background(), slackAccount("UEXT"))
	if !errors.Is(err, linkflow.ErrAccountNotFound) || !strings.Contains(err.Error(), "another organisation") {
		t.Errorf("connect user: %v", err)
	}
	stranger := slackUser("USTRANGE", testTeam, "s", "S", "s", "s@example.com")
	stranger["is_stranger"] = true
	e.slack.setUser(stranger)
	if _, err := e.bot.LookupAccount(context.Background(), slackAccount("USTRANGE")); !errors.Is(err, linkflow.ErrAccountNotFound) {
		t.Errorf("stranger: %v", err)
	}
	// Asked about another workspace's account, it does not ask Slack.
	before := len(e.slack.All("users.info"))
	p := slackAccount("UALICE")
	p.Workspace = vendorTeam
	if _, err := e.bot.LookupAccount(context.Background(), p); !errors.Is(err, linkflow.ErrAccountNotFound) {
		t.Errorf("other workspace: %v", err)
	}
	if len(e.slack.All("users.info")) != before {
		t.Error("users.info called for another workspace's account")
	}
}

func TestMemberTeam(t *testing.T) {
	b := &Bot{opts: Options{TeamID: "T1", EnterpriseID: "E1"}}
	for team, want := range map[string]bool{"": true, "T1": true, "E1": true, "T2": false, "E2": false} {
		if got := b.memberTeam(team); got != want {
			t.Errorf("memberTeam(%q) = %v, want %v", team, got, want)
		}
	}
	// The Grid org auth.test reports counts when none is configured.
	b = &Bot{opts: Options{TeamID: "T1"}}
	if b.memberTeam("E1") {
		t.Error("an unknown org accepted")
	}
	b.token.Store(&tokenInfo{enterpriseID: "E1"})
	if !b.memberTeam("E1") || b.memberTeam("E2") {
		t.Error("the token's org is not the only one accepted")
	}
	u := &slack.User{TeamID: "T7", Enterprise: slack.EnterpriseUser{EnterpriseID: "E1"}}
	if !b.memberAccount(u) {
		t.Error("a member of the org's other workspace refused")
	}
	u.Enterprise.EnterpriseID = "E2"
	if b.memberAccount(u) {
		t.Error("a member of another org accepted")
	}
}

func TestCheckToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.bot.CheckToken(ctx, RequiredScopes(linkflow.LinkMatchEmail)); err != nil {
		t.Fatalf("all scopes: %v", err)
	}
	calls := e.slack.All("auth.test")
	if len(calls) != 1 || calls[0].Form.Get("token") != "" {
		t.Errorf("auth.test calls (the token goes in the Authorization header only): %+v", calls)
	}

	e.slack.setScopes("chat:write,commands")
	err := e.bot.CheckToken(ctx, RequiredScopes(linkflow.LinkMatchEmail))
	var te *TokenError
	if !errors.As(err, &te) || strings.Join(te.Missing, ",") != "users:read,users:read.email" {
		t.Fatalf("missing scopes: %v", err)
	}
	for _, want := range []string{"users:read.email", "reinstall", "deploy/slack-app-manifest.yaml"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	// With link_match: none the email scope is not needed.
	e.slack.setScopes("chat:write,commands,users:read")
	if err := e.bot.CheckToken(ctx, RequiredScopes(linkflow.LinkMatchNone)); err != nil {
		t.Errorf("link_match none: %v", err)
	}
	if err := e.bot.CheckToken(ctx, RequiredScopes(linkflow.LinkMatchEmail)); !errors.As(err, &te) || strings.Join(te.Missing, ",") != "users:read.email" {
		t.Errorf("link_match email without the email scope: %v", err)
	}
	// No scopes header: nothing to compare.
	e.slack.setScopes("-")
	if err := e.bot.CheckToken(ctx, RequiredScopes(linkflow.LinkMatchEmail)); err != nil {
		t.Errorf("without X-OAuth-Scopes: %v", err)
	}

	e.slack.Fail("auth.test", slackError("invalid_auth"))
	if err := e.bot.CheckToken(ctx, nil); !errors.As(err, &te) || !strings.Contains(err.Error(), "invalid_auth") {
		t.Errorf("refused token: %v", err)
	}
	e.slack.Fail("auth.test", serverError)
	if err := e.bot.CheckToken(ctx, nil); err == nil || errors.As(err, &te) {
		t.Errorf("Slack down: %v, want a transient error", err)
	}

	// A token of another workspace.
	b, err := New(Options{Service: e.svc, Resolver: e.links, BotToken: "xoxb-test", SigningSecret: testSecret, TeamID: "T0ELSEWHERE",
		APIURL: e.slack.URL(), Clock: e.clock, Logger: testenv.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e.slack.setScopes("chat:write,commands,users:read,users:read.email")
	if err := b.CheckToken(ctx, nil); !errors.As(err, &te) || !strings.Contains(err.Error(), "T0ELSEWHERE") {
		t.Errorf("token of another workspace: %v", err)
	}
}

func TestNotifySendsDirectMessage(t *testing.T) {
	e := newEnv(t)
	err := slackChat{e.bot}.Notify(context.Background(), approvals.AccountNotice{
		Workspace: testTeam, User: "UALICE", Conversation: "C1",
		Text: "Your Slack account now votes as alice@example.com. <!channel> <https://evil.example|https://good.example> & more",
	})
	if err != nil {
		t.Fatal(err)
	}
	posts := e.slack.OK("chat.postMessage")
	if len(posts) != 1 {
		t.Fatalf("%d posts", len(posts))
	}
	f := posts[0].Form
	text := f.Get("text")
	if f.Get("channel") != "UALICE" || f.Get("unfurl_links") != "false" || f.Get("unfurl_media") != "false" {
		t.Errorf("post: %v", f)
	}
	if strings.Contains(text, "<!channel>") || strings.Contains(text, "<https://") ||
		!strings.Contains(text, "&lt;!channel&gt;") || !strings.Contains(text, "&amp; more") || !strings.Contains(text, "alice@example.com") {
		t.Errorf("text not escaped: %q", text)
	}
}

// enqueueNotice queues a notice as approvals does.
func (e *env) enqueueNotice(n approvals.AccountNotice) {
	e.t.Helper()
	payload, _ := json.Marshal(n)
	err := e.store.Update(context.Background(), func(tx storage.Tx) error {
		_, err := tx.Enqueue(storage.OutboxEntry{Kind: approvals.KindNoticePrefix + Platform, Payload: payload, NextAttempt: e.clock.Now(), CreatedAt: e.clock.Now()})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func TestNoticeDeliveredFromOutbox(t *testing.T) {
	e := newEnv(t)
	e.enqueueNotice(approvals.AccountNotice{Workspace: testTeam, User: "UALICE", Text: "linked"})
	e.Deliver()
	if posts := e.slack.OK("chat.postMessage"); len(posts) != 1 || posts[0].Form.Get("channel") != "UALICE" || posts[0].Form.Get("text") != "linked" {
		t.Fatalf("posts: %+v", posts)
	}

	// A notice to an account Slack no longer knows is dropped, not retried.
	e.enqueueNotice(approvals.AccountNotice{Workspace: testTeam, User: "UGONE", Text: "linked"})
	e.slack.Fail("chat.postMessage", slackError("user_not_found"))
	e.Deliver()
	e.clock.Advance(24 * time.Hour)
	e.Deliver()
	if n := len(e.slack.All("chat.postMessage")); n != 2 {
		t.Errorf("%d chat.postMessage calls, want 2 (the gone notice tried once)", n)
	}

	// A rate-limited one is retried after Retry-After.
	e.enqueueNotice(approvals.AccountNotice{Workspace: testTeam, User: "UBOB", Text: "linked"})
	e.slack.Fail("chat.postMessage", rateLimited(30))
	e.Deliver()
	e.clock.Advance(31 * time.Second)
	e.Deliver()
	if posts := e.slack.OK("chat.postMessage"); len(posts) != 2 || posts[1].Form.Get("channel") != "UBOB" {
		t.Errorf("rate-limited notice not retried: %+v", posts)
	}
}

func TestClassifyNotice(t *testing.T) {
	c := slackChat{}
	dm := func(err error) error { return &noticeError{err: err} }
	for _, tc := range []struct {
		err    error
		kind   cards.FailureKind
		severe bool
	}{
		{dm(slack.SlackErrorResponse{Err: "user_not_found"}), cards.Gone, false},
		{dm(slack.SlackErrorResponse{Err: "channel_not_found"}), cards.Gone, false},
		{dm(slack.SlackErrorResponse{Err: "messages_tab_disabled"}), cards.Gone, false},
		{dm(&slack.RateLimitedError{RetryAfter: 30 * time.Second}), cards.RateLimited, false},
		{dm(slack.SlackErrorResponse{Err: "ratelimited"}), cards.RateLimited, false},
		{dm(slack.StatusCodeError{Code: 503, Status: "503 Service Unavailable"}), cards.Retry, false},
		{dm(slack.SlackErrorResponse{Err: "invalid_auth"}), cards.Retry, true},
		{&noticeError{err: errors.New("bad id"), unusable: true}, cards.Gone, false},
		// A card's channel_not_found is the operator's to fix, not gone.
		{slack.SlackErrorResponse{Err: "channel_not_found"}, cards.Retry, true},
	} {
		f := c.Classify(tc.err, "C1")
		if f.Kind != tc.kind || f.Severe != tc.severe {
			t.Errorf("Classify(%v) = kind %d severe %v, want %d %v", tc.err, f.Kind, f.Severe, tc.kind, tc.severe)
		}
	}
	if f := c.Classify(dm(&slack.RateLimitedError{RetryAfter: 30 * time.Second}), ""); f.Wait != 30*time.Second {
		t.Errorf("wait %s", f.Wait)
	}
}

// The account the resolver is asked about carries the conversation the
// click came from.
func TestClickNamesConversation(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.click("UALICE", r.ID, ActionApprove, "C1")
	e.slack.NextEphemeral(t)
	asked := e.links.askedAbout()
	if len(asked) != 1 || asked[0] != (linkflow.PlatformUser{Platform: Platform, Workspace: testTeam, UserID: "UALICE", Conversation: "C1"}) {
		t.Errorf("asked about %+v", asked)
	}
}

// withUserTeam rewrites an interaction body's user.team_id ("" removes
// it, as older payloads have none).
func withUserTeam(t *testing.T, body, team string) string {
	t.Helper()
	form, err := url.ParseQuery(body)
	if err != nil {
		t.Fatal(err)
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(form.Get("payload")), &payload); err != nil {
		t.Fatal(err)
	}
	user := payload["user"].(map[string]any)
	if team == "" {
		delete(user, "team_id")
	} else {
		user["team_id"] = team
	}
	raw, _ := json.Marshal(payload)
	form.Set("payload", string(raw))
	return form.Encode()
}

// checkForeignRefused checks what a refused account of another
// organisation leaves behind: a private refusal without a sign-in link,
// no vote, and callback.rejected records with reason foreign_user.
func (e *env) checkForeignRefused(requestID string, records int, source string) {
	e.t.Helper()
	msg := e.slack.NextEphemeral(e.t)
	text := msg.Form.Get("text")
	if msg.Form.Get("user") != "UEXT" || !strings.Contains(text, "other organisations") || strings.Contains(text, "/link/start") {
		e.t.Errorf("refusal: %v", msg.Form)
	}
	e.slack.NoEphemeral(e.t)
	if requestID != "" {
		if got := e.Get(requestID); len(got.Votes) != 0 {
			e.t.Errorf("a vote of another organisation's account counted: %+v", got.Votes)
		}
	}
	recs := e.RecordsOf(audit.TypeCallbackRejected)
	if len(recs) != records {
		e.t.Fatalf("%d callback.rejected records, want %d: %+v", len(recs), records, recs)
	}
	last := recs[len(recs)-1]
	if last.Data["reason"] != "foreign_user" || last.Source != source || last.Actor == nil || last.Actor.Workspace != testTeam {
		e.t.Errorf("record: %+v", last)
	}
	if n := len(e.RecordsOf(audit.TypeVoteRejected)); n != 0 {
		e.t.Errorf("%d vote.rejected records: the click reached approvals", n)
	}
}

// A Slack Connect member of another organisation clicking on a card in a
// shared channel is refused, even with a link (made before, or by
// mistake) that would make the vote count.
func TestClickByAnotherOrganisationRefused(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UEXT", identity("alice", "sre"))

	rec := e.postSigned(InteractionsPath, withUserTeam(t, blockActions(testTeam, "UEXT", "C1", ActionApprove, r.ID), vendorTeam))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200 (the refusal is shown as a message)", rec.Code)
	}
	e.checkForeignRefused(r.ID, 1, "POST "+InteractionsPath)
	if len(e.links.askedAbout()) != 0 {
		t.Error("the resolver was asked about another organisation's account")
	}

	// Unlinked: no sign-in link is offered either.
	e.links = newLinkTable()
	e.bot.res = e.links
	e.postSigned(InteractionsPath, withUserTeam(t, blockActions(testTeam, "UEXT", "C1", ActionDeny, r.ID), vendorTeam))
	e.checkForeignRefused(r.ID, 2, "POST "+InteractionsPath)

	// The same account as a member of the workspace would have counted.
	e.links.link("UEXT", identity("alice", "sre"))
	e.postSigned(InteractionsPath, blockActions(testTeam, "UEXT", "C1", ActionApprove, r.ID))
	if msg := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(msg, "counted") {
		t.Errorf("member's click: %q", msg)
	}
}

// Older payloads without user.team_id are accepted: the workspace check
// has passed.
func TestClickWithoutUserTeamAccepted(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	e.postSigned(InteractionsPath, withUserTeam(t, blockActions(testTeam, "UALICE", "C1", ActionApprove, r.ID), ""))
	if msg := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(msg, "counted") {
		t.Errorf("reply: %q", msg)
	}
	if n := len(e.RecordsOf(audit.TypeCallbackRejected)); n != 0 {
		t.Errorf("%d callback.rejected records", n)
	}
}

func TestReasonDialogByAnotherOrganisationRefused(t *testing.T) {
	e := newEnv(t)
	r := e.Create("restart", nil, "")
	e.links.link("UEXT", identity("alice", "sre"))
	meta, _ := json.Marshal(reasonMetadata{RequestID: r.ID, Decision: string(storage.DecisionDeny), Channel: "C2"})
	rec := e.postSigned(InteractionsPath, withUserTeam(t, viewSubmission(testTeam, "UEXT", string(meta), "because"), vendorTeam))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	e.checkForeignRefused(r.ID, 1, "POST "+InteractionsPath)
	if got := e.Get(r.ID); got.State != storage.StatePending {
		t.Errorf("state %s", got.State)
	}
}

func TestSocketModeClickByAnotherOrganisationRefused(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UEXT", identity("alice", "sre"))
	evt := interactiveEvent(testTeam, "UEXT", "C1", ActionApprove, r.ID, "env-x")
	cb := evt.Data.(slack.InteractionCallback)
	cb.User.TeamID = vendorTeam
	evt.Data = cb
	ack := &recordingAcker{}
	e.bot.handleSocketEvent(&evt, ack)
	e.bot.work.Wait()
	if len(ack.acks) != 1 {
		t.Errorf("%d acks", len(ack.acks))
	}
	e.checkForeignRefused(r.ID, 1, socketSource)
}

// A slash command names only the workspace it was typed in, so its user
// is looked up: an account of another organisation gets no sign-in link.
func TestCommandByAnotherOrganisationRefused(t *testing.T) {
	e := newEnv(t)
	e.slack.setUser(slackUser("UEXT", vendorTeam, "mallory", "Mallory", "mallory", "mallory@vendor.example"))
	e.links.link("UEXT", identity("alice", "sre"))

	rec := e.postSigned(CommandsPath, command("UEXT", "link"))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	e.checkForeignRefused("", 1, "POST "+CommandsPath)
	for i, sub := range []string{"whoami", "pending"} {
		e.postSigned(CommandsPath, command("UEXT", sub))
		e.checkForeignRefused("", 2+i, "POST "+CommandsPath)
	}
	if len(e.links.askedAbout()) != 0 {
		t.Errorf("the resolver was asked: %+v", e.links.askedAbout())
	}
	// users.info was asked once; the answer is reused.
	if n := len(e.slack.All("users.info")); n != 1 {
		t.Errorf("%d users.info calls", n)
	}

	// Over Socket Mode too.
	evt := socketmode.Event{
		Type:    socketmode.EventTypeSlashCommand,
		Data:    slack.SlashCommand{TeamID: testTeam, UserID: "UEXT", ChannelID: "C9", Command: SlashCommand, Text: "link"},
		Request: &socketmode.Request{Type: socketmode.RequestTypeSlashCommands, EnvelopeID: "env-cmd"},
	}
	e.bot.handleSocketEvent(&evt, &recordingAcker{})
	e.bot.work.Wait()
	e.checkForeignRefused("", 4, socketSource)

	// A member still gets the link.
	e.postSigned(CommandsPath, command("UALICE", "link"))
	if msg := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(msg, "/link/start?id=link-UALICE") {
		t.Errorf("member's link: %q", msg)
	}
}

// When Slack cannot say who typed a command, nothing is done (fail
// closed) and no link is offered.
func TestCommandWhenSlackCannotSayWhoRefused(t *testing.T) {
	e := newEnv(t)
	e.slack.Fail("users.info", rateLimited(30))
	e.postSigned(CommandsPath, command("UALICE", "link"))
	if msg := e.slack.NextEphemeral(t).Form.Get("text"); strings.Contains(msg, "/link/start") || !strings.Contains(msg, "Try again") {
		t.Errorf("reply: %q", msg)
	}
	e.slack.Fail("users.info", func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":false,"error":"missing_scope","needed":"users:read"}`))
	})
	e.postSigned(CommandsPath, command("UALICE", "link"))
	if msg := e.slack.NextEphemeral(t).Form.Get("text"); strings.Contains(msg, "/link/start") || !strings.Contains(msg, "log") {
		t.Errorf("reply: %q", msg)
	}
	if len(e.links.askedAbout()) != 0 {
		t.Error("the resolver was asked")
	}
}

// The manifest operators install asks for exactly the scopes the start-up
// check requires.
func TestManifestScopes(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/slack-app-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
		Features struct {
			AppHome struct {
				MessagesTab bool `yaml:"messages_tab_enabled"`
			} `yaml:"app_home"`
		} `yaml:"features"`
	}
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	got, want := slices.Sorted(slices.Values(m.OAuth.Scopes.Bot)), slices.Sorted(slices.Values(RequiredScopes(linkflow.LinkMatchEmail)))
	if !slices.Equal(got, want) {
		t.Errorf("manifest bot scopes %v, start-up check requires %v", got, want)
	}
	if !m.Features.AppHome.MessagesTab {
		t.Error("the manifest turns off the Messages tab, where notices go")
	}
}
