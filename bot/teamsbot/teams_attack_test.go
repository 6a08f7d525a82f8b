package teamsbot

// Attacks on the Teams adapter: each test tries to break one guarantee of
// docs/teams.md and docs/architecture.md (only Microsoft-signed Teams
// activities for this app and its tenants are acted on, a vote counts only
// for the clicking account's linked identity, the bot's token goes only to
// Microsoft's hosts over https, requester text is inert on the card).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/storage"
)

// attackSign signs claims with an arbitrary key, algorithm and extra
// header (the attacker's own key, not the stand-in's).
func attackSign(t *testing.T, claims map[string]any, alg jose.SignatureAlgorithm, key any, kid string, embedJWK bool) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	opts := (&jose.SignerOptions{EmbedJWK: embedJWK}).WithType("JWT")
	if kid != "" && !embedJWK {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	if embedJWK {
		// kid goes inside the embedded JWK.
		if k, ok := key.(*rsa.PrivateKey); ok {
			key = jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(alg)}
		}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// attackCheckRefused checks that act sent with auth was refused with
// status and reason, and that nothing was counted.
func attackCheckRefused(t *testing.T, e *env, r storage.Request, act map[string]any, auth string, status int, reason chatflow.RejectReason) {
	t.Helper()
	before := len(e.RecordsOf(audit.TypeCallbackRejected))
	rec := e.sendWith(act, auth)
	if rec.Code != status {
		t.Errorf("answered %d %s, want %d %s", rec.Code, rec.Body, status, reason)
	}
	if reason != "" && !strings.Contains(rec.Body.String(), string(reason)) {
		t.Errorf("answer %s does not carry reason %s", rec.Body, reason)
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Errorf("a refused activity voted: %+v", got.Votes)
	}
	if n := len(e.RecordsOf(audit.TypeCallbackRejected)); n != before+1 {
		t.Errorf("%d callback.rejected records written, want 1", n-before)
	}
}

// ---------------------------------------------------------------------
// Token verification
// ---------------------------------------------------------------------

// TestTokenNbfWithinSkewAccepted: a token whose nbf is ahead of signoff's
// clock by less than the allowed skew is accepted. The Bot Connector's
// tokens carry nbf = their issue time, so a signoff whose clock is a few
// seconds behind Microsoft's would otherwise refuse every activity (go-oidc
// checked nbf too, against a clock shifted back by the skew, and refused
// any nbf ahead of signoff's clock).
func TestTokenNbfWithinSkewAccepted(t *testing.T) {
	for _, ahead := range []time.Duration{30 * time.Second, 2 * time.Minute, 4 * time.Minute} {
		t.Run(ahead.String(), func(t *testing.T) {
			e := newEnv(t)
			r := e.Create("deploy-prod", deployParams(), "")
			e.Deliver()
			alice := e.linked("alice", "sre")
			act := e.click(alice, r.ID, VerbApprove, nil)
			c := e.bf.TokenClaims(act["serviceUrl"].(string))
			c["nbf"] = t0.Add(ahead).Unix()
			c["iat"] = t0.Add(ahead).Unix()
			rec := e.sendWith(act, "Bearer "+e.bf.Sign(c, ""))
			if rec.Code != http.StatusOK {
				t.Fatalf("a token whose nbf is %s ahead (inside the %s skew) was refused: %d %s", ahead, DefaultMaxSkew, rec.Code, rec.Body)
			}
			if got := e.Get(r.ID); len(got.Votes) != 1 {
				t.Errorf("votes: %+v", got.Votes)
			}
		})
	}
}

// TestAttackIssuerAndAudienceExact: issuer and audience are matched exactly; an audience list counts
// only when it contains the app id; emulator / Entra issuers are refused.
func TestAttackIssuerAndAudienceExact(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	alice := e.linked("alice", "sre")
	for _, c := range []struct {
		name   string
		edit   func(teamstest.Claims)
		reason chatflow.RejectReason
	}{
		{"issuer with trailing slash", func(c teamstest.Claims) { c["iss"] = teamstest.Issuer + "/" }, rejectWrongIssuer},
		{"issuer in other case", func(c teamstest.Claims) { c["iss"] = "https://API.botframework.com" }, rejectWrongIssuer},
		{"issuer as a prefix", func(c teamstest.Claims) { c["iss"] = teamstest.Issuer + ".evil.example" }, rejectWrongIssuer},
		{"issuer as a list", func(c teamstest.Claims) { c["iss"] = []any{teamstest.Issuer} }, ""},
		{"emulator issuer v1", func(c teamstest.Claims) {
			c["iss"] = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"
		}, rejectWrongIssuer},
		{"emulator issuer v2", func(c teamstest.Claims) {
			c["iss"] = "https://login.microsoftonline.com/d6d49420-f39b-4df7-a1dc-d59a935871db/v2.0"
		}, rejectWrongIssuer},
		{"gov issuer at the public cloud", func(c teamstest.Claims) { c["iss"] = GovIssuer }, rejectWrongIssuer},
		{"audience list without the app id", func(c teamstest.Claims) { c["aud"] = []any{"other", "api://" + e.bf.AppID()} }, rejectWrongAudience},
		{"audience in other case", func(c teamstest.Claims) { c["aud"] = strings.ToUpper(e.bf.AppID()) }, rejectWrongAudience},
		{"audience as an object", func(c teamstest.Claims) { c["aud"] = map[string]any{"id": e.bf.AppID()} }, ""},
		{"audience missing", func(c teamstest.Claims) { delete(c, "aud") }, rejectWrongAudience},
		{"exp as a string", func(c teamstest.Claims) { c["exp"] = fmt.Sprint(t0.Add(time.Hour).Unix()) }, ""},
		{"exp far past skew", func(c teamstest.Claims) { c["exp"] = t0.Add(-5*time.Minute - 2*time.Second).Unix() }, rejectExpired},
		{"nbf far ahead", func(c teamstest.Claims) { c["nbf"] = t0.Add(5*time.Minute + 2*time.Second).Unix() }, ""},
		{"serviceurl claim not a string", func(c teamstest.Claims) { c["serviceurl"] = []any{c["serviceurl"]} }, rejectNoServiceURL},
		{"serviceurl claim empty, camel case set elsewhere", func(c teamstest.Claims) { c["serviceurl"] = ""; c["serviceUrl"] = "https://evil.example/" }, rejectServiceURL},
	} {
		t.Run(c.name, func(t *testing.T) {
			act := e.click(alice, r.ID, VerbApprove, nil)
			claims := e.bf.TokenClaims(act["serviceUrl"].(string))
			c.edit(claims)
			attackCheckRefused(t, e, r, act, "Bearer "+e.bf.Sign(claims, ""), http.StatusUnauthorized, c.reason)
		})
	}
	// The audience as a list holding the app id is Microsoft's own form
	// and counts.
	act := e.click(alice, r.ID, VerbApprove, nil)
	claims := e.bf.TokenClaims(act["serviceUrl"].(string))
	claims["aud"] = []any{"other", e.bf.AppID()}
	if rec := e.sendWith(act, "Bearer "+e.bf.Sign(claims, "")); rec.Code != http.StatusOK {
		t.Errorf("audience list with the app id: %d %s", rec.Code, rec.Body)
	}
}

// TestAttackAlgorithmConfusionAndKeyInjection: algorithm confusion and key injection. HS256 keyed with the
// published key's modulus, PS256 / ES256 / none, a token signed by the
// attacker's key under the Bot Framework's kid, a token carrying its own
// key in a jwk header, one with no kid, and a JWS with two signatures are
// all refused before the body is read.
func TestAttackAlgorithmConfusionAndKeyInjection(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	alice := e.linked("alice", "sre")

	// The published key's modulus, as an HMAC secret.
	resp, err := http.Get(e.bf.URL + "/v1/.well-known/keys")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pub := set.Key(teamstest.MainKeyID)[0].Key.(*rsa.PublicKey)
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		sign   func(claims map[string]any) string
		reason chatflow.RejectReason
	}{
		{"HS256 keyed with the public modulus", func(cl map[string]any) string {
			return attackSign(t, cl, jose.HS256, pub.N.Bytes(), teamstest.MainKeyID, false)
		}, rejectBadAlgorithm},
		{"PS256 by the attacker under the BF kid", func(cl map[string]any) string {
			return attackSign(t, cl, jose.PS256, attacker, teamstest.MainKeyID, false)
		}, rejectBadAlgorithm},
		{"RS256 by the attacker under the BF kid", func(cl map[string]any) string {
			return attackSign(t, cl, jose.RS256, attacker, teamstest.MainKeyID, false)
		}, chatflow.RejectBadSignature},
		{"embedded jwk with the BF kid", func(cl map[string]any) string {
			return attackSign(t, cl, jose.RS256, attacker, teamstest.MainKeyID, true)
		}, ""},
		{"no kid", func(cl map[string]any) string {
			return attackSign(t, cl, jose.RS256, attacker, "", false)
		}, rejectMalformedToken},
		{"alg none", func(cl map[string]any) string { return e.bf.Sign(cl, "none") }, rejectBadAlgorithm},
		{"genuine signature, payload swapped", func(cl map[string]any) string {
			good := e.bf.Sign(cl, "")
			parts := strings.Split(good, ".")
			evil := map[string]any{}
			for k, v := range cl {
				evil[k] = v
			}
			evil["aud"] = e.bf.AppID()
			evil["serviceurl"] = "https://evil.example/"
			raw, _ := json.Marshal(evil)
			return parts[0] + "." + strings.TrimRight(base64URL(raw), "=") + "." + parts[2]
		}, chatflow.RejectBadSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			act := e.click(alice, r.ID, VerbApprove, nil)
			claims := map[string]any(e.bf.TokenClaims(act["serviceUrl"].(string)))
			attackCheckRefused(t, e, r, act, "Bearer "+c.sign(claims), http.StatusUnauthorized, c.reason)
		})
	}
}

