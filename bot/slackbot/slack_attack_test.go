package slackbot

// Attacks on the Slack adapter: each test names the guarantee it tries to
// break.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/chatlimit"
	"github.com/signoff-dev/signoff/storage"
)

// rewritePayload decodes an interaction body, lets edit change the payload
// and encodes it again.
func rewritePayload(t *testing.T, body string, edit func(p map[string]any)) string {
	t.Helper()
	form, err := url.ParseQuery(body)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(form.Get("payload")), &p); err != nil {
		t.Fatal(err)
	}
	edit(p)
	raw, _ := json.Marshal(p)
	form.Set("payload", string(raw))
	return form.Encode()
}

// A signed callback replayed after the window is refused (401,
// stale_timestamp) and does not count a second time; replayed inside the
// window with the signature's hex in upper case it is still recognised as a
// replay (no second reply).
func TestAttackReplayInsideAndOutsideWindow(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	body := blockActions(testTeam, "UALICE", "C1", ActionApprove, r.ID)
	h := sign(testSecret, e.clock.Now().Unix(), body)
	if rec := e.post(InteractionsPath, body, h.Clone()); rec.Code != http.StatusOK {
		t.Fatalf("first: %d", rec.Code)
	}
	e.slack.NextEphemeral(t)

	upper := h.Clone()
	upper.Set(headerSignature, "v0="+strings.ToUpper(strings.TrimPrefix(h.Get(headerSignature), "v0=")))
	if rec := e.post(InteractionsPath, body, upper); rec.Code != http.StatusOK {
		t.Fatalf("upper-case replay: %d", rec.Code)
	}
	e.slack.NoEphemeral(t) // acknowledged and ignored

	e.clock.Advance(SignatureWindow + time.Second)
	if rec := e.post(InteractionsPath, body, h.Clone()); rec.Code != http.StatusUnauthorized {
		t.Fatalf("replay after the window: %d, want 401", rec.Code)
	}
	// Past the replay cache's memory (11 min) the timestamp is long stale.
	e.clock.Advance(10 * time.Minute)
	if rec := e.post(InteractionsPath, body, h.Clone()); rec.Code != http.StatusUnauthorized {
		t.Fatalf("replay after the cache forgot it: %d, want 401", rec.Code)
	}
	if got := e.Get(r.ID); len(got.Votes) != 1 {
		t.Fatalf("%d votes", len(got.Votes))
	}
	e.slack.NoEphemeral(t)
}

// Odd, duplicated and malformed signature and timestamp headers, and a
// valid signature over a modified body, are all refused before anything
// is parsed.
func TestAttackSignatureAndTimestampVariants(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	e.links.link("UBOSS", identity("boss", "sre"))
	body := blockActions(testTeam, "UALICE", "C1", ActionApprove, r.ID)
	now := e.clock.Now().Unix()
	good := sign(testSecret, now, body)
	goodSig := good.Get(headerSignature)

	variant := func(edit func(h http.Header)) http.Header {
		h := good.Clone()
		edit(h)
		return h
	}
	// Signed with a timestamp string Slack would not send, but checked
	// against the header: the attacker has no secret, so only header
	// changes over a fixed signature are tried.
	cases := map[string]struct {
		h    http.Header
		body string
	}{
		"V0 upper-case prefix":          {variant(func(h http.Header) { h.Set(headerSignature, "V0="+strings.TrimPrefix(goodSig, "v0=")) }), body},
		"signature with trailing bytes": {variant(func(h http.Header) { h.Set(headerSignature, goodSig+"00") }), body},
		"signature with a v1 appended":  {variant(func(h http.Header) { h.Set(headerSignature, goodSig+",v1=abc") }), body},
		"bad first, good second":        {variant(func(h http.Header) { h[headerSignature] = []string{"v0=" + strings.Repeat("0", 64), goodSig} }), body},
		"timestamp with leading zero":   {variant(func(h http.Header) { h.Set(headerTimestamp, "0"+h.Get(headerTimestamp)) }), body},
		"timestamp with plus":           {variant(func(h http.Header) { h.Set(headerTimestamp, "+"+h.Get(headerTimestamp)) }), body},
		"timestamp fraction":            {variant(func(h http.Header) { h.Set(headerTimestamp, h.Get(headerTimestamp)+".0") }), body},
		"timestamp negative":            {variant(func(h http.Header) { h.Set(headerTimestamp, "-1") }), body},
		"timestamp huge":                {variant(func(h http.Header) { h.Set(headerTimestamp, "99999999999999999999") }), body},
		"timestamp empty":               {variant(func(h http.Header) { h.Set(headerTimestamp, "") }), body},
		"signature empty":               {variant(func(h http.Header) { h.Set(headerSignature, "") }), body},
		"body with a second payload":    {good, body + "&" + url.Values{"payload": {"{}"}}.Encode()},
		"body user swapped":             {good, strings.Replace(body, "UALICE", "UBOSS", -1)},
		"body with trailing newline":    {good, body + "\n"},
	}
	for name, c := range cases {
		if rec := e.post(InteractionsPath, c.body, c.h); rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, rec.Code)
		}
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Fatalf("votes after forged variants: %+v", got.Votes)
	}
	e.slack.NoEphemeral(t)
	// The original still works once.
	if rec := e.post(InteractionsPath, body, good.Clone()); rec.Code != http.StatusOK {
		t.Fatalf("original: %d", rec.Code)
	}
	if got := e.Get(r.ID); len(got.Votes) != 1 || got.Votes[0].Approver.PlatformUser != "UALICE" {
		t.Fatalf("votes: %+v", got.Votes)
	}
}

