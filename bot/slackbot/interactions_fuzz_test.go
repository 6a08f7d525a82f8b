package slackbot

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/slack-go/slack/slacktest"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/storage"
)

// fuzzSlackEnv is newEnv for a fuzz target: built once (it takes a
// testing.TB), with a Slack stand-in that answers every call signoff makes
// with success and records nothing, so it stays small however long the
// target runs.
type fuzzSlackEnv struct {
	*chattest.Fuzz
	bot   *Bot
	links *linkTable
	mux   *http.ServeMux
}

func newFuzzSlackEnv(tb testing.TB) *fuzzSlackEnv {
	tb.Helper()
	e := &fuzzSlackEnv{Fuzz: chattest.NewFuzz(tb, testPolicy(), Platform), links: newLinkTable(), mux: http.NewServeMux()}
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		answer := func(v map[string]any) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(v)
			}
		}
		c.Handle("/chat.postMessage", answer(map[string]any{"ok": true, "channel": "C1", "ts": "1772366400.000001"}))
		c.Handle("/chat.update", answer(map[string]any{"ok": true, "channel": "C1", "ts": "1772366400.000001"}))
		c.Handle("/chat.delete", answer(map[string]any{"ok": true, "channel": "C1", "ts": "1772366400.000001"}))
		c.Handle("/chat.postEphemeral", answer(map[string]any{"ok": true, "message_ts": "1772366400.000002"}))
		c.Handle("/views.open", answer(map[string]any{"ok": true, "view": map[string]any{"id": "V1"}}))
	})
	srv.Start()
	tb.Cleanup(srv.Stop)
	api, err := url.Parse(srv.GetAPIURL())
	if err != nil {
		tb.Fatal(err)
	}
	e.bot = startBot(tb, Options{
		Service: e.Svc, Resolver: e.links, BotToken: "xoxb-test", SigningSecret: testSecret, TeamID: testTeam,
		APIURL: srv.GetAPIURL(), PublicURL: "https://signoff.example.com", Clock: e.Clock, Logger: e.Logger,
		HTTPClient: chattest.OnlyHost(api.Host),
	}, e.mux)
	return e
}

// postSigned signs body as Slack would, now, posts it to path and waits
// for the work it started.
func (e *fuzzSlackEnv) postSigned(path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header = sign(testSecret, e.Clock.Now().Unix(), body)
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	e.bot.work.Wait()
	return rec
}

// payloadOf returns the payload form value of a callback body.
func payloadOf(tb testing.TB, body string) string {
	tb.Helper()
	form, err := url.ParseQuery(body)
	if err != nil {
		tb.Fatal(err)
	}
	return form.Get("payload")
}

