package teamsbot

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// fuzzEnv is newEnv for a fuzz target: built once (it takes a testing.TB),
// logging only panics, its HTTP client confined to the stand-in.
type fuzzEnv struct {
	*chattest.Fuzz
	bot   *Bot
	bf    *teamstest.Server
	links *chattest.Links
	mux   *http.ServeMux

	mu     sync.Mutex
	tokens map[string]string // serviceUrl → Authorization header
}

func newFuzzEnv(tb testing.TB) *fuzzEnv {
	tb.Helper()
	e := &fuzzEnv{Fuzz: chattest.NewFuzz(tb, testPolicy(), Platform), links: chattest.NewLinks(), mux: http.NewServeMux(), tokens: map[string]string{}}
	e.bf = teamstest.NewServer(teamstest.Options{Now: e.Clock.Now})
	tb.Cleanup(e.bf.Close)
	u, _ := url.Parse(e.bf.URL)
	e.bot = startBot(tb, Options{
		Service: e.Svc, Resolver: e.links,
		AppID: e.bf.AppID(), AppPassword: e.bf.AppPassword(), TenantIDs: []string{e.bf.TenantID()},
		OpenIDMetadataURL: e.bf.OpenIDMetadataURL(), TokenURL: e.bf.TokenURL(),
		PublicURL: "https://signoff.example.com", Clock: e.Clock, Logger: e.Logger,
		HTTPClient:      chattest.OnlyHost(u.Host),
		ServiceURLHosts: []string{e.bf.ServiceHost(), "smba.other.example"},
	}, e.mux)
	return e
}

// authorization returns the header the Bot Connector would send with an
// activity from serviceURL (cached: signing is the slow part).
func (e *fuzzEnv) authorization(serviceURL string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if h, ok := e.tokens[serviceURL]; ok {
		return h
	}
	if len(e.tokens) >= 512 {
		clear(e.tokens)
	}
	h := "Bearer " + e.bf.Sign(e.bf.TokenClaims(serviceURL), "")
	e.tokens[serviceURL] = h
	return h
}