func base64URL(b []byte) string {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var sb strings.Builder
	for i := 0; i < len(b); i += 3 {
		var n uint32
		k := 0
		for j := 0; j < 3; j++ {
			n <<= 8
			if i+j < len(b) {
				n |= uint32(b[i+j])
				k++
			}
		}
		for j := 0; j <= k; j++ {
			sb.WriteByte(enc[(n>>(18-6*uint(j)))&63])
		}
	}
	return sb.String()
}

// TestAttackServiceURLClaimAndEndorsements: the serviceurl claim must equal the activity's serviceUrl byte for
// byte (no trailing-slash, case or path tolerance), and a key endorsed for
// Teams does not vouch for an activity that names no channel or another.
func TestAttackServiceURLClaimAndEndorsements(t *testing.T) {
	e := newEnv(t)
	e.bf.AddKey("webchat-only", []string{"webchat"}, true)
	e.clock.Advance(keyRefreshInterval + time.Second)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	alice := e.linked("alice", "sre")
	su := e.bf.ServiceURL()
	for _, c := range []struct {
		name    string
		claimSU string
		actEdit func(map[string]any)
		kid     string
		reason  chatflow.RejectReason
	}{
		{"claim without trailing slash", strings.TrimSuffix(su, "/"), nil, "", rejectServiceURL},
		{"claim upper case", strings.ToUpper(su), nil, "", rejectServiceURL},
		{"claim another path", su + "x/", nil, "", rejectServiceURL},
		{"activity serviceUrl missing", su, func(a map[string]any) { delete(a, "serviceUrl") }, "", rejectServiceURL},
		{"msteams key, no channelId", su, func(a map[string]any) { delete(a, "channelId") }, "", rejectWrongChannel},
		{"msteams key, channelId webchat", su, func(a map[string]any) { a["channelId"] = "webchat" }, "", rejectWrongChannel},
		{"webchat key, channelId msteams", su, nil, "webchat-only", rejectNotEndorsed},
	} {
		t.Run(c.name, func(t *testing.T) {
			act := e.click(alice, r.ID, VerbApprove, nil)
			if c.actEdit != nil {
				c.actEdit(act)
			}
			claims := e.bf.TokenClaims(c.claimSU)
			attackCheckRefused(t, e, r, act, "Bearer "+e.bf.Sign(claims, c.kid), http.StatusUnauthorized, c.reason)
		})
	}
}

