package teamsbot

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
)

func TestInboundAuth(t *testing.T) {
	type tc struct {
		name string
		// prepare adjusts the stand-in (extra keys) before signing.
		prepare func(e *env)
		// place overrides where the click happens.
		place *teamstest.Place
		// auth returns the Authorization header for act.
		auth       func(e *env, act map[string]any) string
		wantStatus int
		wantReason chatflow.RejectReason
	}
	claims := func(e *env, act map[string]any, edit func(teamstest.Claims)) teamstest.Claims {
		c := e.bf.TokenClaims(act["serviceUrl"].(string))
		if edit != nil {
			edit(c)
		}
		return c
	}
	bearer := func(edit func(teamstest.Claims), kid string) func(e *env, act map[string]any) string {
		return func(e *env, act map[string]any) string {
			return "Bearer " + e.bf.Sign(claims(e, act, edit), kid)
		}
	}
	otherTenant := opsPlace
	otherTenant.TenantID = "0b0b0b0b-0000-4000-8000-000000000bad"
	cases := []tc{
		{name: "valid", auth: bearer(nil, ""), wantStatus: http.StatusOK},
		{name: "valid within clock skew", auth: bearer(func(c teamstest.Claims) { c["exp"] = t0.Add(-4 * time.Minute).Unix() }, ""), wantStatus: http.StatusOK},
		{name: "serviceUrl claim in camel case", auth: bearer(func(c teamstest.Claims) { c["serviceUrl"] = c["serviceurl"]; delete(c, "serviceurl") }, ""), wantStatus: http.StatusOK},
		{name: "key without endorsements", prepare: func(e *env) { e.bf.AddKey("plain", nil, true) }, auth: bearer(nil, "plain"), wantStatus: http.StatusOK},
		{name: "wrong audience", auth: bearer(func(c teamstest.Claims) { c["aud"] = "11111111-2222-4333-8444-555555555555" }, ""), wantStatus: http.StatusUnauthorized, wantReason: rejectWrongAudience},
		{name: "wrong issuer", auth: bearer(func(c teamstest.Claims) { c["iss"] = "https://sts.windows.net/evil/" }, ""), wantStatus: http.StatusUnauthorized, wantReason: rejectWrongIssuer},
		{name: "expired", auth: bearer(func(c teamstest.Claims) { c["exp"] = t0.Add(-6 * time.Minute).Unix() }, ""), wantStatus: http.StatusUnauthorized, wantReason: rejectExpired},
		{name: "no expiry", auth: bearer(func(c teamstest.Claims) { delete(c, "exp") }, ""), wantStatus: http.StatusUnauthorized, wantReason: rejectMalformedToken},
		{name: "not yet valid", auth: bearer(func(c teamstest.Claims) { c["nbf"] = t0.Add(10 * time.Minute).Unix() }, ""), wantStatus: http.StatusUnauthorized, wantReason: rejectNotYetValid},
		{name: "unknown kid", prepare: func(e *env) { e.bf.AddKey("rogue", []string{"msteams"}, false) }, auth: bearer(nil, "rogue"), wantStatus: http.StatusUnauthorized, wantReason: rejectUnknownKey},
		{name: "serviceUrl claim mismatch", auth: bearer(func(c teamstest.Claims) { c["serviceurl"] = "https://evil.example/teams/" }, ""), wantStatus: http.StatusUnauthorized, wantReason: rejectServiceURL},
		{name: "no serviceUrl claim", auth: bearer(func(c teamstest.Claims) { delete(c, "serviceurl") }, ""), wantStatus: http.StatusUnauthorized, wantReason: rejectNoServiceURL},
		{name: "tenant not configured", place: &otherTenant, auth: bearer(nil, ""), wantStatus: http.StatusForbidden, wantReason: rejectWrongTenant},
		{name: "missing header", auth: func(*env, map[string]any) string { return "" }, wantStatus: http.StatusUnauthorized, wantReason: rejectMissingToken},
		{name: "not a bearer token", auth: func(e *env, act map[string]any) string { return "Basic " + e.bf.Sign(claims(e, act, nil), "") }, wantStatus: http.StatusUnauthorized, wantReason: rejectMissingToken},
		{name: "alg none", auth: bearer(nil, "none"), wantStatus: http.StatusUnauthorized, wantReason: rejectBadAlgorithm},
		{name: "tampered signature", auth: func(e *env, act map[string]any) string {
			tok := e.bf.Sign(claims(e, act, nil), "")
			i := strings.LastIndexByte(tok, '.')
			sig := []byte(tok[i+1:])
			if sig[10] == 'A' {
				sig[10] = 'B'
			} else {
				sig[10] = 'A'
			}
			return "Bearer " + tok[:i+1] + string(sig)
		}, wantStatus: http.StatusUnauthorized, wantReason: chatflow.RejectBadSignature},
		{name: "endorsement not including channelId", prepare: func(e *env) { e.bf.AddKey("webchat-only", []string{"webchat", "directline"}, true) },
			auth: bearer(nil, "webchat-only"), wantStatus: http.StatusUnauthorized, wantReason: rejectNotEndorsed},
		{name: "empty endorsements", prepare: func(e *env) { e.bf.AddKey("nothing", []string{}, true) },
			auth: bearer(nil, "nothing"), wantStatus: http.StatusUnauthorized, wantReason: rejectNotEndorsed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			if c.prepare != nil {
				c.prepare(e)
				// Let the keys be fetched again for the new kid.
				e.clock.Advance(keyRefreshInterval + time.Second)
			}
			r := e.Create("deploy-prod", deployParams(), "")
			e.Deliver()
			alice := e.linked("alice", "sre")
			act := e.click(alice, r.ID, VerbApprove, nil)
			if c.place != nil {
				act = e.bf.Invoke(teamstest.Click{Place: *c.place, User: alice, Verb: VerbApprove,
					Data: map[string]any{"signoff": "signoff.vote", "requestId": r.ID, "decision": "approve"}})
			}
			before := len(e.Records())
			rec := e.sendWith(act, c.auth(e, act))
			if rec.Code != c.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.wantStatus, rec.Body)
			}
			got := e.Get(r.ID)
			if c.wantStatus == http.StatusOK {
				if len(got.Votes) != 1 {
					t.Errorf("valid click did not count: %d votes", len(got.Votes))
				}
				if n := len(e.RecordsOf(audit.TypeCallbackRejected)); n != 0 {
					t.Errorf("%d callback.rejected records for a valid activity", n)
				}
				return
			}
			if len(got.Votes) != 0 || got.Version != r.Version+1 { // +1: the card was stored
				t.Errorf("refused activity changed the request: %d votes, version %d", len(got.Votes), got.Version)
			}
			recs := e.Records()[before:]
			if len(recs) != 1 || recs[0].Type != audit.TypeCallbackRejected {
				t.Fatalf("want exactly one callback.rejected record, got %+v", recs)
			}
			if recs[0].Data["platform"] != "teams" || recs[0].Data["reason"] != string(c.wantReason) || recs[0].Source != "POST /teams/messages" {
				t.Errorf("record: %+v", recs[0])
			}
			if c.wantStatus == http.StatusForbidden && (recs[0].Actor == nil || recs[0].Actor.Workspace != otherTenant.TenantID) {
				t.Errorf("403 record names no tenant: %+v", recs[0].Actor)
			}
			if strings.Contains(rec.Body.String(), "Bearer") || strings.Contains(e.logs.String(), e.bf.AppPassword()) {
				t.Error("a token or the secret leaked")
			}
		})
	}
}