// post sends body to the messaging endpoint with auth and waits for the
// work it started.
func (e *fuzzEnv) post(body []byte, auth string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, MessagesPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", auth)
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	e.bot.work.Wait()
	return rec
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzActivity sends arbitrary bodies to POST /teams/messages, each with a
// valid Bot Framework token whose serviceurl claim is the serviceUrl the
// bot will read from the body (decoded as the handler decodes it), so the
// input reaches past the token check. Whatever the activity, the answer is
// never a 5xx nor a panic (in the handler or in the work it starts), an
// answer with a body is JSON, an invoke answer never reports a 5xx either,
// and the audit log the activities write keeps verifying.
func FuzzActivity(f *testing.F) {
	e := newFuzzEnv(f)
	ops := opsPlace
	ops.ServiceURL = e.bf.ServiceURL()
	admin := teamstest.NewUser("admin")
	alice, bob, carol, eve := teamstest.NewUser("alice"), teamstest.NewUser("bob"), teamstest.NewUser("carol"), teamstest.NewUser("eve")
	for _, u := range []teamstest.User{alice, bob} {
		e.links.Link(platformUser(e, u), identity(u.Name, "sre"))
	}
	e.links.Link(platformUser(e, eve), identity("eve", "dev"))
	if rec := e.post(mustJSON(f, e.bf.Installed(ops, admin)), e.authorization(e.bf.ServiceURL())); rec.Code != http.StatusOK {
		f.Fatalf("installation answered %d: %s", rec.Code, rec.Body)
	}
	deploy, restart, glass := e.Create(f, "deploy-prod", deployParams(), "fuzz"), e.Create(f, "restart", nil, "fuzz"), e.Create(f, "break-glass", nil, "fuzz")
	e.CheckAudit(f)

	vote := func(id, verb string) map[string]any {
		return map[string]any{"signoff": voteKind, "requestId": id, "decision": verb}
	}
	personal := teamstest.Place{Conversation: "a:1personal-carol", Type: "personal", ServiceURL: e.bf.ServiceURL()}
	foreign := ops
	foreign.TenantID = "0b0b0b0b-0000-4000-8000-000000000bad"
	seeds := []map[string]any{
		e.bf.Installed(ops, admin),
		e.bf.BotAdded(teamstest.Place{Conversation: "19:general-sec@thread.tacv2", TeamID: "19:general-sec@thread.tacv2", TeamName: "Security"}, admin),
		e.bf.ChannelCreated(teamstest.Place{Conversation: "19:incidents@thread.tacv2", TeamID: teamOps, TeamName: "Ops", ChannelName: "incidents", ServiceURL: "https://smba.other.example/emea/"}, admin),
		e.bf.BotAdded(foreign, admin),
		e.bf.Invoke(teamstest.Click{Place: ops, User: alice, ReplyToID: "1772366400001", Verb: VerbApprove, Data: vote(deploy.ID, VerbApprove)}),
		e.bf.Invoke(teamstest.Click{Place: ops, User: bob, Verb: VerbDeny, Data: vote(restart.ID, VerbDeny)}),
		e.bf.Invoke(teamstest.Click{Place: ops, User: bob, Verb: VerbDeny, Data: map[string]any{"signoff": voteKind, "requestId": restart.ID, "decision": VerbDeny, commentInputID: "  host is healthy  "}}),
		e.bf.Invoke(teamstest.Click{Place: ops, User: alice, Verb: VerbApprove, Data: vote(glass.ID, VerbApprove)}),
		e.bf.Invoke(teamstest.Click{Place: ops, User: carol, Verb: VerbApprove, Data: vote(deploy.ID, VerbApprove)}),
		e.bf.Invoke(teamstest.Click{Place: ops, User: eve, Verb: VerbApprove, Data: vote(deploy.ID, VerbApprove)}),
		e.bf.Invoke(teamstest.Click{Place: ops, User: alice, Verb: VerbApprove, Data: vote("req_doesnotexist", VerbApprove)}),
		e.bf.Invoke(teamstest.Click{Place: ops, User: alice, Verb: "approve", Data: map[string]any{"foo": "bar"}}),
		e.bf.Invoke(teamstest.Click{Place: ops, User: alice, Verb: "delete", Data: vote("req_x", "delete")}),
		e.bf.Invoke(teamstest.Click{Place: ops, User: teamstest.User{ID: "29:guest"}, Verb: "approve", Data: vote(deploy.ID, VerbApprove)}),
		e.bf.SubmitMessage(teamstest.Click{Place: ops, User: alice, ReplyToID: "1772366400001", Data: vote(deploy.ID, VerbApprove)}),
		e.bf.SubmitMessage(teamstest.Click{Place: personal, User: carol, Data: vote(deploy.ID, VerbDeny)}),
		func() map[string]any {
			m := e.bf.SubmitMessage(teamstest.Click{Place: ops, User: alice})
			m["text"] = "hello bot"
			delete(m, "value")
			return m
		}(),
		func() map[string]any {
			m := e.bf.Invoke(teamstest.Click{Place: ops, User: alice, Verb: VerbApprove, Data: vote(deploy.ID, VerbApprove)})
			m["name"] = "composeExtension/query"
			return m
		}(),
		func() map[string]any {
			m := e.bf.Invoke(teamstest.Click{Place: ops, User: alice, Verb: VerbApprove, Data: vote(deploy.ID, VerbApprove)})
			m["timestamp"], m["value"], m["channelData"] = 1234, "not an object", []any{1, 2}
			return m
		}(),
		func() map[string]any {
			m := e.bf.Installed(ops, admin)
			m["channelId"] = "webchat"
			return m
		}(),
	}
	for _, s := range seeds {
		f.Add(mustJSON(f, s))
	}
	for _, raw := range []string{"", "null", "[]", `"x"`, "{}", `{"serviceUrl":""}`, `{"serviceUrl":1}`,
		`{"type":"invoke","serviceUrl":"` + e.bf.ServiceURL() + `","channelId":"msteams","channelData":{"tenant":{"id":"` + e.bf.TenantID() + `"}},"name":"adaptiveCard/action","value":{"action":{"type":"Action.Execute","verb":"approve","data":"x"}}}`,
		`{"type":"message","serviceUrl":"` + e.bf.ServiceURL() + `","SERVICEURL":"http://127.0.0.1:1/","channelId":"msteams","channelData":{"tenant":{"id":"` + strings.ToUpper(e.bf.TenantID()) + `"}},"value":{"signoff":"signoff.vote"}}`,
	} {
		f.Add([]byte(raw))
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		// The handler decodes the body into an activity; sign for the
		// serviceUrl it will see there (or the stand-in's when it sees
		// none), as the Bot Connector signs for the activity it sends.
		serviceURL := e.bf.ServiceURL()
		var act activity
		if json.Unmarshal(body, &act) == nil && act.ServiceURL != "" {
			serviceURL = act.ServiceURL
		}
		rec := e.post(body, e.authorization(serviceURL))
		if p := e.Panics(); len(p) > 0 {
			t.Fatalf("work started by the activity panicked: %q", p)
		}
		if rec.Code >= 500 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		e.CheckAudit(t)
		if rec.Code == http.StatusUnauthorized && json.Valid(body) && act.ServiceURL != "" && strings.Contains(rec.Body.String(), string(rejectServiceURL)) {
			t.Fatalf("the token signed for serviceUrl %q was not tied to the activity: %s", serviceURL, rec.Body)
		}
		if rec.Body.Len() == 0 {
			return
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("status %d with a body that is not JSON: %q", rec.Code, rec.Body)
		}
		var ir invokeResponse
		if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &ir) == nil && ir.StatusCode >= 500 {
			t.Fatalf("invoke answered with status %d: %s", ir.StatusCode, rec.Body)
		}
	})
}

