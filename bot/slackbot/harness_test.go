package slackbot

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// The Linker is the resolver serve wires in.
var _ IdentityResolver = (*oidc.Linker)(nil)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	testSecret = "test-signing-secret-0123456789abcdef"
	testTeam   = "T0TEAM"
	idpIssuer  = "https://idp.example"
)

func testPolicy() *policy.Policy {
	pattern := func(p string) *regexp.Regexp {
		re, err := policy.CompilePattern(p)
		if err != nil {
			panic(err)
		}
		return re
	}
	wide := map[string]policy.Param{}
	for i := range 30 {
		wide[fmt.Sprintf("p%02d", i)] = policy.Param{MaxLength: 5000}
	}
	return &policy.Policy{Actions: map[string]*policy.Action{
		"deploy-prod": {
			Name: "deploy-prod", Description: "Deploy a service to production",
			Requesters: []policy.RequesterRule{{Issuer: "github"}},
			Params: map[string]policy.Param{
				"service": {Required: true, Pattern: pattern("[a-z-]+")},
				"version": {Required: true},
				"note":    {MaxLength: 1000},
			},
			Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 2},
			TTL:       time.Hour,
			Notify:    policy.Notify{Slack: []string{"C1"}},
			OnApprove: &policy.OnApprove{Webhook: &policy.Webhook{URL: "https://deploy.example/hook", Timeout: time.Second}},
		},
		"restart": {
			Name: "restart", Requesters: []policy.RequesterRule{{Issuer: "github"}},
			Approvers:         policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
			TTL:               time.Hour,
			Notify:            policy.Notify{Slack: []string{"C2"}},
			RequireDenyReason: true,
		},
		"break-glass": {
			Name: "break-glass", Requesters: []policy.RequesterRule{{Issuer: "github"}},
			Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
			TTL:       time.Hour,
			Notify:    policy.Notify{Slack: []string{"C3"}},
			StepUp:    &policy.StepUp{MaxAge: 5 * time.Minute, RequireMFA: true},
		},
		"wide": {
			Name: "wide", Requesters: []policy.RequesterRule{{Issuer: "github"}},
			Params:    wide,
			Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
			TTL:       time.Hour,
			Notify:    policy.Notify{Slack: []string{"C4"}},
		},
	}}
}

var requester = storage.Requester{
	Issuer: "github", IssuerURL: "https://token.actions.githubusercontent.com",
	Subject: "repo:acme/api:ref:refs/heads/main", Person: "octocat", Name: "octocat",
	Claims: map[string]string{"repository": "acme/api", "actor": "octocat"},
}

// apiCall is one Web API call the stand-in answered.
type apiCall struct {
	Method string
	Form   url.Values
	JSON   map[string]any
	OK     bool
}

// fakeSlack is slacktest's server with the endpoints signoff calls
// recorded, and scripted failures.
type fakeSlack struct {
	srv *slacktest.Server

	mu     sync.Mutex
	calls  []apiCall
	nextTS int
	script map[string][]func(w http.ResponseWriter)
	// ephemeral receives every chat.postEphemeral.
	ephemeral chan apiCall
	// users are the users.info records served, by user id, in Slack's
	// wire format; a user not listed is a member of testTeam with the
	// email <lower-case id>@example.com.
	users map[string]map[string]any
	// scopes is the X-OAuth-Scopes header auth.test answers with.
	scopes string
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{
		script: map[string][]func(http.ResponseWriter){}, ephemeral: make(chan apiCall, 100),
		users:  map[string]map[string]any{},
		scopes: "chat:write,commands,users:read,users:read.email",
	}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		for _, m := range []string{"chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "chat.delete", "users.info", "auth.test"} {
			c.Handle("/"+m, f.handler(m))
		}
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

// fail queues answers for the next calls of method.
func (f *fakeSlack) fail(method string, answers ...func(w http.ResponseWriter)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[method] = append(f.script[method], answers...)
}

func rateLimited(retryAfter int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		w.WriteHeader(http.StatusTooManyRequests)
	}
}

func serverError(w http.ResponseWriter) {
	http.Error(w, "<html>oops</html>", http.StatusInternalServerError)
}

