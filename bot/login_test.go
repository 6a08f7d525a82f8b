package bot_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/devissuer"
)

const loginClientID = "signoff-cli"

// newLoginFixture is the API fixture's service and store behind a front
// door that also trusts the company IdP's ID tokens for the CLI client
// (signoff login), and serves /v1/login-config.
func newLoginFixture(t *testing.T) (*apiFixture, *devissuer.Issuer) {
	t.Helper()
	return newLoginFixtureWith(t, nil, nil)
}

// newLoginFixtureWith is newLoginFixture whose service adjust changes
// first (when set), and whose login tokens carry the values of
// personClaims (idp.person_claims) as their Handles.
func newLoginFixtureWith(t *testing.T, adjust func(*apiFixture), personClaims []string) (*apiFixture, *devissuer.Issuer) {
	t.Helper()
	base := newAPIFixture(t)
	if adjust != nil {
		adjust(base)
	}
	srv := httptest.NewUnstartedServer(nil)
	keyPath := filepath.Join(t.TempDir(), "idp.pem")
	idp, err := devissuer.New("http://"+srv.Listener.Addr().String()+"/idp", keyPath)
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
		{Name: "idp:login", Issuer: idp.URL(), Audience: loginClientID, PersonClaim: "sub", EmailClaim: "email", GroupsClaim: "groups", Login: true, HandleClaims: personClaims},
	}, oidc.VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := &apiFixture{t: t, svc: base.svc, store: base.store, ci: base.ci, logs: base.logs, idpKey: keyPath}
	f.front = bot.New(bot.Options{
		Service: base.svc, Store: base.store, Logger: slog.New(slog.DiscardHandler), Version: "test", Verifier: v,
		Login: &api.LoginConfig{Issuer: idp.URL(), ClientID: loginClientID, Scopes: []string{"openid", "email", "groups"}, GroupsClaim: "groups"},
	})
	f.api = httptest.NewServer(f.front)
	t.Cleanup(f.api.Close)
	return f, idp
}

func TestLoginConfigEndpoint(t *testing.T) {
	// Not configured: a 404 that says what is missing.
	off := newAPIFixture(t)
	resp := off.do("GET", api.LoginConfigPath, "", "")
	if resp.status != http.StatusNotFound || resp.errorCode() != api.CodeNotFound || !strings.Contains(resp.errorMessage(), "idp.cli_client_id") {
		t.Fatalf("without idp.cli_client_id: %d %s", resp.status, resp.body)
	}

	f, idp := newLoginFixture(t)
	resp = f.do("GET", api.LoginConfigPath, "", "")
	var lc api.LoginConfig
	if resp.status != http.StatusOK || json.Unmarshal(resp.body, &lc) != nil {
		t.Fatalf("login config: %d %s", resp.status, resp.body)
	}
	if lc.Issuer != idp.URL() || lc.ClientID != loginClientID || !slices.Equal(lc.Scopes, []string{"openid", "email", "groups"}) || lc.GroupsClaim != "groups" {
		t.Errorf("login config = %+v", lc)
	}
	if resp := f.do("POST", api.LoginConfigPath, "", ""); resp.status != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d %s", resp.status, resp.body)
	}
}

func TestLoginTokensServeAuditorsNotRequesters(t *testing.T) {
	f, idp := newLoginFixture(t)
	login := func(sub string, groups ...string) string {
		return mint(t, idp, sub, loginClientID, map[string]any{"groups": groups, "email": sub + "@example.com"})
	}
	auditor, plain := login("audrey", "audit"), login("dev-user", "sre")

	// Auditor endpoints take them, with their groups.
	if resp := f.do("GET", "/v1/audit", auditor, ""); resp.status != http.StatusOK {
		t.Fatalf("audit log with an auditor's login token: %d %s", resp.status, resp.body)
	}
	if resp := f.do("GET", "/v1/audit", plain, ""); resp.status != http.StatusForbidden || !strings.Contains(resp.errorMessage(), "idp.groups_claim") {
		t.Fatalf("audit log with a non-auditor's login token: %d %s", resp.status, resp.body)
	}

	// No login token creates a request, an auditor's neither.
	for name, tok := range map[string]string{"auditor": auditor, "plain": plain} {
		resp := f.do("POST", "/v1/requests", tok, validBody)
		if resp.status != http.StatusForbidden || resp.errorCode() != api.CodeForbidden || !strings.Contains(resp.errorMessage(), "login tokens are for admin and auditor endpoints") {
			t.Errorf("create with the %s login token: %d %s", name, resp.status, resp.body)
		}
	}

	// A request made by CI as dev-user: the person dev-user at the IdP is
	// not its requester, so cannot read or cancel it; an auditor reads it
	// but cancels nothing.
	req := f.create("dev-user")
	if resp := f.do("GET", "/v1/requests/"+req.ID, plain, ""); resp.status != http.StatusNotFound {
		t.Errorf("read with the requester's login token: %d %s", resp.status, resp.body)
	}
	if resp := f.do("POST", "/v1/requests/"+req.ID+"/cancel", plain, ""); resp.status != http.StatusNotFound {
		t.Errorf("cancel with the requester's login token: %d %s", resp.status, resp.body)
	}
	if resp := f.do("GET", "/v1/requests/"+req.ID, auditor, ""); resp.status != http.StatusOK {
		t.Errorf("read with an auditor's login token: %d %s", resp.status, resp.body)
	}
	if resp := f.do("POST", "/v1/requests/"+req.ID+"/cancel", auditor, ""); resp.status != http.StatusForbidden {
		t.Errorf("cancel with an auditor's login token: %d %s", resp.status, resp.body)
	}

	// An ID token of the IdP for another client is refused.
	other := mint(t, idp, "audrey", "another-client", map[string]any{"groups": []string{"audit"}})
	if resp := f.do("GET", "/v1/audit", other, ""); resp.status != http.StatusUnauthorized || !strings.Contains(resp.errorMessage(), "signoff login") {
		t.Errorf("an ID token for another client: %d %s", resp.status, resp.body)
	}
}