// The workspace check is exact: a team id in other case, a missing team,
// and a user.team_id differing only in case are all refused.
func TestAttackTenantExactness(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	for name, body := range map[string]string{
		"team lower case": blockActions(strings.ToLower(testTeam), "UALICE", "C1", ActionApprove, r.ID),
		"team missing": rewritePayload(t, blockActions(testTeam, "UALICE", "C1", ActionApprove, r.ID), func(p map[string]any) {
			delete(p, "team")
		}),
		"team padded": blockActions(testTeam+" ", "UALICE", "C1", ActionApprove, r.ID),
	} {
		if rec := e.postSigned(InteractionsPath, body); rec.Code != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, rec.Code)
		}
	}
	// Payload team right, the clicker's own team the same letters in
	// lower case: another organisation.
	body := withUserTeam(t, blockActions(testTeam, "UALICE", "C1", ActionApprove, r.ID), strings.ToLower(testTeam))
	if rec := e.postSigned(InteractionsPath, body); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if text := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(text, "other organisations") {
		t.Errorf("reply: %q", text)
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Fatalf("votes: %+v", got.Votes)
	}
}

// Enterprise Grid: with enterprise_id configured, a callback of the right
// team without the enterprise, or with it in other case, is refused.
func TestAttackEnterpriseExactness(t *testing.T) {
	e := newEnv(t)
	e.bot.opts.EnterpriseID = "E0ORG"
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	for name, ent := range map[string]any{"none": nil, "lower": map[string]any{"id": "e0org"}, "other": map[string]any{"id": "E0EVIL"}} {
		body := rewritePayload(t, blockActions(testTeam, "UALICE", "C1", ActionApprove, r.ID), func(p map[string]any) { p["enterprise"] = ent })
		if rec := e.postSigned(InteractionsPath, body); rec.Code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, rec.Code)
		}
	}
	// A member reported under the org counts.
	body := rewritePayload(t, blockActions(testTeam, "UALICE", "C1", ActionApprove, r.ID), func(p map[string]any) {
		p["enterprise"] = map[string]any{"id": "E0ORG"}
		p["user"].(map[string]any)["team_id"] = "E0ORG"
	})
	if rec := e.postSigned(InteractionsPath, body); rec.Code != http.StatusOK {
		t.Fatalf("member: %d", rec.Code)
	}
	if got := e.Get(r.ID); len(got.Votes) != 1 {
		t.Fatalf("votes: %+v", got.Votes)
	}
}