// FuzzInteractionPayload posts arbitrary payload= form values (or, with
// raw set, arbitrary bodies), correctly signed so they pass the signature
// gate, to POST /slack/interactions. Whatever the payload, the answer is
// never a 5xx nor a panic (in the handler or in the work it starts), it
// is 200, 400 bad_payload or 403 for another workspace, a refusal carries
// a JSON error, and the audit log the callbacks write keeps verifying.
func FuzzInteractionPayload(f *testing.F) {
	e := newFuzzSlackEnv(f)
	deploy, restart, glass := e.Create(f, "deploy-prod", deployParams(), "fuzz"), e.Create(f, "restart", nil, "fuzz"), e.Create(f, "break-glass", nil, "fuzz")
	e.links.link("UALICE", identity("alice", "sre"))
	e.links.link("UBOB", identity("bob", "sre"))
	e.links.link("UCAROL", identity("carol", "dev"))
	e.links.link("UOCTO", identity("octocat", "sre"))
	e.links.link("USTALE", identity("stale", "sre"))
	e.links.markStale("USTALE")
	e.CheckAudit(f)

	meta := func(id, decision, channel string) string {
		b, _ := json.Marshal(reasonMetadata{RequestID: id, Decision: decision, Channel: channel})
		return string(b)
	}
	for _, body := range []string{
		blockActions(testTeam, "UALICE", "C1", ActionApprove, deploy.ID),
		blockActions(testTeam, "UBOB", "C1", ActionDeny, deploy.ID),
		blockActions(testTeam, "UALICE", "C2", ActionDeny, restart.ID),
		blockActions(testTeam, "UALICE", "C3", ActionApprove, glass.ID),
		blockActions(testTeam, "UNOBODY", "C1", ActionApprove, deploy.ID),
		blockActions(testTeam, "USTALE", "C1", ActionApprove, deploy.ID),
		blockActions(testTeam, "UCAROL", "C1", ActionApprove, deploy.ID),
		blockActions(testTeam, "UOCTO", "C1", ActionApprove, deploy.ID),
		blockActions(testTeam, "UALICE", "C1", ActionApprove, "req_nope"),
		blockActions(testTeam, "UALICE", "", ActionApprove, deploy.ID),
		blockActions(testTeam, "UALICE", "C1", "something_else", deploy.ID),
		blockActions("T0OTHER", "UALICE", "C1", ActionApprove, deploy.ID),
		viewSubmission(testTeam, "UALICE", meta(restart.ID, "deny", "C2"), "disk full <!channel>"),
		viewSubmission(testTeam, "UALICE", meta(restart.ID, "deny", "C2"), ""),
		viewSubmission(testTeam, "UALICE", meta(deploy.ID, "maybe", "C1"), "x"),
		viewSubmission(testTeam, "UALICE", "not json", "x"),
	} {
		f.Add(payloadOf(f, body), false)
	}
	for _, p := range []string{"", "{}", "null", "[]", `"x"`, `{"type":"block_actions","team":{"id":"` + testTeam + `"},"actions":[null]}`,
		`{"type":"block_actions","team":{"id":"` + testTeam + `"},"user":{"id":"UALICE"},"actions":[{"action_id":"` + ActionApprove + `","value":" ` + deploy.ID + ` "}]}`,
		`{"type":"view_submission","team":{"id":"` + testTeam + `"},"user":{"id":"UALICE"},"view":{"callback_id":"` + ReasonCallbackID + `","private_metadata":"{\"r\":\"` + restart.ID + `\",\"d\":\"deny\"}","state":null}}`,
		`{"type":"view_submission","team":{"id":"` + testTeam + `"},"user":{"id":"UALICE"},"view":{"callback_id":"` + ReasonCallbackID + `","private_metadata":"{\"r\":\"` + restart.ID + `\",\"d\":\"deny\"}","state":{"values":{"reason":{"reason":{"value":"\udfff"}}}}}}`,
		`{"type":"shortcut","team":{"id":"` + testTeam + `"}}`, `{"type":"block_actions","team":{"id":"` + testTeam + `"},"enterprise":{"id":"E1"},"actions":{}}`,
	} {
		f.Add(p, false)
	}
	// A click as Slack sends it: the message carries the card's blocks.
	text, blocks := renderCard(cardInput{Request: deploy, Action: testPolicy().Actions["deploy-prod"], RequestURL: "https://signoff.example.com/v1/requests/" + deploy.ID})
	var click map[string]any
	if err := json.Unmarshal([]byte(payloadOf(f, blockActions(testTeam, "UALICE", "C1", ActionApprove, deploy.ID))), &click); err != nil {
		f.Fatal(err)
	}
	click["message"] = map[string]any{"type": "message", "ts": "1772366400.000001", "bot_id": "B0SIGNOFF", "text": text, "blocks": blocks}
	withBlocks, err := json.Marshal(click)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(withBlocks), false)
	f.Add("payload=%zz", true)
	f.Add("payload=1&payload=2", true)
	f.Add("a=b;c=d", true)
	f.Add("", true)

	f.Fuzz(func(t *testing.T, payload string, raw bool) {
		body := payload
		if !raw {
			body = url.Values{"payload": {payload}}.Encode()
		}
		rec := e.postSigned(InteractionsPath, body)
		if p := e.Panics(); len(p) > 0 {
			t.Fatalf("work started by the callback panicked: %q", p)
		}
		e.CheckAudit(t)
		switch rec.Code {
		case http.StatusOK:
			if rec.Body.Len() != 0 {
				t.Fatalf("200 with a body %q (an empty 200 closes a dialog)", rec.Body)
			}
			return
		case http.StatusBadRequest, http.StatusForbidden:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" {
			t.Fatalf("status %d without a JSON error: %q", rec.Code, rec.Body)
		}
		if eb.Error.Code == string(chatflow.RejectBadSignature) || eb.Error.Code == string(rejectStaleTimestamp) {
			t.Fatalf("a correctly signed callback was refused: %s", rec.Body)
		}
	})
}

