package slackbot

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/clock"
)

// Slack's published example ("Verifying requests from Slack").
const (
	kaSecret    = "8f742231b10e8888abcd99yyyzzz85a5"
	kaTimestamp = "1531420618"
	kaBody      = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	kaSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

func kaHeader() http.Header {
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", kaTimestamp)
	h.Set("X-Slack-Signature", kaSignature)
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}

func TestSignatureKnownAnswer(t *testing.T) {
	sec, _ := strconv.ParseInt(kaTimestamp, 10, 64)
	at := time.Unix(sec, 0)
	if err := verifySignature(kaHeader(), []byte(kaBody), kaSecret, at); err != nil {
		t.Fatalf("Slack's example does not verify: %v", err)
	}
	// Our signing helper reproduces Slack's signature.
	if got := sign(kaSecret, sec, kaBody).Get("X-Slack-Signature"); got != kaSignature {
		t.Fatalf("sign() = %s, want %s", got, kaSignature)
	}
	if err := verifySignature(kaHeader(), []byte(kaBody), kaSecret, at.Add(6*time.Minute)); err == nil {
		t.Fatal("Slack's example verifies six minutes later")
	}

	// End to end: a bot for that workspace, its clock at that instant,
	// accepts the command (an unknown one: it answers with help).
	e := newEnv(t)
	b, err := New(Options{
		Service: e.svc, Resolver: e.links, BotToken: "xoxb-test", SigningSecret: kaSecret, TeamID: "T1DC2JH3J",
		APIURL: e.slack.URL(), Clock: clock.NewFake(at), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	b.Register(mux)
	req := httptest.NewRequest(http.MethodPost, CommandsPath, strings.NewReader(kaBody))
	req.Header = kaHeader()
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "/signoff link") {
		t.Fatalf("known-answer command: %d %s", rec.Code, rec.Body)
	}
	if n := len(e.RecordsOf(audit.TypeCallbackRejected)); n != 0 {
		t.Errorf("%d callbacks rejected", n)
	}
}

// verifySignature makes the check slack.NewSecretsVerifier makes; the two
// agree on fresh callbacks (the library reads the wall clock, so this uses
// the current time).
func TestSignatureAgreesWithSlackVerifier(t *testing.T) {
	now := time.Now()
	body := "payload=%7B%22type%22%3A%22block_actions%22%7D"
	cases := []struct {
		name   string
		header http.Header
		body   string
	}{
		{"valid", sign(testSecret, now.Unix(), body), body},
		{"wrong secret", sign("another-secret", now.Unix(), body), body},
		{"body altered", sign(testSecret, now.Unix(), body), body + "x"},
		{"stale", sign(testSecret, now.Add(-6*time.Minute).Unix(), body), body},
		{"missing", http.Header{}, body},
	}
	for _, c := range cases {
		ours := verifySignature(c.header, []byte(c.body), testSecret, now)
		theirs := func() error {
			sv, err := slack.NewSecretsVerifier(c.header, testSecret)
			if err != nil {
				return err
			}
			if _, err := sv.Write([]byte(c.body)); err != nil {
				return err
			}
			return sv.Ensure()
		}()
		if (ours == nil) != (theirs == nil) {
			t.Errorf("%s: ours %v, slack-go %v", c.name, ours, theirs)
		}
	}
}

func TestCallbackVerificationFailures(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	body := blockActions(testTeam, "UALICE", "C1", ActionApprove, r.ID)
	now := e.clock.Now().Unix()

	withoutTS := sign(testSecret, now, body)
	withoutTS.Del("X-Slack-Request-Timestamp")
	notV0 := sign(testSecret, now, body)
	notV0.Set("X-Slack-Signature", "v1="+strings.Repeat("0", 64))
	cases := []struct {
		name   string
		header http.Header
		body   string
		path   string
		reason chatflow.RejectReason
	}{
		{"wrong secret", sign("not-the-secret", now, body), body, InteractionsPath, chatflow.RejectBadSignature},
		{"body altered after signing", sign(testSecret, now, body), strings.Replace(body, "UALICE", "UBOSS", 1), InteractionsPath, chatflow.RejectBadSignature},
		{"timestamp six minutes old", sign(testSecret, now-360, body), body, InteractionsPath, rejectStaleTimestamp},
		{"timestamp six minutes ahead", sign(testSecret, now+360, body), body, InteractionsPath, rejectStaleTimestamp},
		{"no headers", http.Header{}, body, InteractionsPath, rejectMissingHeaders},
		{"no timestamp", withoutTS, body, InteractionsPath, rejectMissingHeaders},
		{"not a v0 signature", notV0, body, InteractionsPath, chatflow.RejectBadSignature},
		{"command with a bad signature", sign("not-the-secret", now, kaBody), kaBody, CommandsPath, chatflow.RejectBadSignature},
	}
	for i, c := range cases {
		rec := e.post(c.path, c.body, c.header)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", c.name, rec.Code)
		}
		recs := e.RecordsOf(audit.TypeCallbackRejected)
		if len(recs) != i+1 {
			t.Fatalf("%s: %d callback.rejected records, want %d", c.name, len(recs), i+1)
		}
		last := recs[len(recs)-1]
		if last.Data["reason"] != string(c.reason) || last.Data["platform"] != "slack" || len(last.Data) != 2 {
			t.Errorf("%s: record data %v, want reason %s", c.name, last.Data, c.reason)
		}
	}
	// Nothing of the bodies reached the audit log, and no vote counted.
	for _, rec := range e.Records() {
		line, _ := audit.Canonical(rec)
		if bytes.Contains(line, []byte("UALICE")) || bytes.Contains(line, []byte("block_actions")) || bytes.Contains(line, []byte("xyzz0Wbap")) {
			t.Errorf("audit record holds callback content: %s", line)
		}
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Errorf("votes after forged callbacks: %v", got.Votes)
	}
	e.slack.NoEphemeral(t)
}

func TestOversizedBodyRefused(t *testing.T) {
	e := newEnv(t)
	body := "payload=" + strings.Repeat("a", DefaultMaxBodyBytes)
	rec := e.post(InteractionsPath, body, sign(testSecret, e.clock.Now().Unix(), body))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", rec.Code)
	}
	if recs := e.RecordsOf(audit.TypeCallbackRejected); len(recs) != 1 || recs[0].Data["reason"] != string(chatflow.RejectBodyTooLarge) {
		t.Errorf("records: %v", recs)
	}
}

