package bot_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/devissuer"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// The person reviewed may not end or lift their own review with a signoff
// login token either: the IdP names them by idp.person_claims (here a
// custom github_login attribute holding their CI login), as the
// no-self-approval rule reads those claims from the same IdP's sign-ins.
func TestBreakGlassReviewedAdminLoginTokenIsMatchedByIdPPersonClaims(t *testing.T) {
	base := newAPIFixture(t)
	base.svc.Policy().Actions["deploy"].BreakGlass = &policy.BreakGlass{
		Groups: []string{"oncall"},
		Review: policy.Approvers{Groups: []string{"sre-leads"}, MinApprovals: 1},
		Within: 24 * time.Hour,
	}
	srv := httptest.NewUnstartedServer(nil)
	idp, err := devissuer.New("http://"+srv.Listener.Addr().String()+"/idp", filepath.Join(t.TempDir(), "idp.pem"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/idp/", idp.Handler())
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	v, err := oidc.NewRequesterVerifier([]oidc.TrustedIssuer{
		{Name: "ci", Issuer: base.ci.URL(), Audience: "signoff", PersonClaim: "actor", NameClaim: "name", EmailClaim: "email", GroupsClaim: "groups"},
		{Name: "idp:login", Issuer: idp.URL(), Audience: loginClientID, PersonClaim: "sub", NameClaim: "name", EmailClaim: "email", GroupsClaim: "groups", Login: true},
	}, oidc.VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := &apiFixture{t: t, svc: base.svc, store: base.store, ci: base.ci, logs: base.logs}
	f.front = bot.New(bot.Options{
		Service: base.svc, Store: base.store, Logger: slog.New(slog.DiscardHandler), Version: "test", Verifier: v,
		Login:        &api.LoginConfig{Issuer: idp.URL(), ClientID: loginClientID, Scopes: []string{"openid"}, GroupsClaim: "groups"},
		PersonClaims: []string{"github_login"},
	})
	f.api = httptest.NewServer(f.front)
	t.Cleanup(f.api.Close)

	// alice breaks glass from CI (her GitHub login is the person).
	created := f.do("POST", "/v1/requests", f.token("alice", map[string]any{"groups": []any{"oncall"}}), breakGlassBody)
	if created.status != http.StatusCreated {
		t.Fatalf("break-glass: %d %s", created.status, created.body)
	}
	reviewID := created.view(t).BreakGlass.Review

	// The same alice, signed in at the IdP as an admin: her subject, email
	// and preferred_username are not her GitHub login; github_login is.
	aliceAdmin := mint(t, idp, "00u-alice", loginClientID, map[string]any{
		"groups": []string{"signoff-admins"}, "email": "alice.smith@corp.example",
		"preferred_username": "asmith", "github_login": "Alice",
	})
	reason := `{"reason":"I say it was justified"}`
	if x := f.do("POST", "/v1/requests/"+reviewID+"/cancel", aliceAdmin, reason); x.status != http.StatusForbidden || !strings.Contains(x.errorMessage(), "your own break-glass") {
		t.Fatalf("the person reviewed cancelled their own pending review with a login token: %d %s", x.status, x.body)
	}

	if _, err := f.svc.Vote(context.Background(), approvals.VoteInput{
		RequestID: reviewID, Decision: storage.DecisionDeny, Reason: "no incident",
		Source:   approvals.Source{Platform: "dev", PlatformUser: "lead"},
		Approver: oidc.Identity{Issuer: "https://idp.example", Subject: "lead", Groups: []string{"sre-leads"}, VerifiedAt: time.Now()},
	}); err != nil {
		t.Fatalf("deny the review: %v", err)
	}
	if x := f.do("POST", "/v1/requests/"+reviewID+"/lift-block", aliceAdmin, reason); x.status != http.StatusForbidden || !strings.Contains(x.errorMessage(), "your own break-glass") {
		t.Fatalf("the person reviewed lifted their own block with a login token: %d %s", x.status, x.body)
	}

	// Another admin's login token still may.
	bobAdmin := mint(t, idp, "00u-bob", loginClientID, map[string]any{
		"groups": []string{"signoff-admins"}, "email": "bob@corp.example", "github_login": "bob",
	})
	if x := f.do("POST", "/v1/requests/"+reviewID+"/lift-block", bobAdmin, `{"reason":"postmortem: justified"}`); x.status != http.StatusOK {
		t.Fatalf("another admin's lift: %d %s", x.status, x.body)
	}
}
