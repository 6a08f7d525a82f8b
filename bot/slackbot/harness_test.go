package slackbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// The Linker is the resolver serve wires in.
var _ IdentityResolver = (*linkflow.Linker)(nil)

var t0 = chattest.T0

const (
	testSecret = "test-signing-secret-0123456789abcdef"
	testTeam   = "T0TEAM"
	idpIssuer  = chattest.IdPIssuer
)

// slackChannels are the channels the test actions notify.
var slackChannels = map[string]string{"deploy-prod": "C1", "restart": "C2", "break-glass": "C3", "wide": "C4"}

func testPolicy() *policy.Policy {
	p := chattest.Policy(func(action string) policy.Notify { return policy.Notify{Slack: []string{slackChannels[action]}} })
	wide := map[string]policy.Param{}
	for i := range 30 {
		wide[fmt.Sprintf("p%02d", i)] = policy.Param{MaxLength: 5000}
	}
	p.Actions["wide"] = &policy.Action{
		Name: "wide", Requesters: []policy.RequesterRule{{Issuer: "github"}},
		Params:    wide,
		Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
		TTL:       time.Hour,
		Notify:    policy.Notify{Slack: []string{slackChannels["wide"]}},
	}
	return p
}

var (
	deployParams = chattest.DeployParams
)

// apiCall is one Web API call the stand-in answered.
type apiCall = chattest.SlackCall

// fakeSlack is chattest's Slack Web API stand-in, with users.info and
// auth.test answered for testTeam.
type fakeSlack struct {
	*chattest.SlackAPI

	mu sync.Mutex
	// users are the users.info records served, by user id, in Slack's
	// wire format; a user not listed is a member of testTeam with the
	// email <lower-case id>@example.com.
	users map[string]map[string]any
	// scopes is the X-OAuth-Scopes header auth.test answers with.
	scopes string
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{
		users:  map[string]map[string]any{},
		scopes: "chat:write,commands,users:read,users:read.email",
	}
	f.SlackAPI = chattest.NewSlackAPI(t, map[string]func(http.ResponseWriter, apiCall){
		"users.info": func(w http.ResponseWriter, call apiCall) {
			_ = json.NewEncoder(w).Encode(f.userInfo(call.Form.Get("user")))
		},
		"auth.test": func(w http.ResponseWriter, _ apiCall) {
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
		},
	})
	return f
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

// linkTable is chattest's account-link double, keyed by Slack user ids in
// testTeam.
type linkTable struct{ *chattest.Links }

func newLinkTable() *linkTable { return &linkTable{chattest.NewLinks()} }

// teamAccount is user's account in testTeam.
func teamAccount(user string) linkflow.PlatformUser {
	return linkflow.PlatformUser{Platform: Platform, Workspace: testTeam, UserID: user}
}

func (l *linkTable) link(user string, id oidc.Identity) { l.Link(teamAccount(user), id) }

func (l *linkTable) markStale(user string) { l.MarkStale(teamAccount(user)) }

// askedAbout returns the accounts the resolver was asked about.
func (l *linkTable) askedAbout() []linkflow.PlatformUser { return l.Asked() }

var identity = chattest.Identity

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

// env is a Slack bot on slacktest's server, with the approvals service
// and its store; the embedded chattest.Env creates, delivers and reads
// requests and the audit log.
type env struct {
	chattest.Env
	t     *testing.T
	clock *clock.Fake
	store *failingStore
	svc   *approvals.Service
	bot   *Bot
	slack *fakeSlack
	links *linkTable
	mux   *http.ServeMux
}

// newEnv starts slacktest's server, a bolt store, the approvals service
// and the bot.
func newEnv(t *testing.T) *env {
	t.Helper()
	return startEnv(t, approvals.Options{})
}

// startEnv is newEnv with svcOpts as the approvals service's options; its
// clock, logger and platforms are set here.
func startEnv(t *testing.T, svcOpts approvals.Options) *env {
	t.Helper()
	e := &env{t: t, clock: clock.NewFake(t0), slack: newFakeSlack(t), links: newLinkTable(), mux: http.NewServeMux()}
	st := testenv.OpenStore(t)
	e.store = &failingStore{Store: st}
	logger := testenv.DiscardLogger()
	svcOpts.Clock, svcOpts.Logger, svcOpts.Platforms = e.clock, logger, []string{"slack"}
	e.svc = approvals.New(e.store, testPolicy(), svcOpts)
	e.bot = startBot(t, Options{
		Service: e.svc, Resolver: e.links, BotToken: "xoxb-test", SigningSecret: testSecret, TeamID: testTeam,
		APIURL: e.slack.URL(), PublicURL: "https://signoff.example.com", Clock: e.clock, Logger: logger,
	}, e.mux)
	e.Env = chattest.NewEnv(t, e.svc, e.store, e.bot.DeliverOnce)
	return e
}

// startBot returns a bot of opts, mounted on mux, that posts no slash
// command reply to a response_url; it is shut down when tb ends.
func startBot(tb testing.TB, opts Options, mux chatflow.Mux) *Bot {
	tb.Helper()
	b, err := New(opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	b.responseURLAllowed = func(string) bool { return false }
	tb.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	b.Register(mux)
	return b
}

// sign returns the headers Slack sends with body at ts.
var sign = chattest.SlackHeaders

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

// triggerIDShape matches the trigger ids blockActions makes.
var triggerIDShape = regexp.MustCompile(`^7[0-9]{9}\.4744562912\.[0-9a-f]{32}$`)

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