// TestOversizedAADObjectIDKeepsAuditVerifiable: a click whose
// aadObjectId is hundreds of kilobytes (of invalid UTF-8, which decodes to
// three bytes a byte) is refused before anything is audited; it used to
// reach vote.rejected as the actor's platform_user and write a record
// longer than audit.MaxLineBytes, after which the audit log no longer
// verified.
func TestOversizedAADObjectIDKeepsAuditVerifiable(t *testing.T) {
	e := newFuzzEnv(t)
	r := e.Create(t, "deploy-prod", deployParams(), "")
	const marker = "OVERSIZED-AAD-OBJECT-ID"
	ops := opsPlace
	ops.ServiceURL = e.bf.ServiceURL()
	for _, id := range []string{strings.Repeat("\xff", 360_000), strings.Repeat("a", maxUserIDLen+1)} {
		act := e.bf.Invoke(teamstest.Click{Place: ops, User: teamstest.User{ID: "29:x", Name: "x", AADObjectID: marker}, Verb: VerbApprove, Data: map[string]any{"signoff": voteKind, "requestId": r.ID, "decision": VerbApprove}})
		body := bytes.Replace(mustJSON(t, act), []byte(marker), []byte(id), 1) // raw bytes: json.Marshal would escape them
		rec := e.post(body, e.authorization(e.bf.ServiceURL()))
		e.CheckAudit(t)
		var ir invokeResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &ir); err != nil || rec.Code != http.StatusOK || ir.StatusCode != http.StatusBadRequest {
			t.Fatalf("aadObjectId of %d bytes: %d %.300s", len(id), rec.Code, rec.Body)
		}
	}
	if got, err := e.Svc.Get(context.Background(), r.ID); err != nil || len(got.Votes) != 0 {
		t.Fatalf("votes %+v %v", got.Votes, err)
	}
}

func platformUser(e *fuzzEnv, u teamstest.User) linkflow.PlatformUser {
	return linkflow.PlatformUser{Platform: Platform, Workspace: e.bf.TenantID(), UserID: u.AADObjectID}
}