// The vote counts only for user.id: other ids in the payload (the
// message's author, the user name, the container) name other people.
func TestAttackVoteCountsOnlyForUserID(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	body := rewritePayload(t, blockActions(testTeam, "UMALLORY", "C1", ActionApprove, r.ID), func(p map[string]any) {
		u := p["user"].(map[string]any)
		u["username"], u["name"] = "ualice", "ualice"
		p["message"].(map[string]any)["user"] = "UALICE"
		p["container"].(map[string]any)["user_id"] = "UALICE"
		p["view"] = map[string]any{"user": "UALICE"}
	})
	e.postSigned(InteractionsPath, body)
	msg := e.slack.NextEphemeral(t)
	if msg.Form.Get("user") != "UMALLORY" || !strings.Contains(msg.Form.Get("text"), "link-UMALLORY") {
		t.Errorf("reply: %v", msg.Form)
	}
	for _, a := range e.links.askedAbout() {
		if a.UserID != "UMALLORY" {
			t.Errorf("resolver asked about %+v", a)
		}
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Fatalf("votes: %+v", got.Votes)
	}
	// Two actions in one callback: only the first is acted on.
	body = rewritePayload(t, blockActions(testTeam, "UALICE", "C1", ActionDeny, r.ID), func(p map[string]any) {
		acts := p["actions"].([]any)
		second := map[string]any{}
		for k, v := range acts[0].(map[string]any) {
			second[k] = v
		}
		second["action_id"] = ActionApprove
		p["actions"] = append(acts, second)
	})
	e.postSigned(InteractionsPath, body)
	e.slack.NextEphemeral(t)
	if got := e.Get(r.ID); len(got.Votes) != 1 || got.Votes[0].Decision != storage.DecisionDeny {
		t.Fatalf("votes: %+v", got.Votes)
	}
}

// A reason dialog's submission cannot skip what a click would have met:
// a step-up action's vote is refused by approvals even when the
// submission names it directly (no click opened any dialog for it), and
// the vote is the submitter's own.
func TestAttackDialogSubmissionCannotSkipStepUp(t *testing.T) {
	e := newEnv(t)
	r := e.Create("break-glass", nil, "")
	e.links.link("UALICE", identity("alice", "sre"))
	meta, _ := json.Marshal(reasonMetadata{RequestID: r.ID, Decision: string(storage.DecisionApprove), Channel: "C3"})
	e.postSigned(InteractionsPath, viewSubmission(testTeam, "UALICE", string(meta), "because"))
	if text := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(text, "Not counted") {
		t.Errorf("reply: %q", text)
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Fatalf("a dialog submission skipped step-up: %+v", got.Votes)
	}
	// A decision other than approve/deny in the metadata is ignored.
	meta, _ = json.Marshal(reasonMetadata{RequestID: r.ID, Decision: "Approve", Channel: "C3"})
	e.postSigned(InteractionsPath, viewSubmission(testTeam, "UALICE", string(meta), "because"))
	e.slack.NoEphemeral(t)
	// Whitespace-only reason on a deny that requires one: refused.
	rs := e.Create("restart", nil, "")
	meta, _ = json.Marshal(reasonMetadata{RequestID: rs.ID, Decision: string(storage.DecisionDeny), Channel: "C2"})
	e.postSigned(InteractionsPath, viewSubmission(testTeam, "UALICE", string(meta), " \n\t "))
	if text := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(text, "reason is required") {
		t.Errorf("blank reason reply: %q", text)
	}
	if got := e.Get(rs.ID); len(got.Votes) != 0 {
		t.Fatalf("blank reason counted: %+v", got.Votes)
	}
}

// Slash commands act for the invoking user only, whatever the text names.
func TestAttackCommandsActOnlyForTheCaller(t *testing.T) {
	e := newEnv(t)
	e.links.link("UBOB", identity("bob", "sre"))
	for _, text := range []string{"link UBOB", "link <@UBOB>", "whoami UBOB", "whoami <@UBOB|bob>", "pending <@UBOB>", "LINK", "  whoami  "} {
		e.postSigned(CommandsPath, command("UALICE", text))
		msg := e.slack.NextEphemeral(t)
		if msg.Form.Get("user") != "UALICE" || strings.Contains(msg.Form.Get("text"), "bob") || strings.Contains(msg.Form.Get("text"), "link-UBOB") {
			t.Errorf("%q: reply %v", text, msg.Form)
		}
	}
	for _, a := range e.links.askedAbout() {
		if a.UserID != "UALICE" {
			t.Errorf("resolver asked about %+v", a)
		}
	}
	// A command without a user does nothing.
	body := strings.Replace(command("UALICE", "link"), "user_id=UALICE", "user_id=", 1)
	rec := e.postSigned(CommandsPath, body)
	if !strings.Contains(rec.Body.String(), "needs a Slack user") {
		t.Errorf("userless command: %d %s", rec.Code, rec.Body)
	}
	// A command from another workspace: 403.
	body = strings.Replace(command("UALICE", "link"), "team_id="+testTeam, "team_id=T0EVIL", 1)
	if rec := e.postSigned(CommandsPath, body); rec.Code != http.StatusForbidden {
		t.Errorf("foreign workspace command: %d", rec.Code)
	}
}