// TestAttackNonTeamsChannelActivityRefused: an activity from another Bot
// Framework channel ("webchat", "directline"), signed by a key endorsed
// for it, is refused. On those channels the client writes from and
// channelData itself, so the aadObjectId and tenant they name are the
// sender's choice; teams.service_url_hosts alone would not stop one whose
// serviceUrl shares a listed host.
func TestAttackNonTeamsChannelActivityRefused(t *testing.T) {
	e := newEnv(t)
	e.bf.AddKey("webchat-only", []string{"webchat", "directline"}, true)
	e.clock.Advance(keyRefreshInterval + time.Second)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	alice := e.linked("alice", "sre")
	act := e.click(alice, r.ID, VerbApprove, nil)
	act["channelId"] = "webchat"
	rec := e.sendWith(act, "Bearer "+e.bf.Sign(e.bf.TokenClaims(act["serviceUrl"].(string)), "webchat-only"))
	got := e.Get(r.ID)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), string(rejectWrongChannel)) || len(got.Votes) > 0 {
		t.Fatalf("an activity from channel %q: HTTP %d %s, votes %+v; want it refused as %s", act["channelId"], rec.Code, rec.Body, got.Votes, rejectWrongChannel)
	}
}

// ---------------------------------------------------------------------
// Tenants
// ---------------------------------------------------------------------

