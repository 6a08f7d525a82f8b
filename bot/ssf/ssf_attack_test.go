package ssf_test

// Attacks on the Shared Signals receiver.

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/bot/ssf"
	"github.com/signoff-dev/signoff/bot/ssf/ssftest"
	"github.com/signoff-dev/signoff/oidc"
)

// TestAttackAttackerKeyWithTransmittersKidRefused: an attacker key that reuses the transmitter's kid (kid injection),
// or carries its own public key in the header (jwk), is refused with
// invalid_key and changes nothing.
func TestAttackAttackerKeyWithTransmittersKidRefused(t *testing.T) {
	e := newEnv(t)
	e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
	before := e.state()

	attacker := ssftest.NewKey(t, "ssf-key-1", jose.ES256) // same kid as the transmitter's
	claims := e.tr.Claims(receiverAud, e.clk.Now(), ssf.EventAccountDisabled, nil)
	claims["sub_id"] = ssftest.IssSub(idpIssuer, "alice-sub")

	for name, raw := range map[string]string{
		"same kid":     attacker.Sign(t, claims),
		"embedded jwk": attacker.SignWith(t, claims, map[string]any{"jwk": attacker.Public()}),
		"no kid, jwk":  ssftest.NewKey(t, "", jose.ES256).SignWith(t, claims, map[string]any{"jwk": attacker.Public()}),
	} {
		a := e.push(raw)
		if a.status != http.StatusBadRequest || a.Err != oidc.SETErrInvalidKey {
			t.Errorf("%s: answer %d %s (%s), want 400 invalid_key", name, a.status, a.Err, a.Desc)
		}
	}
	if got := e.state(); got != before {
		t.Fatalf("state changed by forged SETs:\n%s\nwas\n%s", got, before)
	}
}

// TestAttackSubjectLookalikesEndNothing: subject formats that must not match — a different case in an
// iss_sub's sub, a subject of another issuer, an email equal only under
// Unicode folding, opaque, an alias list of only unsupported formats —
// end nobody's link; an opaque-only SET is refused so the transmitter
// sees it.
func TestAttackSubjectLookalikesEndNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sub     map[string]any
		wantErr oidc.SETCode // "" = 202
	}{
		{"sub in other case", ssftest.IssSub(idpIssuer, "ALICE-SUB"), ""},
		{"sub with trailing space", ssftest.IssSub(idpIssuer, "alice-sub "), ""},
		{"issuer with trailing slash", ssftest.IssSub(idpIssuer+"/", "alice-sub"), ""},
		{"transmitter as issuer", ssftest.IssSub(transmitter, "alice-sub"), ""},
		{"kelvin sign in email", ssftest.Email("\u212aim@example.com"), ""},
		{"email local part prefix", ssftest.Email("kim@example.co"), ""},
		{"opaque", map[string]any{"format": "opaque", "id": "alice-sub"}, oidc.SETErrInvalidRequest},
		{"aliases of opaque only", map[string]any{"format": "aliases", "identifiers": []any{map[string]any{"format": "opaque", "id": "alice-sub"}}}, oidc.SETErrInvalidRequest},
		{"format in upper case", map[string]any{"format": "EMAIL", "email": "kim@example.com"}, oidc.SETErrInvalidRequest},
		{"complex nested in aliases", map[string]any{"format": "aliases", "identifiers": []any{map[string]any{"format": "complex", "user": ssftest.Email("kim@example.com")}}}, oidc.SETErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
			e.link("slack", "T1", "U3", "kim-sub", "kim@example.com")
			_, raw := e.set(ssf.EventAccountDisabled, tc.sub)
			a := e.push(raw)
			if tc.wantErr == "" && a.status != http.StatusAccepted {
				t.Fatalf("answer %d %s: %s; want 202", a.status, a.Err, a.Desc)
			}
			if tc.wantErr != "" && (a.status != http.StatusBadRequest || a.Err != tc.wantErr) {
				t.Fatalf("answer %d %s: %s; want 400 %s", a.status, a.Err, a.Desc, tc.wantErr)
			}
			if s := e.staleAccounts(); len(s) != 0 {
				t.Fatalf("links made stale: %v", s)
			}
		})
	}
}

// TestAttackRightPersonEndedThroughCaseAndAliases: the right person's links end whatever the email's ASCII case and
// surrounding space, and an alias list whose first identifier is
// unsupported still ends the links its email names.
func TestAttackRightPersonEndedThroughCaseAndAliases(t *testing.T) {
	for name, sub := range map[string]map[string]any{
		"upper-case email": ssftest.Email("ALICE@Example.COM"),
		"aliases with opaque first": {"format": "aliases", "identifiers": []any{
			map[string]any{"format": "opaque", "id": "x"}, ssftest.Email("alice@example.com")}},
		"complex user iss_sub": {"format": "complex", "user": ssftest.IssSub(idpIssuer, "alice-sub"),
			"tenant": map[string]any{"format": "opaque", "id": "t"}},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
			e.link("slack", "T1", "U2", "bob-sub", "bob@example.com")
			_, raw := e.set(ssf.EventSessionRevoked, sub)
			wantAccepted(t, e.push(raw))
			if got := e.staleAccounts(); !slices.Equal(got, []string{"slack/T1/U1"}) {
				t.Fatalf("stale %v, want only alice's", got)
			}
		})
	}
}