// TestAttackResponseURLHostCheck: response_url is called only on Slack's hook host, over https.
func TestAttackResponseURLHostCheck(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://hooks.slack.com/actions/T0TEAM/1/abc":  true,
		"http://hooks.slack.com/actions/T0TEAM/1/abc":   false,
		"https://hooks.slack.com.evil.com/actions":      false,
		"https://evil.com/?u=https://hooks.slack.com/":  false,
		"https://hooks.slack.com@evil.com/actions":      false,
		"https://evil.com#@hooks.slack.com":             false,
		"https://hooks.slack.com:8443/actions":          false,
		"https://HOOKS.SLACK.COM/actions":               false,
		"https://evil.com\\@hooks.slack.com/":           false,
		"//hooks.slack.com/actions":                     false,
		"https://hooks.slack.com%2eevil.com/":           false,
		"https://xn--hooks-slack.com/":                  false,
		"https://hooks.slack.com./actions":              false,
		"javascript://hooks.slack.com/%0aalert(1)":      false,
		"https://[::1]/x":                               false,
		"https://hooks.slack.com\x00.evil.com/actions":  false,
		"https://evil.com/hooks.slack.com/actions/T/1/": false,
	} {
		if got := isSlackResponseURL(raw); got != want {
			t.Errorf("isSlackResponseURL(%q) = %v, want %v", raw, got, want)
		}
	}
}

// responseSink records what reaches a response_url.
type responseSink struct {
	mu    sync.Mutex
	auth  []string
	texts []string
}

func (s *responseSink) handler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.texts = append(s.texts, string(body))
	s.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

func (s *responseSink) got() ([]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...), append([]string(nil), s.texts...)
}

// The fallback reply through a response_url never carries the bot token.
func TestAttackResponseURLGetsNoToken(t *testing.T) {
	e := newEnv(t)
	sink := &responseSink{}
	srv := httptest.NewServer(http.HandlerFunc(sink.handler))
	defer srv.Close()
	e.bot.responseURLAllowed = func(u string) bool { return strings.HasPrefix(u, srv.URL) }
	r := e.Create("deploy-prod", deployParams(), "")
	e.slack.Fail("chat.postEphemeral", slackError("channel_not_found"))
	body := rewritePayload(t, blockActions(testTeam, "UNEW", "C1", ActionApprove, r.ID), func(p map[string]any) {
		p["response_url"] = srv.URL + "/actions/T0TEAM/1/abc"
	})
	e.postSigned(InteractionsPath, body)
	auth, texts := sink.got()
	if len(texts) != 1 {
		t.Fatalf("%d response_url calls", len(texts))
	}
	if auth[0] != "" || strings.Contains(texts[0], "xoxb") {
		t.Errorf("response_url call carried credentials: auth %q body %q", auth[0], texts[0])
	}
}

// TestAttackResponseURLRedirectStaysOnTheHost: isSlackResponseURL
// promises "a reply is never sent elsewhere", so the reply is posted with a
// client that follows no redirect: a 307 from the response_url host must
// not carry the private reply (here: a personal sign-in link) to another.
func TestAttackResponseURLRedirectStaysOnTheHost(t *testing.T) {
	e := newEnv(t)
	elsewhere := &responseSink{}
	other := httptest.NewServer(http.HandlerFunc(elsewhere.handler))
	defer other.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/collect", http.StatusTemporaryRedirect)
	}))
	defer hook.Close()
	// Stand-in for the allow-list: only the hook host is accepted.
	e.bot.responseURLAllowed = func(u string) bool { return strings.HasPrefix(u, hook.URL+"/") }
	r := e.Create("deploy-prod", deployParams(), "")
	e.slack.Fail("chat.postEphemeral", slackError("channel_not_found"))
	body := rewritePayload(t, blockActions(testTeam, "UNEW", "C1", ActionApprove, r.ID), func(p map[string]any) {
		p["response_url"] = hook.URL + "/actions/T0TEAM/1/abc"
	})
	e.postSigned(InteractionsPath, body)
	if _, texts := elsewhere.got(); len(texts) != 0 {
		t.Errorf("the private reply followed a redirect off the response_url host: %q", texts[0])
	}
}

