package teamsbot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// The Linker is the resolver serve wires in.
var _ IdentityResolver = (*linkflow.Linker)(nil)

var t0 = chattest.T0

const (
	idpIssuer = chattest.IdPIssuer
	// chanOps is the channel the actions notify; teamOps its team.
	chanOps = "19:0a1b2c3d4e5f60718293a4b5c6d7e8f9@thread.tacv2"
	teamOps = "19:f9e8d7c6b5a4938271605f4e3d2c1b0a@thread.tacv2"
	// chanNowhere is a conversation signoff never heard from.
	chanNowhere = "19:nowhere00000000000000000000000@thread.tacv2"
)

var opsPlace = teamstest.Place{Conversation: chanOps, TeamID: teamOps, TeamName: "Ops", ChannelName: "deploys"}

func testPolicy() *policy.Policy {
	p := chattest.Policy(func(string) policy.Notify { return policy.Notify{Teams: []string{chanOps}} })
	p.Actions["lost"] = &policy.Action{
		Name: "lost", Requesters: []policy.RequesterRule{{Issuer: "github"}},
		Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
		TTL:       time.Hour,
		Notify:    policy.Notify{Teams: []string{chanNowhere}},
	}
	return p
}

var (
	deployParams = chattest.DeployParams
	identity     = chattest.Identity
	newLinkTable = chattest.NewLinks
)

// env is a Teams bot on the Bot Framework stand-in, with the approvals
// service and its store; the embedded chattest.Env creates, delivers and
// reads requests and the audit log.
type env struct {
	chattest.Env
	t     *testing.T
	clock *clock.Fake
	store storage.Store
	svc   *approvals.Service
	bot   *Bot
	bf    *teamstest.Server
	links *chattest.Links
	mux   *http.ServeMux
	logs  *testenv.LogBuffer
}

// newEnv starts the stand-in, a bolt store, the approvals service and the
// bot, and installs the app in the ops channel (so its service URL is
// known). mutate, when given, adjusts the bot's options.
func newEnv(t *testing.T, mutate ...func(*Options)) *env {
	t.Helper()
	e := startEnv(t, approvals.Options{}, mutate...)
	if rec := e.send(e.bf.Installed(opsPlace, teamstest.NewUser("admin"))); rec.Code != http.StatusOK {
		t.Fatalf("installation answered %d: %s", rec.Code, rec.Body)
	}
	return e
}

// startEnv starts the stand-in, a bolt store, the approvals service and the
// bot, without installing the app anywhere. svcOpts are the service's
// options; its clock, logger and platforms are set here. mutate, when
// given, adjusts the bot's options.
func startEnv(t *testing.T, svcOpts approvals.Options, mutate ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, clock: clock.NewFake(t0), links: newLinkTable(), mux: http.NewServeMux(), logs: &testenv.LogBuffer{}}
	e.bf = teamstest.NewServer(teamstest.Options{Now: e.clock.Now})
	t.Cleanup(e.bf.Close)
	st := testenv.OpenStore(t)
	e.store = st
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svcOpts.Clock, svcOpts.Logger, svcOpts.Platforms = e.clock, logger, []string{"teams"}
	e.svc = approvals.New(st, testPolicy(), svcOpts)
	opts := Options{
		Service: e.svc, Resolver: e.links,
		AppID: e.bf.AppID(), AppPassword: e.bf.AppPassword(), TenantIDs: []string{e.bf.TenantID()},
		OpenIDMetadataURL: e.bf.OpenIDMetadataURL(), TokenURL: e.bf.TokenURL(),
		PublicURL: "https://signoff.example.com", Clock: e.clock, Logger: logger,
		// The stand-in serves the Bot Connector on loopback.
		ServiceURLHosts: []string{e.bf.ServiceHost()},
	}
	for _, m := range mutate {
		m(&opts)
	}
	e.bot = startBot(t, opts, e.mux)
	e.Env = chattest.NewEnv(t, e.svc, e.store, e.bot.DeliverOnce)
	return e
}

// sendWith posts activity to the bot's endpoint with the Authorization
// header auth ("" for none) and waits for the work it started.
func (e *env) sendWith(activity map[string]any, auth string) *httptest.ResponseRecorder {
	e.t.Helper()
	body, err := json.Marshal(activity)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.sendRaw(body, auth)
}

// sendRaw posts body, bytes as they are, with auth (none when empty) and
// waits for the work it started.
func (e *env) sendRaw(body []byte, auth string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, MessagesPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	e.bot.work.Wait()
	return rec
}

// send posts activity with the token the Bot Connector would send.
func (e *env) send(activity map[string]any) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.sendWith(activity, e.bf.Authorization(activity))
}

// otherBot returns a second bot on e's stand-in and approvals service,
// with the Service URL hosts left to their default and a logger that drops
// everything; mutate adjusts its options. It is shut down when the test
// ends.
func (e *env) otherBot(mutate func(*Options)) *Bot {
	e.t.Helper()
	opts := Options{
		Service: e.svc, Resolver: e.links, AppID: e.bf.AppID(), AppPassword: e.bf.AppPassword(),
		TenantIDs: []string{e.bf.TenantID()}, OpenIDMetadataURL: e.bf.OpenIDMetadataURL(), TokenURL: e.bf.TokenURL(),
		Clock: e.clock, Logger: slog.New(slog.DiscardHandler),
	}
	mutate(&opts)
	return startBot(e.t, opts, nil)
}