func TestUnknownKidRefreshIsRateLimited(t *testing.T) {
	e := newEnv(t) // the installation fetched the keys once
	if n := e.bf.MetadataHits(); n != 1 {
		t.Fatalf("metadata fetched %d times at start, want 1", n)
	}
	conv := e.bf.BotAdded(teamstest.Place{Conversation: "19:x@thread.tacv2", Type: "groupChat"}, teamstest.NewUser("admin"))
	sendKid := func(kid string) int {
		return e.sendWith(conv, "Bearer "+e.bf.Sign(e.bf.TokenClaims(e.bf.ServiceURL()), kid)).Code
	}
	// send sends a token signed with kid and checks the answer and how
	// many times the keys have been fetched since the start.
	send := func(what, kid string, wantCode, wantFetches int) {
		t.Helper()
		if code := sendKid(kid); code != wantCode {
			t.Errorf("%s: answered %d, want %d", what, code, wantCode)
		}
		if n := e.bf.MetadataHits(); n != wantFetches {
			t.Errorf("%s: %d key fetches, want %d", what, n, wantFetches)
		}
	}
	e.bf.AddKey("rogue-1", nil, false)
	e.bf.AddKey("rogue-2", nil, false)
	// Right after a download, an unknown kid does not trigger another.
	send("an unknown kid at once", "rogue-1", http.StatusUnauthorized, 1)
	// After the interval it refreshes the keys once.
	e.clock.Advance(keyRefreshInterval + time.Second)
	send("an unknown kid after the interval", "rogue-1", http.StatusUnauthorized, 2)
	for range 5 {
		sendKid("rogue-2")
	}
	if n := e.bf.MetadataHits(); n != 2 {
		t.Errorf("a flood of unknown kids refetched the keys: %d fetches", n)
	}

	// Microsoft rotates: a new key is picked up by the first token naming
	// it once the interval has passed.
	e.bf.AddKey("rotated", []string{"msteams"}, true)
	e.clock.Advance(keyRefreshInterval + time.Second)
	send("a token from the rotated key", "rotated", http.StatusOK, 3)
	// Keys older than a day are fetched again.
	e.clock.Advance(keyMaxAge + time.Minute)
	send("after a day", "", http.StatusOK, 4)
}