// FuzzActivityFields complements FuzzActivity, whose byte-level mutations
// mostly break the JSON: here the fuzzer picks the fields a click carries
// (type, invoke name, verb, button data, comment, clicker, activity and
// conversation ids) and the activity around them stays well formed and
// validly signed, so every input reaches the click handling. The same
// properties hold.
func FuzzActivityFields(f *testing.F) {
	e := newFuzzEnv(f)
	ops := opsPlace
	ops.ServiceURL = e.bf.ServiceURL()
	alice, bob, eve := teamstest.NewUser("alice"), teamstest.NewUser("bob"), teamstest.NewUser("eve")
	for _, u := range []teamstest.User{alice, bob} {
		e.links.Link(platformUser(e, u), identity(u.Name, "sre"))
	}
	e.links.Link(platformUser(e, eve), identity("eve", "dev"))
	ids := e.CreateEach(f, "deploy-prod", "restart", "break-glass", "lost")
	e.CheckAudit(f)

	// which picks the request (its low bits; past the requests, the
	// requestId argument as is), the clicker and the conversation type.
	f.Add("invoke", invokeAdaptiveCardAction, "Action.Execute", VerbApprove, voteKind, "", VerbApprove, "", "aad-alice", "f:1", chanOps, uint8(0))
	f.Add("invoke", invokeAdaptiveCardAction, "Action.Execute", VerbDeny, voteKind, "", VerbDeny, "  host is healthy  ", "aad-bob", "f:2", chanOps+";messageid=1772366400001", uint8(1))
	f.Add("invoke", invokeAdaptiveCardAction, "Action.Execute", VerbApprove, voteKind, "", "", "", "aad-alice", "f:3", "a:1personal", uint8(2|0x40))
	f.Add("invoke", invokeAdaptiveCardAction, "Action.Execute", VerbApprove, voteKind, "", "", "", "aad-eve", "", chanOps, uint8(0))
	f.Add("invoke", invokeAdaptiveCardAction, "Action.Submit", "approve", voteKind, "req_nope", "", "", "aad-carol", "f:4", chanOps, uint8(4))
	f.Add("invoke", "adaptiveCard/action ", "Action.Execute", "delete", "signoff.vot", " "+strings.Repeat("r", 300), "deny", strings.Repeat("why? ", 900), "", "f:5", "", uint8(4))
	f.Add("message", "", "", "", voteKind, "", VerbApprove, "", "aad-alice", "f:6", chanOps, uint8(0))
	f.Add("message", "", "", "", voteKind, "", VerbDeny, "\xff", "aad-nobody", "f:7", "a:1personal", uint8(1|0x40))
	f.Add("message", "", "", "", voteKind, "", "", "", "aad-alice", "", "", uint8(3|0x80))
	f.Add("conversationUpdate", "", "", "", "", "", "", "", "aad-admin", "f:8", "19:new@thread.tacv2", uint8(0))

	f.Fuzz(func(t *testing.T, typ, name, actionType, verb, kind, requestID, decision, comment, user, activityID, conversation string, which uint8) {
		if n := int(which & 7); n < len(ids) {
			requestID = ids[n]
		}
		convType := "channel"
		if which&0x40 != 0 {
			convType = "personal"
		}
		data := map[string]any{"signoff": kind, "requestId": requestID, "decision": decision}
		if comment != "" {
			data[commentInputID] = comment
		}
		if which&0x80 != 0 {
			data["extra"] = map[string]any{"nested": []any{1, "x", nil}}
		}
		act := map[string]any{
			"type": typ, "id": activityID, "serviceUrl": e.bf.ServiceURL(), "channelId": "msteams",
			"timestamp":    "2026-03-01T12:00:00.0000000Z",
			"from":         map[string]any{"id": "29:1" + user, "name": user, "aadObjectId": user},
			"conversation": map[string]any{"conversationType": convType, "tenantId": e.bf.TenantID(), "id": conversation, "isGroup": convType != "personal"},
			"recipient":    map[string]any{"id": "28:" + e.bf.AppID(), "name": "signoff"},
			"channelData":  map[string]any{"tenant": map[string]any{"id": e.bf.TenantID()}, "channel": map[string]any{"id": conversation}},
			"replyToId":    "1772366400001",
		}
		if typ == "invoke" {
			act["name"] = name
			act["value"] = map[string]any{"action": map[string]any{"type": actionType, "verb": verb, "data": data}, "trigger": "manual"}
		} else {
			act["value"] = data
		}
		body := mustJSON(t, act)
		rec := e.post(body, e.authorization(e.bf.ServiceURL()))
		if p := e.Panics(); len(p) > 0 {
			t.Fatalf("work started by the activity panicked: %q", p)
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("a well-formed, signed activity answered %d: %s", rec.Code, rec.Body)
		}
		e.CheckAudit(t)
		if rec.Body.Len() == 0 {
			return
		}
		var ir invokeResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &ir); err != nil || ir.StatusCode >= 500 || ir.Type == "" {
			t.Fatalf("invoke answer: %q", rec.Body)
		}
	})
}

// unescapeMarkdown undoes escapeMarkdown: a backslash escapes the rune
// after it, and the zero-width space after "]", "<", "&" and "{" goes.
func unescapeMarkdown(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r == '\\' && i+1 < len(rs) {
			i++
			r = rs[i]
		}
		b.WriteRune(r)
		if strings.ContainsRune("]<&{", r) && i+1 < len(rs) && rs[i+1] == '\u200b' {
			i++
		}
	}
	return b.String()
}

