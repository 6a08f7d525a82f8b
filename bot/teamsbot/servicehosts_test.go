package teamsbot

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/storage"
)

// elsewhere is a server on a host that is not in teams.service_url_hosts:
// it records every request that reaches it (it must get none).
type elsewhere struct {
	srv *httptest.Server
	// URL is its base URL under the name "localhost", which the test's
	// host list (the stand-in's 127.0.0.1) does not contain.
	URL string

	mu   sync.Mutex
	hits []string
}

func newElsewhere(t *testing.T) *elsewhere {
	t.Helper()
	x := &elsewhere{}
	x.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x.mu.Lock()
		x.hits = append(x.hits, r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Authorization"))
		x.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"stolen","access_token":"x","token_type":"bearer","expires_in":3600}`))
	}))
	t.Cleanup(x.srv.Close)
	u, _ := url.Parse(x.srv.URL)
	x.URL = "http://localhost:" + u.Port()
	return x
}

func (x *elsewhere) requests() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.hits...)
}

func (e *env) conversation(id string) (storage.Conversation, error) {
	var c storage.Conversation
	err := e.store.View(context.Background(), func(tx storage.ReadTx) error {
		var err error
		c, err = tx.Conversation(Platform, id)
		return err
	})
	return c, err
}

// A validly signed activity whose serviceUrl (and token claim) names a
// host outside teams.service_url_hosts is refused with 401 and audited,
// before anything is stored or any call is made: the bot's token never
// goes there, not for the answer, not later from the store.
func TestServiceURLOutsideAllowedHostsRefused(t *testing.T) {
	e := newEnv(t)
	x := newElsewhere(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	posted := len(e.bf.Calls())
	tokens := e.bf.TokenRequests()
	alice := e.linked("alice", "sre")
	before := len(e.RecordsOf(audit.TypeCallbackRejected))

	evilOps := opsPlace
	evilOps.ServiceURL = x.URL + "/teams/"
	chat := teamstest.Place{Conversation: "19:elsewhere@thread.v2", Type: "groupChat", ServiceURL: x.URL + "/teams/"}
	vote := map[string]any{"signoff": voteKind, "requestId": r.ID, "decision": VerbApprove}
	for name, act := range map[string]map[string]any{
		"installation":    e.bf.Installed(chat, teamstest.NewUser("admin")),
		"bot added":       e.bf.BotAdded(chat, teamstest.NewUser("admin")),
		"click":           e.bf.Invoke(teamstest.Click{Place: evilOps, User: alice, Verb: VerbApprove, Data: vote}),
		"submit fallback": e.bf.SubmitMessage(teamstest.Click{Place: evilOps, User: alice, Verb: VerbApprove, Data: vote}),
	} {
		// The token is genuine: signed by the Bot Framework key, its
		// serviceurl claim equal to the activity's serviceUrl.
		rec := e.send(act)
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "service_url_not_allowed") {
			t.Errorf("%s: answered %d %s, want 401 service_url_not_allowed", name, rec.Code, rec.Body)
		}
	}
	e.Deliver()

	if hits := x.requests(); len(hits) != 0 {
		t.Fatalf("the host outside teams.service_url_hosts was called: %q", hits)
	}
	if n := len(e.bf.Calls()); n != posted {
		t.Errorf("%d connector calls after the refused activities, want %d", n, posted)
	}
	if n := e.bf.TokenRequests(); n != tokens {
		t.Errorf("the bot fetched a token for a refused activity (%d → %d)", tokens, n)
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Errorf("a click through a refused serviceUrl voted: %+v", got.Votes)
	}
	if _, err := e.conversation(chat.Conversation); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a refused activity's conversation was stored: %v", err)
	}
	if c, err := e.conversation(chanOps); err != nil || c.ServiceURL != e.bf.ServiceURL() {
		t.Errorf("the ops channel's reference changed: %+v %v", c, err)
	}
	recs := e.RecordsOf(audit.TypeCallbackRejected)[before:]
	if len(recs) == 0 {
		t.Fatal("no callback.rejected record")
	}
	for _, rec := range recs {
		if rec.Data["reason"] != string(rejectServiceURLHost) || rec.Data["platform"] != Platform {
			t.Errorf("callback.rejected: %+v", rec.Data)
		}
	}
	if !strings.Contains(e.logs.String(), "teams.service_url_hosts") {
		t.Errorf("the log does not name teams.service_url_hosts:\n%s", e.logs)
	}

	// The same click through the listed host counts.
	if d := e.vote(alice, r.ID, VerbApprove); d.StatusCode != http.StatusOK {
		t.Fatalf("click through the listed host: %+v", d)
	}
	if got := e.Get(r.ID); len(got.Votes) != 1 {
		t.Errorf("votes: %+v", got.Votes)
	}
	if hits := x.requests(); len(hits) != 0 {
		t.Fatalf("the host outside teams.service_url_hosts was called: %q", hits)
	}
}

// A conversation reference stored with a service URL outside the list
// (stored before the list changed, or written by hand) is not used: the
// card is not posted there, teams.service_url is used when set, and the
// connector itself refuses such a URL before it fetches a token.
func TestStoredServiceURLOutsideAllowedHostsNotUsed(t *testing.T) {
	e := newEnv(t)
	x := newElsewhere(t)
	err := e.store.Update(context.Background(), func(tx storage.Tx) error {
		return tx.PutConversation(storage.Conversation{Platform: Platform, ID: chanOps, ServiceURL: x.URL + "/teams/", TenantID: e.bf.TenantID(), UpdatedAt: t0})
	})
	if err != nil {
		t.Fatal(err)
	}
	r := e.Create("deploy-prod", deployParams(), "")
	deliverN(t, e)
	if hits := x.requests(); len(hits) != 0 {
		t.Fatalf("a stored service URL outside the list was called: %q", hits)
	}
	if n := len(e.bf.Posted()); n != 0 {
		t.Fatalf("%d posts", n)
	}
	left := e.pending()
	if len(left) != 1 || !strings.Contains(left[0].LastError, "teams.service_url_hosts") {
		t.Fatalf("entry: %+v", left)
	}
	if !strings.Contains(e.logs.String(), "a teams service URL is not used") {
		t.Errorf("not logged:\n%s", e.logs)
	}

	// With teams.service_url set (to a listed host), that is used instead.
	e.bot.opts.ServiceURL = e.bf.ServiceURL()
	e.clock.Advance(cards.BackoffMax)
	e.Deliver()
	e.checkOnePost(r.ID, chanOps, e.bf.ServiceURL())

	// Every connector call checks the host itself, before the token.
	tokens := e.bf.TokenRequests()
	for _, u := range []string{x.URL + "/teams/", "http://" + e.bf.ServiceHost() + "@localhost:1/teams/"} {
		_, err = e.bot.api.post(context.Background(), u, chanOps, outActivity{Type: "message", Text: "hi"})
		if !errors.Is(err, errHostNotAllowed) {
			t.Errorf("post to %s: %v", u, err)
		}
		if err := e.bot.api.remove(context.Background(), u, chanOps, "1"); !errors.Is(err, errHostNotAllowed) {
			t.Errorf("delete at %s: %v", u, err)
		}
	}
	if hits := x.requests(); len(hits) != 0 {
		t.Fatalf("the connector called a host outside the list: %q", hits)
	}
	if n := e.bf.TokenRequests(); n != tokens {
		t.Errorf("a token was fetched for a refused call")
	}
}

// The default list is Microsoft's public and government Bot Connector
// hosts: loopback is not in it, so the stand-in's activities are refused
// until the test lists it.
func TestServiceURLHostsDefault(t *testing.T) {
	e := newEnv(t)
	// A second bot on the same stand-in and store, with the default list.
	b := e.otherBot(func(o *Options) { o.ServiceURL = "https://smba.infra.gov.teams.microsoft.us/teams" })
	rec := e.sendTo(b, e.bf.Installed(teamstest.Place{Conversation: "19:x@thread.v2", Type: "groupChat"}, teamstest.NewUser("admin")))
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), string(rejectServiceURLHost)) {
		t.Errorf("an activity from loopback under the default list: %d %s", rec.Code, rec.Body)
	}
	for _, h := range []string{"smba.trafficmanager.net", "smba.infra.gcc.teams.microsoft.com", "smba.infra.gov.teams.microsoft.us", "smba.infra.dod.teams.microsoft.us"} {
		if !b.hosts.Allows(h) {
			t.Errorf("the default list does not allow %s", h)
		}
	}
	for _, h := range []string{"127.0.0.1", "localhost", "botframework.com", "evil.trafficmanager.net"} {
		if b.hosts.Allows(h) {
			t.Errorf("the default list allows %s", h)
		}
	}
}

func TestServiceURLHostsOptionsChecked(t *testing.T) {
	e := newEnv(t)
	base := Options{Service: e.svc, Resolver: e.links, AppID: "a", AppPassword: "p", TenantIDs: []string{"t"}}
	for _, c := range []struct {
		hosts      []string
		serviceURL string
		want       string
	}{
		{[]string{"https://smba.trafficmanager.net/teams/"}, "", "teams.service_url_hosts"},
		{[]string{"*"}, "", "teams.service_url_hosts"},
		{[]string{}, "", "teams.service_url_hosts is empty"},
		{nil, "https://evil.example/teams/", `teams.service_url "https://evil.example/teams/": its host "evil.example" is not in teams.service_url_hosts`},
	} {
		o := base
		o.ServiceURLHosts, o.ServiceURL = c.hosts, c.serviceURL
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("hosts %q, service_url %q: %v, want %q", c.hosts, c.serviceURL, err, c.want)
		}
	}
}