// TestAttackTenantChecks: conversation.tenantId disagreeing with channelData.tenant.id, a
// missing channelData tenant, channelData unreadable, a tenant id with
// padding: all refused (403); a configured tenant in another case is
// accepted and keyed by the configured spelling.
func TestAttackTenantChecks(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	alice := e.linked("alice", "sre")
	good := e.bf.TenantID()
	evil := "0b0b0b0b-0000-4000-8000-000000000bad"
	for _, c := range []struct {
		name string
		edit func(a map[string]any)
	}{
		{"conversation tenant differs", func(a map[string]any) { a["conversation"].(map[string]any)["tenantId"] = evil }},
		{"channelData tenant differs", func(a map[string]any) {
			a["channelData"].(map[string]any)["tenant"] = map[string]any{"id": evil}
		}},
		{"channelData tenant missing, conversation tenant good", func(a map[string]any) {
			delete(a["channelData"].(map[string]any), "tenant")
		}},
		{"channelData not an object", func(a map[string]any) { a["channelData"] = "tenant=" + good }},
		{"channelData tenant id padded", func(a map[string]any) {
			a["channelData"].(map[string]any)["tenant"] = map[string]any{"id": " " + good}
		}},
		{"channelData tenant id as a list", func(a map[string]any) {
			a["channelData"].(map[string]any)["tenant"] = map[string]any{"id": []any{good}}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			act := e.click(alice, r.ID, VerbApprove, nil)
			c.edit(act)
			attackCheckRefused(t, e, r, act, e.bf.Authorization(act), http.StatusForbidden, rejectWrongTenant)
		})
	}

	// The configured tenant in upper case is the same tenant: the click
	// counts, under the link made for the configured spelling.
	act := e.click(alice, r.ID, VerbApprove, nil)
	act["conversation"].(map[string]any)["tenantId"] = strings.ToUpper(good)
	act["channelData"].(map[string]any)["tenant"] = map[string]any{"id": strings.ToUpper(good)}
	if d := e.invokeActivity(act); d.card() == nil {
		t.Errorf("upper-case tenant: %q", d.message())
	}
	if got := e.Get(r.ID); len(got.Votes) != 1 || got.Votes[0].Approver.Workspace != good {
		t.Errorf("votes: %+v", got.Votes)
	}
}

// ---------------------------------------------------------------------
// Who clicked
// ---------------------------------------------------------------------