func TestReplayedCallbackCountedOnce(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.links.link("UALICE", identity("alice", "sre"))
	body := blockActions(testTeam, "UALICE", "C1", ActionApprove, r.ID)
	h := sign(testSecret, e.clock.Now().Unix(), body)
	for range 3 {
		if rec := e.post(InteractionsPath, body, h.Clone()); rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		e.clock.Advance(time.Minute)
	}
	if got := e.Get(r.ID); len(got.Votes) != 1 {
		t.Fatalf("%d votes, want 1", len(got.Votes))
	}
	if n := len(e.RecordsOf(audit.TypeVoteApprove)); n != 1 {
		t.Errorf("%d vote.approve records, want 1", n)
	}
	e.slack.NextEphemeral(t)
	e.slack.NoEphemeral(t)

	// The same click signed anew (a later delivery of the same event) is
	// a duplicate for approvals: still one vote, no second record.
	if rec := e.postSigned(InteractionsPath, body); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if msg := e.slack.NextEphemeral(t).Form.Get("text"); !strings.Contains(msg, "already voted approve") {
		t.Errorf("reply to the re-sent click: %q", msg)
	}
	if n := len(e.RecordsOf(audit.TypeVoteApprove)); n != 1 || len(e.Get(r.ID).Votes) != 1 {
		t.Errorf("re-sent click counted again: %d records", n)
	}
	if n := len(e.RecordsOf(audit.TypeVoteRejected)); n != 0 {
		t.Errorf("%d vote.rejected records for a duplicate", n)
	}
}

func TestNoSigningSecretRefusesAll(t *testing.T) {
	e := newEnv(t)
	b, err := New(Options{Service: e.svc, Resolver: e.links, BotToken: "xoxb", AppToken: "xapp-1", TeamID: testTeam, APIURL: e.slack.URL(), Clock: e.clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	b.Register(mux)
	body := blockActions(testTeam, "UALICE", "C1", ActionApprove, "req_x")
	req := httptest.NewRequest(http.MethodPost, InteractionsPath, strings.NewReader(body))
	req.Header = sign("", e.clock.Now().Unix(), body)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", rec.Code)
	}
	_ = b.Shutdown(context.Background())
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Options{APIURL: "http://x"})
	if err == nil {
		t.Fatal("New accepted empty options")
	}
	for _, want := range []string{"approvals service", "identity resolver", "slack.bot_token", "slack.signing_secret", "slack.team_id", "must end with /"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