// Mentions and links through approver names, vote reasons and requester
// names stay inert on the card, in the counted reply, in whoami and in
// pending.
func TestAttackMentionInjectionThroughNames(t *testing.T) {
	e := newEnv(t)
	const evil = "<!channel> <@U0BOSS> <https://evil.example|https://good.example> <!subteam^S1|@sre> &lt;!here&gt;"
	req := storage.Requester{Issuer: "github", Subject: "repo:acme/api:ref:refs/heads/main", Person: "octocat", Name: evil,
		Claims: map[string]string{"repository": "acme/api", "actor": "octocat"}}
	r, _, err := e.svc.Create(context.Background(), approvals.CreateInput{Requester: req, Action: "deploy-prod", Params: deployParams(), Reason: evil})
	if err != nil {
		t.Fatal(err)
	}
	e.Deliver()
	approver := identity("alice", "sre")
	approver.Email, approver.Name = "", evil
	e.links.link("UALICE", approver)
	e.click("UALICE", r.ID, ActionApprove, "C1")
	reply := e.slack.NextEphemeral(t).Form.Get("text")
	e.Deliver()
	updates := e.slack.OK("chat.update")
	if len(updates) == 0 {
		t.Fatal("no card update")
	}
	card := renderedStrings(t, updates[len(updates)-1])
	if err := e.svc.SaveLink(context.Background(), storage.IdentityLink{
		Platform: "slack", Workspace: testTeam, PlatformUser: "UCAROL", Issuer: idpIssuer, Subject: evil, Email: evil + "@x",
		Groups: []string{evil}, LinkedAt: t0, VerifiedAt: t0, Stale: true, StaleReason: evil,
	}, ""); err != nil {
		t.Fatal(err)
	}
	e.postSigned(CommandsPath, command("UCAROL", "whoami"))
	whoami := e.slack.NextEphemeral(t).Form.Get("text")
	e.links.link("UBOB", identity("bob", "sre"))
	e.postSigned(CommandsPath, command("UBOB", "pending"))
	pending := e.slack.NextEphemeral(t).Form.Get("text")
	for name, s := range map[string]string{"card": card, "reply": reply, "whoami": whoami, "pending": pending} {
		for _, bad := range []string{"<!channel>", "<@U0BOSS>", "<https://evil", "<!subteam", "<!here>"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s renders %q live:\n%s", name, bad, s)
			}
		}
	}
}

// capture counts log records at Warn and above.
type capture struct{ n *atomic.Int64 }

func (c capture) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (c capture) Handle(context.Context, slog.Record) error    { c.n.Add(1); return nil }
func (c capture) WithAttrs([]slog.Attr) slog.Handler           { return c }
func (c capture) WithGroup(string) slog.Handler                { return c }
func (c capture) count() int64                                 { return c.n.Load() }
func newCapture() capture                                      { return capture{n: &atomic.Int64{}} }
func (e *env) botWithLogger(l *slog.Logger, mux *http.ServeMux) *Bot {
	return startBot(e.t, Options{
		Service: e.svc, Resolver: e.links, BotToken: "xoxb-test", SigningSecret: testSecret, TeamID: testTeam,
		APIURL: e.slack.URL(), PublicURL: "https://signoff.example.com", Clock: e.clock, Logger: l,
		Clicks: chatlimit.New(30, e.clock),
	}, mux)
}