// TestAttackClickerIsTheAADObjectID: the vote is keyed by from.aadObjectId alone. An approver's Teams
// user id (from.id) with another person's (unlinked) object id gets a
// sign-in link, not the approver's vote; no object id, an object id in
// other case or padded, or one hidden in from.id's shape: nothing counts.
func TestAttackClickerIsTheAADObjectID(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	alice := e.linked("alice", "sre")
	for _, c := range []struct {
		name string
		from map[string]any
	}{
		{"alice's from.id, mallory's object id", map[string]any{"id": alice.ID, "name": "alice", "aadObjectId": "aad-mallory"}},
		{"alice's from.id, no object id", map[string]any{"id": alice.ID, "name": "alice"}},
		{"alice's object id in from.id only", map[string]any{"id": alice.AADObjectID, "name": "alice"}},
		{"object id upper case", map[string]any{"id": alice.ID, "aadObjectId": strings.ToUpper(alice.AADObjectID)}},
		{"object id padded", map[string]any{"id": alice.ID, "aadObjectId": alice.AADObjectID + " "}},
		{"object id as a number", map[string]any{"id": alice.ID, "aadObjectId": 7}},
	} {
		t.Run(c.name, func(t *testing.T) {
			act := e.click(alice, r.ID, VerbApprove, nil)
			act["from"] = c.from
			rec := e.send(act)
			if got := e.Get(r.ID); len(got.Votes) != 0 {
				t.Fatalf("HTTP %d %s: a click naming %v voted as %+v", rec.Code, rec.Body, c.from, got.Votes)
			}
		})
	}
}

// ---------------------------------------------------------------------
// Where the bot's token goes
// ---------------------------------------------------------------------