// TestAttackFloodsDoNotGrowTheAuditLog: a flood of valid SETs about a person whose links are already
// stale adds no audit record (only the first one changes anything), and a
// flood of pushes without the bearer token or with forged signatures adds
// none and consumes no jti.
func TestAttackFloodsDoNotGrowTheAuditLog(t *testing.T) {
	e := newEnv(t, func(o *ssf.Options) { o.BearerToken = "bearer-token-of-at-least-32-characters!" })
	e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
	sub := ssftest.IssSub(idpIssuer, "alice-sub")
	_, first := e.set(ssf.EventSessionRevoked, sub)
	if a := e.pushAs(ssf.ContentType, first, "bearer-token-of-at-least-32-characters!"); a.status != http.StatusAccepted {
		t.Fatalf("first: %d %s %s", a.status, a.Err, a.Desc)
	}
	after := e.state()
	attacker := ssftest.NewKey(t, "ssf-key-1", jose.ES256)
	for range 30 {
		_, raw := e.set(ssf.EventSessionRevoked, sub)
		if a := e.pushAs(ssf.ContentType, raw, "bearer-token-of-at-least-32-characters!"); a.status != http.StatusAccepted {
			t.Fatalf("repeat: %d %s", a.status, a.Err)
		}
		if a := e.pushAs(ssf.ContentType, raw, "wrong"); a.status != http.StatusBadRequest || a.Err != ssf.ErrAuthenticationFailed {
			t.Fatalf("no token: %d %s", a.status, a.Err)
		}
		claims := e.tr.Claims(receiverAud, e.clk.Now(), ssf.EventSessionRevoked, nil)
		claims["sub_id"] = sub
		if a := e.pushAs(ssf.ContentType, attacker.Sign(t, claims), "bearer-token-of-at-least-32-characters!"); a.Err != oidc.SETErrInvalidKey {
			t.Fatalf("forged: %d %s", a.status, a.Err)
		}
	}
	if got := e.state(); got != after {
		t.Fatalf("flood changed links or audit log:\n%s\nwas\n%s", got, after)
	}
}

// TestAttackJTINotBurntByRefusalAndReplayAcrossSubjects: a SET refused for its subject (opaque) or for an unknown
// subject-less event uses no jti: the corrected SET with the same jti is
// accepted; and a replay of an accepted jti is refused even when the
// replay names another subject.
func TestAttackJTINotBurntByRefusalAndReplayAcrossSubjects(t *testing.T) {
	e := newEnv(t)
	e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
	e.link("slack", "T1", "U2", "bob-sub", "bob@example.com")
	claims, raw := e.set(ssf.EventSessionRevoked, map[string]any{"format": "opaque", "id": "x"})
	if a := e.push(raw); a.Err != oidc.SETErrInvalidRequest {
		t.Fatalf("opaque: %d %s", a.status, a.Err)
	}
	claims["sub_id"] = ssftest.IssSub(idpIssuer, "alice-sub")
	wantAccepted(t, e.push(e.tr.Sign(t, claims)))
	claims["sub_id"] = ssftest.IssSub(idpIssuer, "bob-sub")
	if a := e.push(e.tr.Sign(t, claims)); a.status != http.StatusBadRequest || a.Err != oidc.SETErrInvalidRequest {
		t.Fatalf("replayed jti for another subject: %d %s", a.status, a.Err)
	}
	if got := e.staleAccounts(); !slices.Equal(got, []string{"slack/T1/U1"}) {
		t.Fatalf("stale %v", got)
	}
}

// TestAttackEventsOfTwoSubjectsRefused: the events of one SET are applied
// as one, under one reason and time. A SET whose session-revoked event
// names alice and whose account-disabled event names bob would end both
// links and tell alice bob's reason; it is refused, ending nobody's link,
// so that the transmitter sends one SET per subject.
func TestAttackEventsOfTwoSubjectsRefused(t *testing.T) {
	e := newEnv(t)
	e.link("slack", "T1", "U1", "alice-sub", "alice@example.com")
	e.link("slack", "T1", "U2", "bob-sub", "bob@example.com")
	before := e.state()
	claims := e.tr.Claims(receiverAud, e.clk.Now(), ssf.EventSessionRevoked, map[string]any{"subject": ssftest.IssSub(idpIssuer, "alice-sub")})
	claims["events"].(map[string]any)[ssf.EventAccountDisabled] = map[string]any{"subject": ssftest.IssSub(idpIssuer, "bob-sub")}
	a := e.push(e.tr.Sign(t, claims))
	if a.status != http.StatusBadRequest || a.Err != oidc.SETErrInvalidRequest || !strings.Contains(a.Desc, "different subjects") {
		t.Fatalf("answer %d %s: %s; want 400 invalid_request naming different subjects", a.status, a.Err, a.Desc)
	}
	if e.state() != before {
		t.Fatalf("a refused SET changed links: %v", e.staleAccounts())
	}

	// The same two events about one person are applied as one.
	claims = e.tr.Claims(receiverAud, e.clk.Now(), ssf.EventSessionRevoked, map[string]any{"subject": ssftest.IssSub(idpIssuer, "alice-sub")})
	claims["events"].(map[string]any)[ssf.EventAccountDisabled] = map[string]any{"subject": ssftest.IssSub(idpIssuer, "alice-sub")}
	wantAccepted(t, e.push(e.tr.Sign(t, claims)))
	if got := e.staleAccounts(); len(got) != 1 {
		t.Fatalf("stale accounts %v, want alice's only", got)
	}
}