// A flood of forged (unsigned) callbacks is sampled in the audit log and in
// the operational log alike: an unauthenticated client cannot grow either
// a line per request.
func TestAttackForgedFloodLogIsBounded(t *testing.T) {
	e := newEnv(t)
	logs := newCapture()
	mux := http.NewServeMux()
	b := e.botWithLogger(slog.New(logs), mux)
	const flood = 500
	for i := range flood {
		body := blockActions(testTeam, "UALICE", "C1", ActionApprove, fmt.Sprint("req_", i))
		req := httptest.NewRequest(http.MethodPost, InteractionsPath, strings.NewReader(body))
		req.Header = sign("guess", e.clock.Now().Unix(), body)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("forged %d: %d", i, rec.Code)
		}
	}
	b.work.Wait()
	recs := e.RecordsOf(audit.TypeCallbackRejected)
	if len(recs) > approvals.CallbackRejectedPerMinute+1 {
		t.Errorf("audit not sampled: %d records", len(recs))
	}
	if n := logs.count(); n > int64(2*approvals.CallbackRejectedPerMinute) {
		t.Errorf("%d forged callbacks wrote %d warning log lines (audit kept %d records): the log is not sampled like the audit", flood, n, len(recs))
	}
}

// A flood of validly signed clicks from many unlinked accounts: every
// click costs a reply, but the audit grows by the sample only.
func TestAttackUnlinkedFloodAuditIsSampled(t *testing.T) {
	e := newEnv(t)
	e.bot.opts.Clicks = chatlimit.New(30, e.clock)
	r := e.Create("deploy-prod", deployParams(), "")
	before := len(e.Records())
	for i := range 200 {
		e.click(fmt.Sprintf("UFLOOD%03d", i), r.ID, ActionApprove, "C1")
	}
	for i := range 50 {
		e.click("UFLOOD000", fmt.Sprint("req_unknown_", i), ActionDeny, "C1")
	}
	if grown := len(e.Records()) - before; grown > 2*approvals.CallbackRejectedPerMinute {
		t.Errorf("audit grew by %d records for 250 unlinked clicks", grown)
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Fatalf("votes: %+v", got.Votes)
	}
}

// Socket Mode: a redelivered envelope is acted on once; envelopes of odd
// types or with data of the wrong shape are acknowledged and do nothing;
// a view_submission from another workspace over the socket is refused.
func TestAttackSocketModeOddEnvelopes(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	ack := &recordingAcker{}
	evt := interactiveEvent(testTeam, "UALICE", "C1", ActionApprove, r.ID, "env-1")
	for range 3 {
		e.bot.handleSocketEvent(&evt, ack)
	}
	// Pointer data, slash command data under the interactive type,
	// interactive data under the events type.
	cb := evt.Data.(slack.InteractionCallback)
	odd := []socketmode.Event{
		{Type: socketmode.EventTypeInteractive, Data: &cb, Request: &socketmode.Request{EnvelopeID: "env-2"}},
		{Type: socketmode.EventTypeInteractive, Data: slack.SlashCommand{TeamID: testTeam, UserID: "UALICE", Text: "link"}, Request: &socketmode.Request{EnvelopeID: "env-3"}},
		{Type: socketmode.EventTypeEventsAPI, Data: cb, Request: &socketmode.Request{EnvelopeID: "env-4"}},
		{Type: "disconnect", Data: cb, Request: &socketmode.Request{EnvelopeID: "env-5"}},
	}
	for i := range odd {
		e.bot.handleSocketEvent(&odd[i], ack)
	}
	// A view_submission over the socket from another workspace.
	meta, _ := json.Marshal(reasonMetadata{RequestID: r.ID, Decision: "deny", Channel: "C1"})
	vs := socketmode.Event{Type: socketmode.EventTypeInteractive, Data: slack.InteractionCallback{
		Type: slack.InteractionTypeViewSubmission, Team: slack.Team{ID: "T0EVIL"}, User: slack.User{ID: "UALICE", TeamID: testTeam},
		View: slack.View{CallbackID: ReasonCallbackID, PrivateMetadata: string(meta)},
	}, Request: &socketmode.Request{EnvelopeID: "env-6"}}
	e.bot.handleSocketEvent(&vs, ack)
	e.bot.work.Wait()
	if n := len(ack.acks); n != 3+len(odd)+1 {
		t.Errorf("%d acks", n)
	}
	got := e.Get(r.ID)
	if len(got.Votes) != 1 || got.Votes[0].Decision != storage.DecisionApprove {
		t.Fatalf("votes: %+v", got.Votes)
	}
	e.slack.NextEphemeral(t)
	e.slack.NoEphemeral(t)
	if recs := e.RecordsOf(audit.TypeCallbackRejected); len(recs) != 1 || recs[0].Data["reason"] != "wrong_workspace" {
		t.Errorf("callback.rejected: %+v", recs)
	}
}