func TestBodyReadOnlyAfterToken(t *testing.T) {
	e := newEnv(t)
	// A garbage body with no token is refused as unauthenticated, not as
	// a bad body: nothing is parsed before the token is verified.
	rec := e.sendWith(map[string]any{"type": []any{1, 2}}, "")
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d", rec.Code)
	}
	// With a valid token a malformed activity is a 400, never a 5xx.
	act := map[string]any{"type": []any{1, 2}, "serviceUrl": e.bf.ServiceURL()}
	if rec := e.sendWith(act, e.bf.Authorization(act)); rec.Code != http.StatusBadRequest {
		t.Fatalf("malformed activity: %d", rec.Code)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	_, err := New(Options{ChannelService: "https://botframework.example", MaxSkew: time.Hour})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"approvals service", "store", "identity resolver", "teams.app_id", "teams.app_password", "teams.tenant_ids", "channel_service", "clock skew"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

func TestKeysUnavailable(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	e := newEnv(t)
	// A second bot on the same store whose metadata URL answers nothing.
	b := e.otherBot(func(o *Options) { o.OpenIDMetadataURL = down.URL + "/v1/.well-known/openidconfiguration" })
	if err := b.Discover(context.Background()); err == nil || !strings.Contains(err.Error(), "could not be fetched") {
		t.Errorf("Discover: %v", err)
	}
	rec := e.sendTo(b, e.bf.BotAdded(teamstest.Place{Conversation: "19:y@thread.tacv2", Type: "groupChat"}, teamstest.NewUser("admin")))
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), string(rejectKeysUnavailable)) {
		t.Errorf("answer %d %s", rec.Code, rec.Body)
	}
	// The first bot fetched its keys; Discover is then a no-op.
	if err := e.bot.Discover(context.Background()); err != nil {
		t.Errorf("Discover: %v", err)
	}
}

func TestChannelServices(t *testing.T) {
	for cs, want := range map[string]cloud{
		"":                               {DefaultOpenIDMetadataURL, DefaultTokenURL, PublicIssuer, PublicScope},
		"https://botframework.azure.us":  {GovOpenIDMetadataURL, GovTokenURL, GovIssuer, GovScope},
		"https://botframework.azure.us/": {GovOpenIDMetadataURL, GovTokenURL, GovIssuer, GovScope},
	} {
		if got, err := cloudOf(cs); err != nil || got != want {
			t.Errorf("cloudOf(%q) = %+v, %v", cs, got, err)
		}
	}
}