// FuzzInteractionFields complements FuzzInteractionPayload, whose
// byte-level mutations mostly break the JSON: here the fuzzer picks the
// fields of a click (action id, value, clicker, team, channel, trigger id,
// response_url) or of a reason dialog's submission (its metadata and the
// typed reason), and the payload around them stays well formed and
// correctly signed, so every input reaches the click handling. The answer
// is 200, or 403 for another workspace; nothing panics and the audit log
// keeps verifying.
func FuzzInteractionFields(f *testing.F) {
	e := newFuzzSlackEnv(f)
	ids := e.CreateEach(f, "deploy-prod", "restart", "break-glass", "wide")
	for _, u := range []string{"UALICE", "UBOB"} {
		e.links.link(u, identity(strings.ToLower(u[1:]), "sre"))
	}
	e.links.link("UCAROL", identity("carol", "dev"))
	e.CheckAudit(f)

	// which picks the request (its low bits; past the requests, value as
	// is) and, with 0x40, a view_submission whose private_metadata is
	// value (or, for a picked request, the metadata of a deny on it).
	f.Add(ActionApprove, "", "UALICE", testTeam, "C1", "7000000001.1.ab", "", "", uint8(0))
	f.Add(ActionDeny, "", "UBOB", testTeam, "C2", "7000000002.1.ab", "", "", uint8(1))
	f.Add(ActionApprove, "", "UALICE", testTeam, "C3", "", "https://hooks.slack.com/actions/T0TEAM/1/abc", "", uint8(2))
	f.Add(ActionApprove, " req_nope ", "UCAROL", testTeam, "", "", "", "", uint8(7))
	f.Add("signoff_maybe", "", "UALICE", testTeam, "C1", "7000000003.1.ab", "", "", uint8(3))
	f.Add(ActionApprove, "", "UALICE", "T0OTHER", "C1", "7000000004.1.ab", "", "", uint8(0))
	f.Add(ActionDeny, "", "UALICE", testTeam, "C2", "7000000005.1.ab", "", "disk full <!channel>", uint8(1|0x40))
	f.Add(ActionDeny, `{"r":"req_x","d":"deny","c":"C2"}`, "UALICE", testTeam, "", "", "", "  ", uint8(7|0x40))
	f.Add(ActionDeny, "not json", "", testTeam, "", "", "", "x", uint8(7|0x40))

	f.Fuzz(func(t *testing.T, actionID, value, user, team, channel, trigger, responseURL, reason string, which uint8) {
		if n := int(which & 7); n < len(ids) {
			value = ids[n]
			if which&0x40 != 0 {
				b, _ := json.Marshal(reasonMetadata{RequestID: value, Decision: string(storage.DecisionDeny), Channel: channel})
				value = string(b)
			}
		}
		var payload map[string]any
		if which&0x40 == 0 {
			payload = map[string]any{
				"type": "block_actions", "team": map[string]any{"id": team, "domain": "acme"},
				"user": map[string]any{"id": user, "team_id": team}, "api_app_id": "A0SIGNOFF", "trigger_id": trigger,
				"container": map[string]any{"type": "message", "message_ts": "1772366400.000001", "channel_id": channel},
				"channel":   map[string]any{"id": channel}, "response_url": responseURL,
				"actions": []any{map[string]any{"action_id": actionID, "block_id": "actions", "type": "button", "value": value, "action_ts": "1772366400.000002"}},
			}
		} else {
			payload = map[string]any{
				"type": "view_submission", "team": map[string]any{"id": team}, "user": map[string]any{"id": user, "team_id": team}, "trigger_id": trigger,
				"view": map[string]any{
					"id": "V0REASON", "type": "modal", "callback_id": ReasonCallbackID, "private_metadata": value,
					"state": map[string]any{"values": map[string]any{"reason": map[string]any{"reason": map[string]any{"type": "plain_text_input", "value": reason}}}},
				},
			}
		}
		raw, _ := json.Marshal(payload)
		rec := e.postSigned(InteractionsPath, url.Values{"payload": {string(raw)}}.Encode())
		if p := e.Panics(); len(p) > 0 {
			t.Fatalf("work started by the callback panicked: %q", p)
		}
		e.CheckAudit(t)
		switch {
		case rec.Code == http.StatusOK && rec.Body.Len() == 0:
		case rec.Code == http.StatusForbidden && team != testTeam:
		default:
			t.Fatalf("a well-formed, signed callback answered %d: %q", rec.Code, rec.Body)
		}
	})
}

// TestOversizedSlackIDsKeepAuditVerifiable: a click whose user id and
// trigger id fill a maximal body is ignored or clipped before anything is
// audited; the ids used to reach vote.rejected whole (the actor's
// platform_user and the source) and write a record longer than
// audit.MaxLineBytes, after which the audit log no longer verified.
func TestOversizedSlackIDsKeepAuditVerifiable(t *testing.T) {
	e := newFuzzSlackEnv(t)
	r := e.Create(t, "deploy-prod", deployParams(), "")
	body := func(user, trigger string) string {
		raw, _ := json.Marshal(map[string]any{
			"type": "block_actions", "team": map[string]any{"id": testTeam}, "user": map[string]any{"id": user}, "trigger_id": trigger,
			"channel": map[string]any{"id": "C1"},
			"actions": []any{map[string]any{"action_id": ActionApprove, "block_id": "actions", "type": "button", "value": r.ID}},
		})
		return url.Values{"payload": {string(raw)}}.Encode()
	}
	// The user id and the trigger id share what DefaultMaxBodyBytes leaves.
	room := DefaultMaxBodyBytes - len(body("", ""))
	long := body(strings.Repeat("U", room/2), strings.Repeat("7", room-room/2))
	if len(long) != DefaultMaxBodyBytes {
		t.Fatalf("body of %d bytes", len(long))
	}
	for _, b := range []string{long, body(strings.Repeat("U", maxUserIDLen+1), "7.1"), body("UNOBODY", strings.Repeat("7", 500_000))} {
		if rec := e.postSigned(InteractionsPath, b); rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		e.CheckAudit(t)
	}
	// The unlinked clicker with a long trigger id was audited, its source
	// clipped.
	var last []byte
	if err := e.Store.AuditRecords(context.Background(), e.AuditSeq(), func(_ uint64, line []byte) error { last = line; return nil }); err != nil {
		t.Fatal(err)
	}
	rec, err := audit.ParseRecord(last)
	if err != nil || rec.Type != audit.TypeVoteRejected || rec.Actor == nil || rec.Actor.PlatformUser != "UNOBODY" || len(rec.Source) != maxCallbackIDLen {
		t.Fatalf("last record %+v (%v)", rec, err)
	}
}