// recordingTransport answers the token endpoint and records every other
// request instead of sending it anywhere.
type recordingTransport struct {
	mu   sync.Mutex
	seen []*http.Request
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.seen = append(rt.seen, r)
	rt.mu.Unlock()
	body := `{"id":"1"}`
	if strings.HasSuffix(r.URL.Path, "/token") {
		body = `{"token_type":"Bearer","expires_in":3599,"access_token":"secret-bot-token"}`
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

// TestAttackBotTokenNeverSentOverPlainHTTP: an http:// service URL on an
// allowed Microsoft host (an activity's serviceUrl, a stored conversation
// reference) is not called: the bot's bearer token would cross the
// network in the clear. Only a loopback stand-in may be plain http.
func TestAttackBotTokenNeverSentOverPlainHTTP(t *testing.T) {
	e := newEnv(t)
	rt := &recordingTransport{}
	b := e.otherBot(func(o *Options) {
		o.HTTPClient = &http.Client{Transport: rt}
		o.TokenURL = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
	})
	err := b.api.notice(context.Background(), "http://smba.trafficmanager.net/teams/", "19:x@thread.tacv2", "hello")
	if !errors.Is(err, errHostNotAllowed) {
		t.Errorf("notice to a plain http service URL: err %v, want it refused before any call", err)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, r := range rt.seen {
		if r.URL.Scheme == "http" && r.Header.Get("Authorization") != "" {
			t.Fatalf("the bot's token went over cleartext http to %s (err %v)", r.URL, err)
		}
	}
}

// TestAttackServiceURLHostTricks: a serviceUrl that disguises its host (user info, a listed host as
// user info of another, a backslash, encoded characters) is refused before
// any call, and a Bot Connector answer that redirects to another host does
// not carry the token along.
func TestAttackServiceURLHostTricks(t *testing.T) {
	e := newEnv(t)
	x := newElsewhere(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	alice := e.linked("alice", "sre")
	listed := strings.TrimPrefix(e.bf.URL, "http://")
	xhost := strings.TrimPrefix(x.URL, "http://")
	for _, su := range []string{
		"http://" + listed + "@" + xhost + "/teams/",
		"http://" + xhost + "\\@" + listed + "/teams/",
		"http://" + xhost + "#@" + listed + "/teams/",
		"http://" + xhost + "?@" + listed + "/teams/",
		"http://" + strings.Replace(listed, ".", "%2e", 1) + "/teams/",
		"//" + listed + "/teams/",
		"HTTP://" + xhost + "/teams/",
	} {
		t.Run(su, func(t *testing.T) {
			p := opsPlace
			p.ServiceURL = su
			act := e.bf.Invoke(teamstest.Click{Place: p, User: alice, Verb: VerbApprove,
				Data: map[string]any{"signoff": voteKind, "requestId": r.ID, "decision": VerbApprove}})
			rec := e.send(act)
			if rec.Code == http.StatusOK {
				t.Errorf("serviceUrl %q accepted", su)
			}
		})
	}
	e.Deliver()
	if hits := x.requests(); len(hits) != 0 {
		t.Fatalf("the host outside the list was called: %q", hits)
	}

	// A listed host (127.0.0.1) that redirects to another host: Go drops
	// the Authorization header across hosts, so the token stays.
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, x.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	_ = e.bot.api.notice(context.Background(), redirector.URL+"/teams/", "19:x@thread.tacv2", "hello")
	if len(x.requests()) == 0 {
		t.Fatal("the redirect was not followed; the check below proves nothing")
	}
	t.Logf("redirect target saw %q", x.requests())
	for _, h := range x.requests() {
		if !strings.HasSuffix(h, "auth=") {
			t.Errorf("a redirect carried the bot's token to another host: %q", h)
		}
	}
}

// ---------------------------------------------------------------------
// Card injection
// ---------------------------------------------------------------------

// cardStrings returns every string in the card.
func cardStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = append(out, x)
	case map[string]any:
		for _, y := range x {
			out = append(out, cardStrings(y)...)
		}
	case []any:
		for _, y := range x {
			out = append(out, cardStrings(y)...)
		}
	}
	return out
}

// TestAttackLookAlikeLinkHostShownInASCII: a link button names the host
// the link leads to, so a title cannot disguise it; a host spelt with a
// look-alike letter from another script shows in its ASCII (xn--) form,
// not as the name it imitates. (Direction controls in requester text are
// refused when the request is made: approvals' TestDirectionControlsAreRefused.)
func TestAttackLookAlikeLinkHostShownInASCII(t *testing.T) {
	e := newEnv(t)
	e.Create("deploy-prod", deployParams(), "",
		storage.Link{Title: "PR", URL: "https://g\u0456thub.com/acme/api/pull/1"}, // Cyrillic і
		storage.Link{URL: "https://g\u0456thub.com/acme/api/pull/2"},
	)
	e.Deliver()
	links := element(e.lastCard(), "links")
	if links == nil {
		t.Fatal("no links on the card")
	}
	var titles []string
	for _, a := range links["actions"].([]any) {
		titles = append(titles, a.(map[string]any)["title"].(string))
	}
	want := []string{"PR (xn--gthub-n2e.com)", "xn--gthub-n2e.com (xn--gthub-n2e.com)"}
	if !slices.Equal(titles, want) {
		t.Fatalf("link titles %q, want %q", titles, want)
	}
}

// TestAttackMarkdownInjectionVariants: markdown, mentions, HTML, entities and date functions from
// requester text are inert everywhere the card parses markdown (the
// existing test covers some; this adds the requester's name, autolinks,
// reference links, images and HTML).
func TestAttackMarkdownInjectionVariants(t *testing.T) {
	e := newEnv(t)
	payloads := []string{
		"<at>everyone</at>", "<at id=\"0\">x</at>", "[x](https://evil)", "![img](https://evil/p.png)",
		"[x][1]\n\n[1]: https://evil", "<https://evil>", "<a href=\"https://evil\">x</a>", "&lt;at&gt;x",
		"{{DATE(2030-01-01T00:00:00Z)}}", "**bold** _it_ ~~s~~", "`code`", "\n# head\n- item\n1. one",
	}
	params := map[string]string{"service": "api", "version": "1"}
	for i, p := range payloads {
		params["note"] += p
		_ = i
	}
	r := e.Create("deploy-prod", params, strings.Join(payloads, " "))
	e.Deliver()
	card := e.lastCard()
	for _, s := range markdownTexts(card) {
		for _, bad := range []string{"](", "<at", "<http", "<a ", "**", "{{", "&lt;", "]["} {
			if strings.Contains(s, bad) {
				t.Errorf("request %s: markdown text %q contains %q", r.ID, s, bad)
			}
		}
	}
	raw, _ := json.Marshal(card)
	if strings.Contains(string(raw), `"mention"`) || strings.Contains(string(raw), `"entities"`) {
		t.Error("card declares mention entities")
	}
}

// ---------------------------------------------------------------------
// Floods and odd bodies
// ---------------------------------------------------------------------

// TestAttackUnlinkedClickFloodAuditBounded: a flood of validly signed clicks from many different unlinked
// accounts (the per-account limit does not help: each account clicks
// once) writes a bounded number of vote.rejected records a minute, and
// stores no conversation again; the same for clicks on unknown requests
// by a linked non-approver.
func TestAttackUnlinkedClickFloodAuditBounded(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	before := len(e.Records())
	const flood = 300
	for i := range flood {
		u := teamstest.NewUser(fmt.Sprintf("u%03d", i))
		d := e.vote(u, r.ID, VerbApprove)
		if !strings.Contains(d.message(), "Sign in") && !strings.Contains(d.message(), "sign") {
			t.Fatalf("click %d: %q", i, d.message())
		}
	}
	grew := len(e.Records()) - before
	t.Logf("%d unlinked clicks from %d accounts: %d audit records", flood, flood, grew)
	if grew > 2*approvals.CallbackRejectedPerMinute {
		t.Errorf("%d unlinked clicks wrote %d audit records in one minute", flood, grew)
	}

	eve := e.linked("eve", "dev")
	before = len(e.Records())
	for i := range flood {
		act := e.click(eve, fmt.Sprintf("req_doesnotexist%04d", i), VerbApprove, nil)
		e.send(act)
	}
	if grew := len(e.Records()) - before; grew > 2*approvals.CallbackRejectedPerMinute {
		t.Errorf("%d clicks on unknown requests wrote %d audit records in one minute", flood, grew)
	}
}

// TestAttackForgedFloodAuditBounded: a flood of forged activities (no token, bad token) costs one
// sampled record a minute per reason, and the body is never read.
func TestAttackForgedFloodAuditBounded(t *testing.T) {
	e := newEnv(t)
	before := len(e.Records())
	for i := range 300 {
		auth := ""
		if i%2 == 0 {
			auth = "Bearer " + strings.Repeat("x", 50)
		}
		e.sendRaw(bytes.Repeat([]byte("["), 1<<16), auth)
	}
	if grew := len(e.Records()) - before; grew > 2*2*approvals.CallbackRejectedPerMinute {
		t.Errorf("300 forged activities wrote %d audit records", grew)
	}
}

// TestAttackHugeAndDeepActivities: huge and deeply nested bodies from a genuine sender are answered
// 413 / 400, never 5xx or a panic.
func TestAttackHugeAndDeepActivities(t *testing.T) {
	e := newEnv(t)
	auth := e.bf.Authorization(map[string]any{"serviceUrl": e.bf.ServiceURL()})
	su, _ := json.Marshal(e.bf.ServiceURL())
	prefix := `{"type":"invoke","name":"adaptiveCard/action","channelId":"msteams","serviceUrl":` + string(su) + `,"value":`
	deep := prefix + strings.Repeat("[", 200_000) + strings.Repeat("]", 200_000) + "}"
	if rec := e.sendRaw([]byte(deep), auth); rec.Code != http.StatusBadRequest {
		t.Errorf("deep value: %d %s", rec.Code, rec.Body)
	}
	deepCD := `{"type":"message","channelId":"msteams","serviceUrl":` + string(su) + `,"channelData":` + strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_000) + "}"
	if rec := e.sendRaw([]byte(deepCD), auth); rec.Code >= 500 {
		t.Errorf("deep channelData: %d %s", rec.Code, rec.Body)
	}
	huge := prefix + `"` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}`
	if rec := e.sendRaw([]byte(huge), auth); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge: %d", rec.Code)
	}
	// A valid activity whose value is deeply nested but within the
	// decoder's depth: answered, not counted, no 5xx.
	nested := prefix + strings.Repeat(`{"action":`, 5000) + "1" + strings.Repeat("}", 5000) + `,"from":{"id":"x","aadObjectId":"aad-x"},"channelData":{"tenant":{"id":"` + e.bf.TenantID() + `"}}}`
	if rec := e.sendRaw([]byte(nested), auth); rec.Code >= 500 {
		t.Errorf("nested value: %d", rec.Code)
	}
	if _, err := url.Parse(e.bf.ServiceURL()); err != nil {
		t.Fatal(err)
	}
}
