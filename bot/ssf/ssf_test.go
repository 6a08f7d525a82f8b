package ssf_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot/ssf"
	"github.com/signoff-dev/signoff/bot/ssf/ssftest"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testkeys"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const (
	idpIssuer   = "https://idp.example.com"
	transmitter = "https://idp.example.com/ssf"
	receiverAud = "signoff-receiver"
)

// env is the receiver wired as serve wires it: a real bbolt store and
// approvals.Service, the SET verifier against a transmitter that publishes
// its keys on loopback, and the handler behind a real HTTP server.
type env struct {
	t      *testing.T
	clk    *clock.Fake
	tr     *ssftest.Transmitter
	dbPath string
	store  *boltstore.Store
	svc    *approvals.Service
	opts   ssf.Options
	recv   atomic.Pointer[ssf.Receiver]
	url    string
}

func newEnv(t *testing.T, configure ...func(*ssf.Options)) *env {
	t.Helper()
	e := &env{t: t, clk: clock.NewFake(t0), tr: ssftest.New(t, transmitter), dbPath: testenv.DBPath(t)}
	for _, f := range configure {
		f(&e.opts)
	}
	e.start()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != ssf.Path {
			http.NotFound(w, r)
			return
		}
		e.recv.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.url = srv.URL + ssf.Path
	return e
}