// startBot returns a bot of opts, mounted on mux unless it is nil, and
// shuts it down when tb ends.
func startBot(tb testing.TB, opts Options, mux chatflow.Mux) *Bot {
	tb.Helper()
	b, err := New(opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	if mux != nil {
		b.Register(mux)
	}
	return b
}

// sendTo hands activity, with the token the Bot Connector would send,
// straight to b's messaging endpoint.
func (e *env) sendTo(b *Bot, activity map[string]any) *httptest.ResponseRecorder {
	e.t.Helper()
	body, err := json.Marshal(activity)
	if err != nil {
		e.t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, MessagesPath, bytes.NewReader(body))
	req.Header.Set("Authorization", e.bf.Authorization(activity))
	rec := httptest.NewRecorder()
	b.handleMessages(rec, req)
	return rec
}

// checkOnePost checks that one card was posted, to conversation, and that
// request id holds it with serviceURL.
func (e *env) checkOnePost(id, conversation, serviceURL string) {
	e.t.Helper()
	if p := e.bf.Posted(); len(p) != 1 || p[0].Conversation != conversation {
		e.t.Fatalf("posts: %+v", p)
	}
	if c := e.Get(id).Cards; len(c) != 1 || c[0].ServiceURL != serviceURL {
		e.t.Errorf("cards: %+v", c)
	}
}

// decodedInvoke is an invoke response as Teams reads it.
type decodedInvoke struct {
	StatusCode int             `json:"statusCode"`
	Type       string          `json:"type"`
	Value      json.RawMessage `json:"value"`
}

func (d decodedInvoke) message() string {
	var s string
	_ = json.Unmarshal(d.Value, &s)
	return s
}

func (d decodedInvoke) card() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(d.Value, &m)
	return m
}

// invokeActivity answers an invoke activity and decodes the answer.
func (e *env) invokeActivity(act map[string]any) decodedInvoke {
	e.t.Helper()
	rec := e.send(act)
	if rec.Code != http.StatusOK {
		e.t.Fatalf("invoke answered HTTP %d: %s", rec.Code, rec.Body)
	}
	var d decodedInvoke
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		e.t.Fatalf("invoke answer %q: %v", rec.Body, err)
	}
	return d
}

// click is the invoke a press of verb on request's card by user sends.
func (e *env) click(user teamstest.User, requestID, verb string, extra map[string]any) map[string]any {
	data := map[string]any{"signoff": "signoff.vote", "requestId": requestID, "decision": verb}
	for k, v := range extra {
		data[k] = v
	}
	replyTo := ""
	if r, err := e.svc.Get(context.Background(), requestID); err == nil {
		if c, ok := cards.Find(r, Platform, chanOps); ok {
			replyTo = c.MessageID
		}
	}
	return e.bf.Invoke(teamstest.Click{Place: opsPlace, User: user, ReplyToID: replyTo, Verb: verb, Data: data})
}

// vote presses verb as user and returns the decoded answer.
func (e *env) vote(user teamstest.User, requestID, verb string) decodedInvoke {
	e.t.Helper()
	return e.invokeActivity(e.click(user, requestID, verb, nil))
}

// teamsUser returns the Teams account of name as the link table keys it.
func (e *env) teamsUser(name string) (teamstest.User, linkflow.PlatformUser) {
	u := teamstest.NewUser(name)
	return u, linkflow.PlatformUser{Platform: Platform, Workspace: e.bf.TenantID(), UserID: u.AADObjectID}
}

// linked returns a Teams user linked to name's identity in groups.
func (e *env) linked(name string, groups ...string) teamstest.User {
	u, p := e.teamsUser(name)
	e.links.Link(p, identity(name, groups...))
	return u
}

// element finds the card element (or action) with id, searching
// containers.
func element(card map[string]any, id string) map[string]any {
	var walk func(items []any) map[string]any
	walk = func(items []any) map[string]any {
		for _, it := range items {
			m, _ := it.(map[string]any)
			if m == nil {
				continue
			}
			if m["id"] == id {
				return m
			}
			for _, k := range []string{"items", "actions", "columns"} {
				if sub, ok := m[k].([]any); ok {
					if f := walk(sub); f != nil {
						return f
					}
				}
			}
		}
		return nil
	}
	body, _ := card["body"].([]any)
	if f := walk(body); f != nil {
		return f
	}
	acts, _ := card["actions"].([]any)
	return walk(acts)
}

// facts returns a FactSet's facts as "title=value" lines.
func facts(card map[string]any, id string) []string {
	fs := element(card, id)
	var out []string
	list, _ := fs["facts"].([]any)
	for _, f := range list {
		m := f.(map[string]any)
		out = append(out, fmt.Sprint(m["title"])+"="+fmt.Sprint(m["value"]))
	}
	return out
}

// runText returns a RichTextBlock's text.
func runText(el map[string]any) string {
	var b strings.Builder
	inl, _ := el["inlines"].([]any)
	for _, i := range inl {
		m, _ := i.(map[string]any)
		b.WriteString(fmt.Sprint(m["text"]))
	}
	return b.String()
}

// statusText returns every text of the card's status container.
func statusText(card map[string]any) string {
	st := element(card, "status")
	var lines []string
	items, _ := st["items"].([]any)
	for _, it := range items {
		m := it.(map[string]any)
		if m["type"] == "RichTextBlock" {
			lines = append(lines, runText(m))
		} else {
			lines = append(lines, fmt.Sprint(m["text"]))
		}
	}
	return strings.Join(lines, "\n")
}

// lastCard returns the card of the last successful post or update.
func (e *env) lastCard() map[string]any {
	e.t.Helper()
	calls := e.bf.Calls()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].OK() && calls[i].Card() != nil {
			return calls[i].Card()
		}
	}
	e.t.Fatal("no card was posted")
	return nil
}
