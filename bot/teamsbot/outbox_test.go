package teamsbot

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/storage"
)

// pending returns the due-or-not "notify.teams" outbox entries.
func (e *env) pending() []storage.OutboxEntry {
	e.t.Helper()
	return testenv.DueOutbox(e.t, e.store, OutboxKind)
}

// voteAs votes d on requestID as name's identity (group sre), from name's
// Teams account, without a click.
func (e *env) voteAs(name, requestID string, d storage.Decision) {
	e.t.Helper()
	e.VoteAs(requestID, identity(name, "sre"), d,
		approvals.Source{Platform: Platform, Workspace: e.bf.TenantID(), PlatformUser: "aad-" + name, CallbackID: "cb-" + name})
}

func deliverN(t *testing.T, e *env) int {
	t.Helper()
	n, err := e.bot.DeliverOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUpdatesRetriedInOrder(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	cardID := e.Get(r.ID).Cards[0].MessageID

	e.bf.Fail(http.MethodPut, teamstest.Answer{Status: http.StatusTooManyRequests, RetryAfter: "3"}, teamstest.Answer{Status: http.StatusInternalServerError})
	e.voteAs("alice", r.ID, storage.DecisionApprove) // entry A: voted
	if n := deliverN(t, e); n != 1 {
		t.Fatalf("claimed %d", n)
	}
	// 429: rescheduled after its Retry-After, with the error recorded.
	left := e.pending()
	if len(left) != 1 || !strings.Contains(left[0].LastError, "429") || !left[0].NextAttempt.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("after the 429: %+v", left)
	}
	if n := deliverN(t, e); n != 0 {
		t.Fatalf("an entry was retried before its Retry-After: %d", n)
	}

	e.voteAs("bob", r.ID, storage.DecisionApprove) // entry B: decided
	e.clock.Advance(3 * time.Second)
	deliverN(t, e) // A: 500; B must wait behind A
	puts := func() []teamstest.Call {
		var out []teamstest.Call
		for _, c := range e.bf.Calls() {
			if c.Method == http.MethodPut {
				out = append(out, c)
			}
		}
		return out
	}
	if p := puts(); len(p) != 2 || p[1].Status != http.StatusInternalServerError {
		t.Fatalf("PUTs after the retry: %+v (the younger update must not overtake the failed one)", p)
	}
	left = e.pending()
	if len(left) != 2 || !strings.Contains(left[0].LastError, "500") {
		t.Fatalf("after the 500: %+v", left)
	}

	e.clock.Advance(cards.BackoffMax)
	e.Deliver()
	p := puts()
	var statuses []int
	for _, c := range p {
		statuses = append(statuses, c.Status)
	}
	if len(p) != 4 || statuses[2] != http.StatusOK || statuses[3] != http.StatusOK {
		t.Fatalf("PUT statuses %v, want [429 500 200 200]", statuses)
	}
	for _, c := range p {
		if c.ActivityID != cardID || c.Conversation != chanOps || c.Body["id"] != cardID {
			t.Errorf("update of the wrong activity: %+v", c)
		}
	}
	if s := statusText(p[3].Card()); !strings.Contains(s, "Approved") {
		t.Errorf("last update: %q", s)
	}
	if n := len(e.bf.Posted()); n != 1 {
		t.Errorf("%d posts; a card must be posted once", n)
	}
	if len(e.pending()) != 0 {
		t.Error("entries left")
	}
	// One successful update per state change (two votes).
	if ok := e.bf.OK(http.MethodPut); len(ok) != 2 {
		t.Errorf("%d successful updates, want 2", len(ok))
	}
}

func TestUpdateNeverOvertakesPost(t *testing.T) {
	e := newEnv(t)
	e.bf.Fail(http.MethodPost, teamstest.Answer{Status: http.StatusServiceUnavailable, RetryAfter: "30"})
	r := e.Create("deploy-prod", deployParams(), "")
	deliverN(t, e)
	e.voteAs("alice", r.ID, storage.DecisionApprove)
	deliverN(t, e)
	if n := len(e.bf.OK(http.MethodPut)); n != 0 {
		t.Fatalf("an update went out before the card was posted: %d", n)
	}
	if left := e.pending(); len(left) != 2 || left[0].NextAttempt.Before(t0.Add(30*time.Second)) {
		t.Fatalf("a 503's Retry-After was not honoured: %+v", left)
	}
	e.clock.Advance(time.Minute)
	e.Deliver()
	calls := e.bf.Calls()
	var seq []string
	for _, c := range calls {
		if c.OK() {
			seq = append(seq, c.Method)
		}
	}
	if strings.Join(seq, ",") != "POST,PUT" {
		t.Errorf("successful calls %v, want POST then PUT", seq)
	}
}