// start opens the store and builds the service, verifier and receiver, as
// a (re)started signoff does.
func (e *env) start() {
	e.t.Helper()
	e.store = testenv.OpenStoreAt(e.t, e.dbPath)
	e.svc = approvals.New(e.store, &policy.Policy{}, approvals.Options{Clock: e.clk, Logger: testenv.DiscardLogger()})
	v, err := oidc.NewSETVerifier(oidc.SETVerifierOptions{Issuer: transmitter, JWKSURL: e.tr.JWKSURL(), Audience: receiverAud, Now: e.clk.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	opts := e.opts
	opts.Verifier, opts.Links, opts.IdPIssuer, opts.Logger = v, e.svc, idpIssuer, testenv.DiscardLogger()
	r, err := ssf.New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.recv.Store(r)
}

// restart closes the store and starts again on the same file.
func (e *env) restart() {
	e.t.Helper()
	if err := e.store.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.start()
}

// link saves a link of a chat account to an identity of the IdP.
func (e *env) link(platform, workspace, user, subject, email string) {
	e.t.Helper()
	err := e.svc.SaveLink(context.Background(), storage.IdentityLink{
		Platform: platform, Workspace: workspace, PlatformUser: user,
		Issuer: idpIssuer, Subject: subject, Email: email, Groups: []string{"sre"},
		LinkedAt: e.clk.Now().Add(-time.Hour), VerifiedAt: e.clk.Now(), AuthTime: e.clk.Now().Add(-time.Hour),
		RefreshToken: []byte("sealed"), MatchedBy: "email",
	}, "")
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) links() []storage.IdentityLink {
	e.t.Helper()
	var out []storage.IdentityLink
	err := e.store.View(context.Background(), func(tx storage.ReadTx) error {
		var err error
		out, err = tx.Links(storage.LinkFilter{})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// staleAccounts names the stale links, "platform/workspace/user".
func (e *env) staleAccounts() []string {
	var out []string
	for _, l := range e.links() {
		if l.Stale {
			out = append(out, l.Platform+"/"+l.Workspace+"/"+l.PlatformUser)
		}
	}
	return out
}

// state is everything a SET may change: the links and the audit log.
func (e *env) state() string {
	e.t.Helper()
	b, err := json.Marshal(e.links())
	if err != nil {
		e.t.Fatal(err)
	}
	return fmt.Sprintf("%s\n%d audit records", b, len(testenv.AuditLines(e.t, e.store)))
}

func (e *env) records(typ string) []audit.Record {
	var out []audit.Record
	for _, r := range testenv.AuditRecords(e.t, e.store) {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// answer is a decoded refusal.
type answer struct {
	status int
	Err    oidc.SETCode `json:"err"`
	Desc   string       `json:"description"`
}

func (e *env) push(set string) answer {
	e.t.Helper()
	return e.pushAs("application/secevent+jwt", set, "")
}

func (e *env) pushAs(contentType, body, bearer string) answer {
	e.t.Helper()
	status, b := ssftest.PushAs(e.t, e.url, contentType, body, bearer)
	a := answer{status: status}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &a); err != nil {
			e.t.Fatalf("answer %d is not JSON: %q", status, b)
		}
	}
	return a
}

// set signs a SET of one event about subject (as sub_id), issued now.
func (e *env) set(eventType string, subject map[string]any) (claims map[string]any, raw string) {
	claims = e.tr.Claims(receiverAud, e.clk.Now(), eventType, nil)
	if subject != nil {
		claims["sub_id"] = subject
	}
	return claims, e.tr.Sign(e.t, claims)
}

func (e *env) stats() ssf.Stats { return e.recv.Load().Stats() }

func wantAccepted(t *testing.T, a answer) {
	t.Helper()
	if a.status != http.StatusAccepted {
		t.Fatalf("answer %d %s: %s; want 202", a.status, a.Err, a.Desc)
	}
}

// TestEachEventTypeMakesEveryLinkStale: each of the four event types makes
// every link of its subject stale at once, on every platform and in every
// workspace, audited identity.stale with the SET's jti and event type;
// other people's links are untouched.
func TestEachEventTypeMakesEveryLinkStale(t *testing.T) {
	for _, tc := range []struct{ uri, label, reason string }{
		{ssf.EventSessionRevoked, "session-revoked", "your identity provider ended your sessions"},
		{ssf.EventCredentialChange, "credential-change", "your sign-in credentials changed at your identity provider"},
		{ssf.EventAccountDisabled, "account-disabled", "your account was disabled at your identity provider"},
		{ssf.EventAccountPurged, "account-purged", "your account was deleted at your identity provider"},
	} {
		t.Run(tc.label, func(t *testing.T) {
			e := newEnv(t)
			e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
			e.link("slack", "T2", "U7", "alice-sub", "alice@example.com")
			e.link("teams", "tenant-a", "aad-1", "alice-sub", "alice@example.com")
			e.link("slack", "T1", "U2", "bob-sub", "bob@example.com")

			claims, raw := e.set(tc.uri, ssftest.IssSub(idpIssuer, "alice-sub"))
			wantAccepted(t, e.push(raw))

			want := []string{"slack/T1/U1", "slack/T2/U7", "teams/tenant-a/aad-1"}
			if got := e.staleAccounts(); !slices.Equal(got, want) {
				t.Errorf("stale links %v, want %v", got, want)
			}
			for _, l := range e.links() {
				if l.Stale && (l.StaleReason != tc.reason || l.RefreshToken != nil) {
					t.Errorf("%s: reason %q, refresh token kept %v", l.PlatformUser, l.StaleReason, l.RefreshToken != nil)
				}
			}
			recs := e.records(approvals.TypeIdentityStale)
			if len(recs) != 3 {
				t.Fatalf("%d identity.stale records, want 3", len(recs))
			}
			for _, r := range recs {
				if r.Data["jti"] != claims["jti"] || r.Data["event"] != tc.uri || r.Data["ssf_issuer"] != transmitter || r.Actor == nil || r.Actor.Subject != "alice-sub" {
					t.Errorf("record actor %+v data %v", r.Actor, r.Data)
				}
			}
			st := e.stats()
			if st.Events[ssf.EventKey{Type: tc.label, Outcome: ssf.OutcomeStale}] != 1 || st.LinksStale != 3 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestSubjectFormats: the subject is read from sub_id or from the event's
// subject, as iss_sub (the approvers' IdP issuer and subject) or email
// (ASCII case folded only), alone or inside complex or aliases.
func TestSubjectFormats(t *testing.T) {
	for _, tc := range []struct {
		name           string
		subID, subject map[string]any
		wantStale      bool
	}{
		{"sub_id iss_sub", ssftest.IssSub(idpIssuer, "alice-sub"), nil, true},
		{"sub_id email", ssftest.Email("alice@example.com"), nil, true},
		{"sub_id email in another case", ssftest.Email("ALICE@Example.COM"), nil, true},
		{"event subject iss_sub", nil, ssftest.IssSub(idpIssuer, "alice-sub"), true},
		{"event subject email", nil, ssftest.Email("Alice@example.com"), true},
		{"complex with a user", map[string]any{"format": "complex", "user": ssftest.Email("alice@example.com"),
			"session": map[string]any{"format": "opaque", "id": "s1"}}, nil, true},
		{"aliases", map[string]any{"format": "aliases", "identifiers": []any{
			map[string]any{"format": "opaque", "id": "x"}, ssftest.IssSub(idpIssuer, "alice-sub")}}, nil, true},
		{"sub_id opaque, event subject email", map[string]any{"format": "opaque", "id": "x"}, ssftest.Email("alice@example.com"), true},
		// Same subject at another issuer: another person.
		{"iss_sub of another issuer", ssftest.IssSub("https://other-idp.example.com", "alice-sub"), nil, false},
		{"iss_sub with another subject", ssftest.IssSub(idpIssuer, "ALICE-SUB"), nil, false},
		// Unicode case folding would make these equal (Kelvin sign, dotted
		// capital I); signoff folds ASCII only.
		{"email equal only under Unicode folding", ssftest.Email("\u212arissy@example.com"), nil, false},
		{"email of someone else", ssftest.Email("bob@example.com"), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
			e.link("teams", "tenant-a", "aad-1", "alice-sub", "alice@example.com")
			e.link("slack", "T1", "U3", "krissy-sub", "krissy@example.com")
			claims := e.tr.Claims(receiverAud, e.clk.Now(), ssf.EventSessionRevoked, nil)
			if tc.subID != nil {
				claims["sub_id"] = tc.subID
			}
			if tc.subject != nil {
				claims["events"] = map[string]any{ssf.EventSessionRevoked: map[string]any{"subject": tc.subject}}
			}
			wantAccepted(t, e.push(e.tr.Sign(t, claims)))
			got := e.staleAccounts()
			if tc.wantStale && !slices.Equal(got, []string{"slack/T1/U1", "teams/tenant-a/aad-1"}) {
				t.Errorf("stale %v, want alice's two links", got)
			}
			if !tc.wantStale && len(got) != 0 {
				t.Errorf("stale %v, want none", got)
			}
			outcome := ssf.OutcomeNoMatch
			if tc.wantStale {
				outcome = ssf.OutcomeStale
			}
			if n := e.stats().Events[ssf.EventKey{Type: "session-revoked", Outcome: outcome}]; n != 1 {
				t.Errorf("stats %+v, want one %s", e.stats(), outcome)
			}
		})
	}
}

// TestNextResolveAsksForANewLink: after a session-revoked SET, the
// person's next click (Linker.Resolve) gets a fresh sign-in link instead
// of their identity; someone else's click still resolves.
func TestNextResolveAsksForANewLink(t *testing.T) {
	e := newEnv(t)
	e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
	e.link("slack", "T1", "U2", "bob-sub", "bob@example.com")
	linker, err := linkflow.NewLinker(linkflow.LinkerOptions{
		Issuer: idpIssuer, ClientID: "signoff", RedirectURL: "https://signoff.example.com" + linkflow.CallbackPath,
		Store: e.store, Links: e.svc, Clock: e.clk, Logger: testenv.DiscardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	alice := linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "U1"}
	bob := linkflow.PlatformUser{Platform: "slack", Workspace: "T1", UserID: "U2"}
	if id, err := linker.Resolve(context.Background(), alice); err != nil || id.Subject != "alice-sub" {
		t.Fatalf("before the SET: %+v, %v", id, err)
	}

	_, raw := e.set(ssf.EventSessionRevoked, ssftest.Email("alice@example.com"))
	wantAccepted(t, e.push(raw))

	_, err = linker.Resolve(context.Background(), alice)
	var lr *linkflow.LinkRequiredError
	if !errors.As(err, &lr) || lr.Reason != linkflow.LinkReasonStale || lr.URL == "" || !strings.Contains(lr.Message, "your identity provider ended your sessions") {
		t.Fatalf("after the SET: %v (%+v); want a new sign-in link saying why", err, lr)
	}
	if id, err := linker.Resolve(context.Background(), bob); err != nil || id.Subject != "bob-sub" {
		t.Errorf("someone else's click: %+v, %v", id, err)
	}
}

// TestSignInAfterTheEventIsSpared: a link made by a sign-in after the
// event (the person signed in again) is not the one the event ended.
func TestSignInAfterTheEventIsSpared(t *testing.T) {
	e := newEnv(t)
	e.link("slack", "T1", "U1", "alice-sub", "alice@example.com") // signed in an hour ago
	err := e.svc.SaveLink(context.Background(), storage.IdentityLink{
		Platform: "teams", Workspace: "tenant-a", PlatformUser: "aad-1", Issuer: idpIssuer, Subject: "alice-sub",
		LinkedAt: t0, VerifiedAt: t0, AuthTime: t0.Add(-time.Minute),
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	claims := e.tr.Claims(receiverAud, t0, ssf.EventSessionRevoked, map[string]any{"event_timestamp": t0.Add(-10 * time.Minute).Unix()})
	claims["sub_id"] = ssftest.IssSub(idpIssuer, "alice-sub")
	wantAccepted(t, e.push(e.tr.Sign(t, claims)))
	if got := e.staleAccounts(); !slices.Equal(got, []string{"slack/T1/U1"}) {
		t.Errorf("stale %v, want only the sign-in from before the event", got)
	}
}

// TestIgnoredAndUnmatchedSETs: an event type signoff does not act on, and
// a subject nobody is linked as, are accepted (202), change nothing and
// are counted.
func TestIgnoredAndUnmatchedSETs(t *testing.T) {
	e := newEnv(t)
	e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
	before := e.state()

	_, raw := e.set("https://schemas.openid.net/secevent/caep/event-type/token-claims-change", ssftest.IssSub(idpIssuer, "alice-sub"))
	wantAccepted(t, e.push(raw))
	_, raw = e.set(ssf.EventVerification, nil)
	wantAccepted(t, e.push(raw))
	_, raw = e.set(ssf.EventAccountDisabled, ssftest.Email("nobody@example.com"))
	wantAccepted(t, e.push(raw))

	if after := e.state(); after != before {
		t.Errorf("state changed:\n%s\n->\n%s", before, after)
	}
	st := e.stats()
	for k, want := range map[ssf.EventKey]uint64{
		{Type: "other", Outcome: ssf.OutcomeIgnored}:                       1,
		{Type: "verification", Outcome: ssf.OutcomeIgnored}:                1,
		{Type: "account-disabled", Outcome: ssf.OutcomeNoMatch}:            1,
		{Type: "account-disabled", Outcome: ssf.OutcomeStale}:              0,
		{Type: "session-revoked", Outcome: ssf.OutcomeUnchanged}:           0,
		{Type: "other", Outcome: string(oidc.SETErrInvalidRequest)}:        0,
		{Type: "unverified", Outcome: string(oidc.SETErrInvalidRequest)}:   0,
		{Type: "verification", Outcome: string(oidc.SETErrInvalidRequest)}: 0,
	} {
		if st.Events[k] != want {
			t.Errorf("events{%s,%s} = %d, want %d", k.Type, k.Outcome, st.Events[k], want)
		}
	}
	// A link already stale is counted unchanged.
	_, raw = e.set(ssf.EventSessionRevoked, ssftest.IssSub(idpIssuer, "alice-sub"))
	wantAccepted(t, e.push(raw))
	_, raw = e.set(ssf.EventCredentialChange, ssftest.IssSub(idpIssuer, "alice-sub"))
	wantAccepted(t, e.push(raw))
	if n := e.stats().Events[ssf.EventKey{Type: "credential-change", Outcome: ssf.OutcomeUnchanged}]; n != 1 {
		t.Errorf("a SET about an already stale link: %+v", e.stats())
	}
}

// TestReplayRefused: a SET is accepted once; the same jti again is refused
// with invalid_request and changes nothing, also after signoff restarts
// (the jti is in the store, not in memory).
func TestReplayRefused(t *testing.T) {
	e := newEnv(t)
	e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
	claims, raw := e.set(ssf.EventSessionRevoked, ssftest.IssSub(idpIssuer, "alice-sub"))
	wantAccepted(t, e.push(raw))

	// Linked again after the event; a replay must not end this link.
	if err := e.svc.SaveLink(context.Background(), storage.IdentityLink{
		Platform: "slack", Workspace: "T1", PlatformUser: "U1", Issuer: idpIssuer, Subject: "alice-sub",
		LinkedAt: t0, VerifiedAt: t0,
	}, ""); err != nil {
		t.Fatal(err)
	}
	// A new SET, signed anew, with the jti used before: a replay too.
	claims["iat"] = t0.Add(time.Minute).Unix()
	resigned := e.tr.Sign(t, claims)
	e.clk.Advance(2 * time.Minute)
	before := e.state()
	for i, set := range []string{raw, resigned, raw} {
		if i == 2 {
			e.restart()
		}
		a := e.push(set)
		if a.status != http.StatusBadRequest || a.Err != oidc.SETErrInvalidRequest || !strings.Contains(a.Desc, "received before") {
			t.Errorf("replay %d: %d %s %q; want 400 invalid_request", i, a.status, a.Err, a.Desc)
		}
		if after := e.state(); after != before {
			t.Errorf("replay %d changed the state", i)
		}
	}
	if n := e.stats().Refusals[ssf.RefusalKey{Err: oidc.SETErrInvalidRequest, Reason: ssf.ReasonReplayed}]; n != 1 {
		t.Errorf("replay after the restart counted %d times, want 1 (the counters restart too)", n)
	}
	// Past the accepted age the SET is refused for its age: its jti may be
	// forgotten by then.
	e.clk.Advance(oidc.DefaultSETMaxAge)
	if a := e.push(raw); a.Err != oidc.SETErrInvalidRequest || !strings.Contains(a.Desc, "ago") {
		t.Errorf("replay after the window: %d %s %q", a.status, a.Err, a.Desc)
	}
}

// TestRefusals: every refusal answers 400 with RFC 8935's err code (or 503
// when the SET cannot be checked now), changes nothing, uses up no jti and
// is counted in the metrics by err and reason.
func TestRefusals(t *testing.T) {
	e := newEnv(t)
	e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
	before := e.state()
	now := e.clk.Now()
	attacker := ssftest.NewKey(t, e.tr.Key.KID, "ES256")
	stranger := ssftest.NewKey(t, "unknown-kid", "ES256")
	const jti = "refused-jti"

	claims := func(change map[string]any) map[string]any {
		c := e.tr.Claims(receiverAud, now, ssf.EventSessionRevoked, nil)
		c["jti"] = jti
		c["sub_id"] = ssftest.IssSub(idpIssuer, "alice-sub")
		return testkeys.Claims(c, change)
	}
	signed := func(change map[string]any) string { return e.tr.Sign(t, claims(change)) }
	valid := signed(nil)
	parts := strings.Split(valid, ".")
	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return base64URL(b)
	}

	cases := []struct {
		name, contentType, body string
		status                  int
		err                     oidc.SETCode
		reason                  oidc.SETReason
	}{
		{"signed by another key under the transmitter's kid", "", attacker.Sign(t, claims(nil)), 400, oidc.SETErrInvalidKey, oidc.SETReasonBadSignature},
		{"payload altered after signing", "", parts[0] + "." + b64(claims(map[string]any{"sub_id": ssftest.Email("bob@example.com")})) + "." + parts[2], 400, oidc.SETErrInvalidKey, oidc.SETReasonBadSignature},
		{"unknown kid", "", stranger.Sign(t, claims(nil)), 400, oidc.SETErrInvalidKey, oidc.SETReasonUnknownKey},
		{"alg none", "", b64(map[string]any{"alg": "none", "typ": "secevent+jwt"}) + "." + parts[1] + ".", 400, oidc.SETErrInvalidKey, oidc.SETReasonBadAlgorithm},
		{"HS256 keyed with the public key", "", hs256(b64(map[string]any{"alg": "HS256", "typ": "secevent+jwt", "kid": e.tr.Key.KID})+"."+parts[1], e.tr.Key.PublicKeyBytes(t)), 400, oidc.SETErrInvalidKey, oidc.SETReasonBadAlgorithm},
		{"wrong iss", "", signed(map[string]any{"iss": "https://evil.example.com"}), 400, oidc.SETErrInvalidIssuer, oidc.SETReasonWrongIssuer},
		{"wrong aud", "", signed(map[string]any{"aud": "another-receiver"}), 400, oidc.SETErrInvalidAudience, oidc.SETReasonWrongAudience},
		{"no aud", "", signed(map[string]any{"aud": nil}), 400, oidc.SETErrInvalidAudience, oidc.SETReasonWrongAudience},
		{"no jti", "", signed(map[string]any{"jti": nil}), 400, oidc.SETErrInvalidRequest, oidc.SETReasonMissingJTI},
		{"no iat", "", signed(map[string]any{"iat": nil}), 400, oidc.SETErrInvalidRequest, oidc.SETReasonMissingIAT},
		{"iat in the future", "", signed(map[string]any{"iat": now.Add(5 * time.Minute).Unix()}), 400, oidc.SETErrInvalidRequest, oidc.SETReasonIATInFuture},
		{"iat too old", "", signed(map[string]any{"iat": now.Add(-25 * time.Hour).Unix()}), 400, oidc.SETErrInvalidRequest, oidc.SETReasonIATTooOld},
		{"typ of another kind of token", "", e.tr.Key.SignWith(t, claims(nil), map[string]any{"typ": "JWT"}), 400, oidc.SETErrInvalidRequest, oidc.SETReasonWrongType},
		{"no events", "", signed(map[string]any{"events": nil}), 400, oidc.SETErrInvalidRequest, oidc.SETReasonNoEvents},
		{"no subject", "", signed(map[string]any{"sub_id": nil}), 400, oidc.SETErrInvalidRequest, ssf.ReasonNoSubject},
		{"subject of an unsupported format", "", signed(map[string]any{"sub_id": map[string]any{"format": "phone_number", "phone_number": "+1 555 0100"}}), 400, oidc.SETErrInvalidRequest, ssf.ReasonUnsupportedSubject},
		{"iss_sub without sub", "", signed(map[string]any{"sub_id": map[string]any{"format": "iss_sub", "iss": idpIssuer}}), 400, oidc.SETErrInvalidRequest, ssf.ReasonUnsupportedSubject},
		{"malformed body", "", "this is not a SET", 400, oidc.SETErrInvalidRequest, oidc.SETReasonMalformed},
		{"empty body", "", "", 400, oidc.SETErrInvalidRequest, oidc.SETReasonMalformed},
		{"encrypted SET", "", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", 400, oidc.SETErrInvalidRequest, oidc.SETReasonMalformed},
		{"claims not JSON", "", e.tr.Key.Sign(t, nil), 400, oidc.SETErrInvalidRequest, oidc.SETReasonMalformed},
		{"body too large", "", strings.Repeat("a", oidc.MaxSETBytes+10), 400, oidc.SETErrInvalidRequest, ssf.ReasonTooLarge},
		{"content type JSON", "application/json", valid, 400, oidc.SETErrInvalidRequest, ssf.ReasonContentType},
		{"content type JWT", "application/jwt", valid, 400, oidc.SETErrInvalidRequest, ssf.ReasonContentType},
		{"no content type", "-", valid, 400, oidc.SETErrInvalidRequest, ssf.ReasonContentType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := "application/secevent+jwt"
			switch tc.contentType {
			case "":
			case "-":
				ct = ""
			default:
				ct = tc.contentType
			}
			a := e.pushAs(ct, tc.body, "")
			if a.status != tc.status || a.Err != tc.err || a.Desc == "" {
				t.Errorf("answer %d %q %q, want %d %s", a.status, a.Err, a.Desc, tc.status, tc.err)
			}
			if len(tc.body) > 40 && strings.Contains(a.Desc, tc.body[:40]) {
				t.Error("the description repeats the SET")
			}
			if after := e.state(); after != before {
				t.Errorf("a refused SET changed the state:\n%s\n->\n%s", before, after)
			}
			if n := e.stats().Refusals[ssf.RefusalKey{Err: tc.err, Reason: tc.reason}]; n == 0 {
				t.Errorf("refusal %s/%s not counted: %+v", tc.err, tc.reason, e.stats().Refusals)
			}
		})
	}
	var refused uint64
	for k, n := range e.stats().Events {
		if k.Outcome == ssf.OutcomeStale || k.Outcome == ssf.OutcomeNoMatch || k.Outcome == ssf.OutcomeIgnored || k.Outcome == ssf.OutcomeUnchanged {
			t.Errorf("a refused SET counted as %+v", k)
		}
		refused += n
	}
	if refused != uint64(len(cases)) {
		t.Errorf("%d refusals counted, want %d", refused, len(cases))
	}
	// Nothing refused used the jti up: the valid SET carrying it is
	// accepted now.
	wantAccepted(t, e.push(valid))
	if got := e.staleAccounts(); !slices.Equal(got, []string{"slack/T1/U1"}) {
		t.Errorf("after the valid SET: stale %v", got)
	}
}

// TestBearerToken: with ssf.bearer_token set, a push without it or with
// another is refused with authentication_failed before its SET is looked
// at; with it, accepted.
func TestBearerToken(t *testing.T) {
	token := strings.Repeat("t0k3n", 8)
	e := newEnv(t, func(o *ssf.Options) { o.BearerToken = token })
	e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
	_, raw := e.set(ssf.EventSessionRevoked, ssftest.IssSub(idpIssuer, "alice-sub"))
	before := e.state()
	for name, bearer := range map[string]string{"no token": "", "another token": token + "x", "a prefix": token[:10]} {
		a := e.pushAs("application/secevent+jwt", raw, bearer)
		if a.status != http.StatusBadRequest || a.Err != ssf.ErrAuthenticationFailed || strings.Contains(a.Desc, token) {
			t.Errorf("%s: %d %s %q", name, a.status, a.Err, a.Desc)
		}
	}
	if after := e.state(); after != before {
		t.Error("an unauthenticated push changed the state")
	}
	if e.tr.JWKSHits() != 0 {
		t.Error("an unauthenticated push made signoff fetch the transmitter's keys")
	}
	st := e.stats()
	if st.Refusals[ssf.RefusalKey{Err: ssf.ErrAuthenticationFailed, Reason: ssf.ReasonNoToken}] != 1 ||
		st.Refusals[ssf.RefusalKey{Err: ssf.ErrAuthenticationFailed, Reason: ssf.ReasonBadToken}] != 2 {
		t.Errorf("stats %+v", st.Refusals)
	}
	wantAccepted(t, e.pushAs("application/secevent+jwt", raw, token))
	if got := e.staleAccounts(); len(got) != 1 {
		t.Errorf("with the token: stale %v", got)
	}
}

// TestKeysUnavailable: while the transmitter's keys cannot be fetched, a
// SET is answered 503 with Retry-After (deliver again), nothing changes,
// and the same SET is accepted once the keys are back.
func TestKeysUnavailable(t *testing.T) {
	e := newEnv(t)
	e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
	e.tr.SetDown(true)
	_, raw := e.set(ssf.EventAccountDisabled, ssftest.IssSub(idpIssuer, "alice-sub"))
	before := e.state()

	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(raw))
	req.Header.Set("Content-Type", ssf.ContentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("keys down: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if e.state() != before {
		t.Error("state changed while the keys were down")
	}
	if n := e.stats().Refusals[ssf.RefusalKey{Err: "temporarily_unavailable", Reason: oidc.SETReasonKeysUnavailable}]; n != 1 {
		t.Errorf("stats %+v", e.stats().Refusals)
	}
	e.tr.SetDown(false)
	e.clk.Advance(oidc.DefaultDiscoveryRetry)
	wantAccepted(t, e.push(raw))
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// hs256 signs signingInput with HMAC-SHA256, as an attacker who keys it
// with the transmitter's public key would.
func hs256(signingInput string, key []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signingInput))
	return signingInput + "." + base64URL(mac.Sum(nil))
}