func slackError(code string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"ok":false,"error":%q}`, code)
	}
}

func (f *fakeSlack) handler(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		call := apiCall{Method: method}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			_ = json.Unmarshal(body, &call.JSON)
		} else {
			call.Form, _ = url.ParseQuery(string(body))
		}
		f.mu.Lock()
		if q := f.script[method]; len(q) > 0 {
			answer := q[0]
			f.script[method] = q[1:]
			f.calls = append(f.calls, call)
			f.mu.Unlock()
			answer(w)
			return
		}
		call.OK = true
		f.calls = append(f.calls, call)
		f.nextTS++
		ts := fmt.Sprintf("1772366400.%06d", f.nextTS)
		f.mu.Unlock()

		w.Header().Set("Content-Type", "application/json")
		switch method {
		case "chat.postMessage", "chat.update", "chat.delete":
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": call.Form.Get("channel"), "ts": firstNonEmpty(call.Form.Get("ts"), ts)})
		case "chat.postEphemeral":
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "message_ts": ts})
			f.ephemeral <- call
		case "views.open":
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "view": map[string]any{"id": "V1"}})
		case "users.info":
			_ = json.NewEncoder(w).Encode(f.userInfo(call.Form.Get("user")))
		case "auth.test":
			f.mu.Lock()
			scopes := f.scopes
			f.mu.Unlock()
			if scopes != "-" {
				w.Header().Set("X-OAuth-Scopes", scopes)
			}
			_ = json.NewEncoder(w).Encode(map[string]any{
				"ok": true, "url": "https://acme.slack.com/", "team": "Acme Corp", "user": "signoff",
				"team_id": testTeam, "user_id": "U0SIGNOFF", "bot_id": "B0SIGNOFF", "is_enterprise_install": false,
			})
		}
	}
}

// slackUser is a users.info user object as Slack sends it.
func slackUser(id, team, name, realName, displayName, email string) map[string]any {
	profile := map[string]any{
		"avatar_hash": "g0123456789a", "real_name": realName, "real_name_normalized": realName,
		"display_name": displayName, "display_name_normalized": displayName, "team": team,
		"image_48": "https://avatars.slack-edge.com/48.png",
	}
	if email != "" {
		profile["email"] = email
	}
	return map[string]any{
		"id": id, "team_id": team, "name": name, "deleted": false, "color": "9f69e7",
		"real_name": realName, "tz": "Europe/Berlin", "tz_label": "Central European Time", "tz_offset": 3600,
		"profile": profile, "is_admin": false, "is_owner": false, "is_primary_owner": false,
		"is_restricted": false, "is_ultra_restricted": false, "is_bot": false, "is_app_user": false,
		"updated": 1772366400, "is_email_confirmed": true, "who_can_share_contact_card": "EVERYONE",
	}
}

// setScopes sets the X-OAuth-Scopes header of auth.test ("-": none).
func (f *fakeSlack) setScopes(scopes string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scopes = scopes
}

// setUser makes users.info answer with u for its id.
func (f *fakeSlack) setUser(u map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[u["id"].(string)] = u
}

// userInfo is users.info's answer for id.
func (f *fakeSlack) userInfo(id string) map[string]any {
	f.mu.Lock()
	u, ok := f.users[id]
	f.mu.Unlock()
	if !ok {
		name := strings.ToLower(id)
		u = slackUser(id, testTeam, name, strings.ToUpper(name[:min(1, len(name))])+name[min(1, len(name)):], name, name+"@example.com")
	}
	return map[string]any{"ok": true, "user": u}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ok returns the successful calls of method, in order.
func (f *fakeSlack) ok(method string) []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []apiCall
	for _, c := range f.calls {
		if c.Method == method && c.OK {
			out = append(out, c)
		}
	}
	return out
}

// sequence returns every call, in order.
func (f *fakeSlack) sequence() []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiCall(nil), f.calls...)
}

// all returns every call of method, failed or not.
func (f *fakeSlack) all(method string) []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []apiCall
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// nextEphemeral waits for the next chat.postEphemeral.
func (f *fakeSlack) nextEphemeral(t *testing.T) apiCall {
	t.Helper()
	select {
	case c := <-f.ephemeral:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no ephemeral message was sent")
		return apiCall{}
	}
}

// noEphemeral checks that no ephemeral message is queued.
func (f *fakeSlack) noEphemeral(t *testing.T) {
	t.Helper()
	select {
	case c := <-f.ephemeral:
		t.Fatalf("unexpected ephemeral message: %q", c.Form.Get("text"))
	default:
	}
}

// linkTable is the test double of the account-link component (tested in
// package oidc): a map from Slack account to identity.
type linkTable struct {
	mu      sync.Mutex
	ids     map[string]oidc.Identity
	stale   map[string]bool
	down    bool
	stepUps []string
	// asked lists every account Resolve, Begin or BeginStepUp was asked
	// about.
	asked []oidc.PlatformUser
}

func newLinkTable() *linkTable {
	return &linkTable{ids: map[string]oidc.Identity{}, stale: map[string]bool{}}
}

func linkKey(p oidc.PlatformUser) string { return p.Platform + "/" + p.Workspace + "/" + p.UserID }

// askedAbout returns the accounts the resolver was asked about.
func (l *linkTable) askedAbout() []oidc.PlatformUser {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]oidc.PlatformUser(nil), l.asked...)
}

func (l *linkTable) link(user string, id oidc.Identity) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids["slack/"+testTeam+"/"+user] = id
}

func (l *linkTable) markStale(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stale["slack/"+testTeam+"/"+user] = true
}

func (l *linkTable) required(p oidc.PlatformUser) error {
	if l.stale[linkKey(p)] {
		return &oidc.LinkRequiredError{URL: "https://signoff.example.com/link/start?id=relink-" + p.UserID, Reason: oidc.LinkReasonStale,
			Message: "your account link is no longer valid (user disabled): open the link to sign in again, then click again"}
	}
	if _, ok := l.ids[linkKey(p)]; !ok {
		return &oidc.LinkRequiredError{URL: "https://signoff.example.com/link/start?id=link-" + p.UserID, Reason: oidc.LinkReasonNotLinked,
			Message: "your chat account is not linked to your company sign-in yet: open the link to sign in once, then click again"}
	}
	return nil
}

func (l *linkTable) Resolve(_ context.Context, p oidc.PlatformUser) (oidc.Identity, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, p)
	if l.down {
		return oidc.Identity{}, fmt.Errorf("refresh: %w", oidc.ErrIdPUnavailable)
	}
	if err := l.required(p); err != nil {
		return oidc.Identity{}, err
	}
	return l.ids[linkKey(p)], nil
}

func (l *linkTable) Begin(_ context.Context, p oidc.PlatformUser) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, p)
	return "https://signoff.example.com/link/start?id=link-" + p.UserID, nil
}

func (l *linkTable) BeginStepUp(_ context.Context, p oidc.PlatformUser, requestID, decision string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, p)
	if err := l.required(p); err != nil {
		return "", err
	}
	l.stepUps = append(l.stepUps, p.UserID+":"+requestID+":"+decision)
	return "https://signoff.example.com/link/start?id=stepup-" + p.UserID, nil
}

func identity(name string, groups ...string) oidc.Identity {
	return oidc.Identity{
		Issuer: idpIssuer, Subject: "sub-" + name, Email: name + "@example.com", Name: name,
		PreferredUsername: name, Groups: groups, VerifiedAt: t0.Add(-time.Minute),
	}
}

// failingStore lets a test make one coming Update fail.
type failingStore struct {
	storage.Store
	mu      sync.Mutex
	countTo int // fail the countTo-th Update from now; 0: none
}

var errInjected = errors.New("injected store failure")

func (s *failingStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	s.mu.Lock()
	if s.countTo > 0 {
		s.countTo--
		if s.countTo == 0 {
			s.mu.Unlock()
			return errInjected
		}
	}
	s.mu.Unlock()
	return s.Store.Update(ctx, fn)
}

// failUpdate makes the n-th Update from now fail (1: the next one).
func (s *failingStore) failUpdate(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.countTo = n
}

type env struct {
	t     *testing.T
	clock *clock.Fake
	store *failingStore
	svc   *approvals.Service
	bot   *Bot
	slack *fakeSlack
	links *linkTable
	mux   *http.ServeMux
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clock: clock.NewFake(t0), slack: newFakeSlack(t), links: newLinkTable(), mux: http.NewServeMux()}
	st := testenv.OpenStore(t)
	e.store = &failingStore{Store: st}
	logger := testenv.DiscardLogger()
	e.svc = approvals.New(e.store, testPolicy(), approvals.Options{Clock: e.clock, Logger: logger, Platforms: []string{"slack"}})
	var err error
	e.bot, err = New(Options{
		Service: e.svc, Resolver: e.links, BotToken: "xoxb-test", SigningSecret: testSecret, TeamID: testTeam,
		APIURL: e.slack.srv.GetAPIURL(), PublicURL: "https://signoff.example.com", Clock: e.clock, Logger: logger,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.bot.responseURLAllowed = func(string) bool { return false }
	t.Cleanup(func() { _ = e.bot.Shutdown(context.Background()) })
	e.bot.Register(e.mux)
	return e
}

func (e *env) create(action string, params map[string]string, reason string, links ...storage.Link) storage.Request {
	e.t.Helper()
	r, created, err := e.svc.Create(context.Background(), approvals.CreateInput{Requester: requester, Action: action, Params: params, Reason: reason, Links: links})
	if err != nil || !created {
		e.t.Fatalf("create %s: created=%v err=%v", action, created, err)
	}
	return r
}

// deliver runs outbox passes until nothing due is left.
func (e *env) deliver() {
	e.t.Helper()
	for range 20 {
		n, err := e.bot.DeliverOnce(context.Background())
		if err != nil {
			e.t.Fatalf("DeliverOnce: %v", err)
		}
		if n == 0 {
			return
		}
	}
	e.t.Fatal("outbox never drained")
}

func (e *env) get(id string) storage.Request {
	e.t.Helper()
	r, err := e.svc.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// records returns the audit log, checking the chain.
func (e *env) records() []audit.Record {
	e.t.Helper()
	return testenv.AuditRecords(e.t, e.store)
}

func (e *env) recordsOf(typ string) []audit.Record {
	var out []audit.Record
	for _, r := range e.records() {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// sign returns the headers Slack sends with body at ts.
func sign(secret string, ts int64, body string) http.Header {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:%s", ts, body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}

// post sends a callback to the bot's mux with the given headers and waits
// until the work it started is done.
func (e *env) post(path, body string, h http.Header) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header = h
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	e.bot.work.Wait()
	return rec
}

// postSigned signs body now and posts it.
func (e *env) postSigned(path, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.post(path, body, sign(testSecret, e.clock.Now().Unix(), body))
}

var triggerSeq atomic.Int64

// blockActions is a block_actions payload shaped like Slack's, for a click
// by user on the card of requestID in channel.
func blockActions(team, user, channel, actionID, requestID string) string {
	seq := triggerSeq.Add(1)
	style, label := "primary", "Approve"
	if actionID == ActionDeny {
		style, label = "danger", "Deny"
	}
	payload := map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": user, "username": strings.ToLower(user), "name": strings.ToLower(user), "team_id": team},
		"api_app_id": "A0SIGNOFF",
		"token":      "verification-token-unused",
		"container":  map[string]any{"type": "message", "message_ts": "1772366400.000001", "channel_id": channel, "is_ephemeral": false},
		"trigger_id": fmt.Sprintf("%d.4744562912.%032x", 7000000000+seq, seq),
		"team":       map[string]any{"id": team, "domain": "acme"},
		"enterprise": nil, "is_enterprise_install": false,
		"channel":      map[string]any{"id": channel, "name": "deploys"},
		"message":      map[string]any{"type": "message", "ts": "1772366400.000001", "bot_id": "B0SIGNOFF", "text": "Approval requested"},
		"state":        map[string]any{"values": map[string]any{}},
		"response_url": "https://hooks.slack.com/actions/" + team + "/1/abc",
		"actions": []any{map[string]any{
			"action_id": actionID, "block_id": "actions", "type": "button", "style": style, "value": requestID,
			"text":      map[string]any{"type": "plain_text", "text": label, "emoji": true},
			"action_ts": fmt.Sprintf("1772366400.%06d", seq),
		}},
	}
	raw, _ := json.Marshal(payload)
	return url.Values{"payload": {string(raw)}}.Encode()
}

// click posts a signed Approve or Deny click and waits for its work.
func (e *env) click(user, requestID, actionID, channel string) *httptest.ResponseRecorder {
	e.t.Helper()
	rec := e.postSigned(InteractionsPath, blockActions(testTeam, user, channel, actionID, requestID))
	if rec.Code != http.StatusOK {
		e.t.Fatalf("click answered %d: %s", rec.Code, rec.Body)
	}
	return rec
}

// blocksJSON returns the blocks a call sent, decoded.
func blocksOf(t *testing.T, c apiCall) []map[string]any {
	t.Helper()
	var raw string
	if c.Form != nil {
		raw = c.Form.Get("blocks")
	}
	var out []map[string]any
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("blocks of %s: %v (%q)", c.Method, err, raw)
	}
	return out
}