func TestConversationUpdateStoresConversations(t *testing.T) {
	// Another region's Bot Connector host, allowed by the configuration.
	e := newEnv(t, func(o *Options) { o.ServiceURLHosts = append(o.ServiceURLHosts, "smba.other.example") })
	// newEnv's installation taught the ops channel and its team.
	if c, err := e.conversation(chanOps); err != nil || c.ServiceURL != e.bf.ServiceURL() || c.TenantID != e.bf.TenantID() || c.Name != "deploys" {
		t.Errorf("ops channel: %+v %v", c, err)
	}

	other := "https://smba.other.example/emea/"
	team := teamstest.Place{Conversation: "19:general-sec@thread.tacv2", TeamID: "19:general-sec@thread.tacv2", TeamName: "Security", ServiceURL: e.bf.ServiceURL()}
	if rec := e.send(e.bf.BotAdded(team, teamstest.NewUser("admin"))); rec.Code != http.StatusOK {
		t.Fatalf("conversationUpdate: %d", rec.Code)
	}
	if c, err := e.conversation(team.TeamID); err != nil || c.ServiceURL != e.bf.ServiceURL() || c.Name != "Security" || c.Platform != "teams" {
		t.Errorf("team: %+v %v", c, err)
	}
	created := teamstest.Place{Conversation: "19:incidents@thread.tacv2", TeamID: team.TeamID, TeamName: "Security", ChannelName: "incidents", ServiceURL: other}
	// The token's serviceurl claim follows the activity, so other is
	// trusted for this one.
	if rec := e.send(e.bf.ChannelCreated(created, teamstest.NewUser("admin"))); rec.Code != http.StatusOK {
		t.Fatalf("channelCreated: %d", rec.Code)
	}
	if c, err := e.conversation("19:incidents@thread.tacv2"); err != nil || c.ServiceURL != other || c.Name != "incidents" {
		t.Errorf("created channel: %+v %v", c, err)
	}
	if c, _ := e.conversation(team.TeamID); c.ServiceURL != other {
		t.Errorf("the team's service URL was not refreshed: %+v", c)
	}

	// A refused activity teaches nothing.
	evil := teamstest.Place{Conversation: "19:evil@thread.tacv2", Type: "groupChat", TenantID: "0b0b0b0b-0000-4000-8000-000000000bad"}
	if rec := e.send(e.bf.BotAdded(evil, teamstest.NewUser("mallory"))); rec.Code != http.StatusForbidden {
		t.Fatalf("foreign tenant: %d", rec.Code)
	}
	if _, err := e.conversation("19:evil@thread.tacv2"); err == nil {
		t.Error("a conversation from a foreign tenant was stored")
	}
}

func TestUnknownConversationIsAClearError(t *testing.T) {
	e := newEnv(t)
	r := e.Create("lost", nil, "")
	deliverN(t, e)
	left := e.pending()
	if len(left) != 1 || !strings.Contains(left[0].LastError, `cannot reach Teams conversation "`+chanNowhere+`"`) ||
		!strings.Contains(left[0].LastError, "teams.service_url") {
		t.Fatalf("entry: %+v", left)
	}
	if !strings.Contains(e.logs.String(), "teams card cannot be delivered yet") || !strings.Contains(e.logs.String(), "level=ERROR") {
		t.Errorf("not logged as an error:\n%s", e.logs)
	}
	if n := len(e.bf.Calls()); n != 0 {
		t.Errorf("%d connector calls", n)
	}

	// Once the app is added there, the card goes out.
	e.send(e.bf.BotAdded(teamstest.Place{Conversation: chanNowhere, Type: "groupChat"}, teamstest.NewUser("admin")))
	e.clock.Advance(cards.BackoffMax)
	e.Deliver()
	e.checkOnePost(r.ID, chanNowhere, e.bf.ServiceURL())
}

func TestConfiguredServiceURLFallback(t *testing.T) {
	var su string
	e := newEnv(t, func(o *Options) {
		su = o.OpenIDMetadataURL[:strings.Index(o.OpenIDMetadataURL, "/v1/")] + "/teams/"
		o.ServiceURL = su
	})
	r := e.Create("lost", nil, "")
	e.Deliver()
	e.checkOnePost(r.ID, chanNowhere, su)
}

func TestRejectedTokenIsRenewed(t *testing.T) {
	e := newEnv(t)
	e.Create("deploy-prod", deployParams(), "")
	e.bf.Fail(http.MethodPost, teamstest.Answer{Status: http.StatusUnauthorized})
	deliverN(t, e)
	e.clock.Advance(cards.BackoffMax)
	e.Deliver()
	if n := len(e.bf.Posted()); n != 1 {
		t.Fatalf("%d posts", n)
	}
	if n := e.bf.TokenRequests(); n != 2 {
		t.Errorf("%d token requests; a refused token must be replaced", n)
	}
}

func TestBadCredentialsAreRetriedAndNotLogged(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AppPassword = "wrong-secret-value-1234" })
	e.Create("deploy-prod", deployParams(), "")
	deliverN(t, e)
	left := e.pending()
	if len(left) != 1 || !strings.Contains(left[0].LastError, "invalid_client") {
		t.Fatalf("entry: %+v", left)
	}
	if strings.Contains(left[0].LastError, "wrong-secret-value-1234") || strings.Contains(e.logs.String(), "wrong-secret-value-1234") {
		t.Error("the client secret leaked into an error or a log")
	}
	if !strings.Contains(e.logs.String(), "teams.app_password") {
		t.Errorf("no hint at the credentials:\n%s", e.logs)
	}
}

func TestDeletedCardGivesUpOnUpdate(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	e.bf.Fail(http.MethodPut, teamstest.Answer{Status: http.StatusNotFound, Code: "ActivityNotFound"})
	e.voteAs("alice", r.ID, storage.DecisionApprove)
	e.Deliver()
	if len(e.pending()) != 0 {
		t.Error("the update of a deleted card is still queued")
	}
	if !strings.Contains(e.logs.String(), "cannot be updated any more") {
		t.Error("not logged")
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Sun, 01 Mar 2026 12:00:30 GMT": 30 * time.Second,
		"99999":                         time.Hour,
	} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}