// checkInertMarkdown checks escapeMarkdown's contract on its output out:
// every inline syntax character is backslash-escaped, "]", "<", "&" and
// "{" are each followed by a zero-width space, and no line starts a
// heading, a bullet list, a thematic break or an ordered list.
func checkInertMarkdown(t *testing.T, in, out string) {
	t.Helper()
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		escaped := false
		if r == '\\' {
			if i+1 == len(rs) {
				t.Fatalf("escapeMarkdown(%q) = %q ends with a lone backslash", in, out)
			}
			i++
			r, escaped = rs[i], true
		}
		if !escaped && strings.ContainsRune("\\`*_~[]()<>", r) {
			t.Fatalf("escapeMarkdown(%q) = %q leaves %q unescaped at rune %d", in, out, r, i)
		}
		if strings.ContainsRune("]<&{", r) && (i+1 == len(rs) || rs[i+1] != '\u200b') {
			t.Fatalf("escapeMarkdown(%q) = %q: no zero-width space after %q at rune %d", in, out, r, i)
		}
	}
	for _, bad := range []string{"](", "<at", "<AT", "<http", "{{", "**", "&lt", "&#"} {
		if strings.Contains(out, bad) {
			t.Fatalf("escapeMarkdown(%q) = %q contains %q", in, out, bad)
		}
	}
	for _, line := range strings.FieldsFunc(out, func(r rune) bool { return r == '\n' || r == '\r' }) {
		l := strings.TrimLeft(line, " \t")
		rest := func(n int) string { return l[n:] }
		switch {
		case strings.HasPrefix(l, "#"):
			t.Fatalf("escapeMarkdown(%q) = %q: line %q starts a heading", in, out, line)
		case (strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+")) && (rest(1) == "" || strings.ContainsRune(" \t", rune(rest(1)[0])) || rest(1)[0] == l[0]):
			t.Fatalf("escapeMarkdown(%q) = %q: line %q starts a list or a rule", in, out, line)
		}
		digits := len(l) - len(strings.TrimLeft(l, "0123456789"))
		if digits > 0 && strings.HasPrefix(l[digits:], ".") && (len(l) == digits+1 || strings.ContainsRune(" \t", rune(l[digits+1]))) {
			t.Fatalf("escapeMarkdown(%q) = %q: line %q starts an ordered list", in, out, line)
		}
	}
}

// FuzzMarkdownEscape: for any text, escapeMarkdown's output is inert
// (checkInertMarkdown), valid UTF-8, and unescapes back to the text (with
// each invalid byte read as U+FFFD, as the card's JSON would carry it).
// The same text as a requester's reason, parameter, name or subject, or an
// approver's vote reason, renders a card whose markdown fields are inert
// too.
func FuzzMarkdownEscape(f *testing.F) {
	for _, s := range []string{
		"plain text", "1.4.2", "[click](https://evil)", "<at>everyone</at>", "**bold** _it_ `code` ~x~", "<https://evil>",
		"&lt;at&gt;", "{{DATE(2026-01-01T00:00Z)}}", "# heading", "PR #42", "- item\n+ item\n1. item", "---", "--force", "a-b",
		"[x]: https://evil", `\[`, "\\", "evil]\u200b(x)", "&#x5b;", "  12. x\r\n\t- y\r+\n", "\xff[\xfe](", "1.", "\n\n#", "]]((<<",
		"[click](https://evil) <at>everyone</at> **bold**\n# heading",
	} {
		f.Add(s)
	}
	t1 := t0.Add(time.Hour)
	deployProd := testPolicy().Actions["deploy-prod"]
	f.Fuzz(func(t *testing.T, s string) {
		out := escapeMarkdown(s)
		if !utf8.ValidString(out) {
			t.Fatalf("escapeMarkdown(%q) = %q is not valid UTF-8", s, out)
		}
		checkInertMarkdown(t, s, out)
		if back, want := unescapeMarkdown(out), string([]rune(s)); back != want {
			t.Fatalf("escapeMarkdown(%q) = %q unescapes to %q", s, out, back)
		}

		r := storage.Request{
			ID: "req_fuzz", Action: "deploy-prod", Reason: s, State: storage.StateApproved, MinApprovals: 1,
			Params:    map[string]string{"service": s, s: "v"},
			Requester: storage.Requester{Issuer: s, Subject: s, Name: s},
			Links:     []storage.Link{{Title: s, URL: "https://ci.example/run/1"}},
			Votes:     []storage.Vote{{Decision: storage.DecisionApprove, Reason: s, Time: t0, Approver: storage.Approver{Name: s, Subject: "sub"}}},
			Execution: &storage.Execution{Status: storage.ExecutionFailed, Attempts: 2, LastError: s},
			CreatedAt: t0, ExpiresAt: t1, DecidedAt: t0,
		}
		card := renderCard(cardInput{Request: r, Action: deployProd, RequestURL: "https://signoff.example.com/v1/requests/req_fuzz"})
		raw, err := json.Marshal(card)
		if err != nil {
			t.Fatalf("card does not encode: %v", err)
		}
		if len(raw) > 28_000 {
			t.Fatalf("card is %d bytes", len(raw))
		}
		for _, text := range markdownTexts(card) {
			for _, bad := range []string{"](", "<at", "<AT", "<http", "{{", "**", "\n#"} {
				if strings.Contains(text, bad) {
					t.Fatalf("card markdown %q contains %q (input %q)", text, bad, s)
				}
			}
		}
	})
}
