package bot_test

import (
	"context"
	"crypto"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/attest"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/bot/chatlimit"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testkeys"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/devissuer"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// apiFixture is the CI API over a real service, a real bbolt store and a
// real OIDC verifier that trusts two dev issuers served on loopback.
type apiFixture struct {
	t     testing.TB
	svc   *approvals.Service
	store storage.Store
	front *bot.Server
	api   *httptest.Server
	// ci is trusted as requester issuer "ci" (person claim actor, groups
	// claim groups); other as "other", which no action rule names.
	ci, other *devissuer.Issuer
	// forged signs with another key but claims ci's issuer URL; rogue is
	// an issuer nobody trusts.
	forged, rogue *devissuer.Issuer
	// idpKey is the key file of the login fixture's IdP (newLoginFixture),
	// for tests that sign what that IdP's Mint would not.
	idpKey string
	// clockOffset shifts the verifier's clock (to make tokens expire).
	clockOffset atomic.Int64
	logs        *testenv.LogBuffer
	// entered receives the path of each API request as it arrives, when
	// not nil (long-poll tests use it to act while the server waits).
	entered chan string
	// attest signs the service's approval attestations with attestKey,
	// as issuer attestIssuer; the front door publishes its keys.
	attest    *attest.Signer
	attestKey crypto.Signer
}

// attestIssuer is the public_url the fixture's attestations name.
const attestIssuer = "https://signoff.example.com"

func testPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	pat, err := policy.CompilePattern("[a-z-]+")
	if err != nil {
		t.Fatal(err)
	}
	return &policy.Policy{
		AuditorGroups: []string{"audit"},
		AdminGroups:   []string{"signoff-admins"},
		Actions: map[string]*policy.Action{
			"deploy": {
				Name:       "deploy",
				Requesters: []policy.RequesterRule{{Issuer: "ci", Claims: map[string]string{"repository": "acme/*"}}},
				Params: map[string]policy.Param{
					"service": {Required: true, Pattern: pat},
					"version": {Required: true},
				},
				Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
				TTL:       time.Hour,
			},
		},
	}
}

// apiLimits, given to newAPIFixture, sets the limits: the pending cap on
// the service, the others on the front door (on clock). platforms are the
// chat platforms the service queues cards for (none unless set).
type apiLimits struct {
	requestsPerMinute, pendingPerRequester int
	clicks                                 *chatlimit.Limiter
	clock                                  clock.Clock
	platforms                              []string
}

func newAPIFixture(t testing.TB, limits ...apiLimits) *apiFixture {
	t.Helper()
	var lim apiLimits
	for _, l := range limits {
		lim = l
	}
	dir := t.TempDir()
	f := &apiFixture{t: t, logs: &testenv.LogBuffer{}}

	// The issuers, all on one loopback server.
	idp := httptest.NewUnstartedServer(nil)
	base := "http://" + idp.Listener.Addr().String()
	var err error
	newIssuer := func(path, key string) *devissuer.Issuer {
		iss, err := devissuer.New(base+path, filepath.Join(dir, key))
		if err != nil {
			t.Fatalf("devissuer %s: %v", path, err)
		}
		return iss
	}
	f.ci = newIssuer("/ci", "ci.pem")
	f.other = newIssuer("/other", "other.pem")
	f.rogue = newIssuer("/rogue", "rogue.pem")
	f.forged = newIssuer("/ci", "forged.pem")
	mux := http.NewServeMux()
	mux.Handle("/ci/", f.ci.Handler())
	mux.Handle("/other/", f.other.Handler())
	mux.Handle("/rogue/", f.rogue.Handler())
	idp.Config.Handler = mux
	idp.Start()
	t.Cleanup(idp.Close)

	verifier, err := oidc.NewRequesterVerifier([]oidc.TrustedIssuer{
		{Name: "ci", Issuer: f.ci.URL(), Audience: "signoff", PersonClaim: "actor", NameClaim: "name", EmailClaim: "email", GroupsClaim: "groups"},
		{Name: "other", Issuer: f.other.URL(), Audience: "signoff"},
	}, oidc.VerifierOptions{
		Now: func() time.Time { return time.Now().Add(time.Duration(f.clockOffset.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}

	st, err := boltstore.Open(filepath.Join(dir, "signoff.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.store = st
	logger := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if f.attestKey, err = attest.GenerateKey(false); err != nil {
		t.Fatal(err)
	}
	if f.attest, err = attest.NewSigner(attest.SignerOptions{Issuer: attestIssuer, Key: f.attestKey}); err != nil {
		t.Fatal(err)
	}
	f.svc = approvals.New(st, testPolicy(t), approvals.Options{Logger: logger, PendingPerRequester: lim.pendingPerRequester, Attester: f.attest, Platforms: lim.platforms})
	f.front = bot.New(bot.Options{
		Service: f.svc, Store: st, Logger: logger, Version: "test", Verifier: verifier, Attestations: f.attest,
		RequestURL:        func(id string) string { return "http://console.example/dev#" + id },
		RequestsPerMinute: lim.requestsPerMinute, Clicks: lim.clicks, Clock: lim.clock,
	})
	f.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.entered != nil {
			select {
			case f.entered <- r.URL.Path:
			default:
			}
		}
		f.front.ServeHTTP(w, r)
	}))
	t.Cleanup(f.api.Close)
	return f
}

// token mints a ci token for sub with repository acme/api, actor sub and
// the extra claims, merged in as testkeys.Claims does (they override
// those; a nil value leaves the claim out).
func (f *apiFixture) token(sub string, extra map[string]any) string {
	f.t.Helper()
	claims := testkeys.Claims(map[string]any{"repository": "acme/api", "actor": sub}, extra)
	return mint(f.t, f.ci, sub, "signoff", claims)
}

func mint(t testing.TB, iss *devissuer.Issuer, sub, aud string, claims map[string]any) string {
	t.Helper()
	tok, err := iss.Mint(sub, aud, claims, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errorCode() api.Code {
	var eb api.ErrorBody
	_ = json.Unmarshal(r.body, &eb)
	return eb.Error.Code
}

func (r response) errorMessage() string {
	var eb api.ErrorBody
	_ = json.Unmarshal(r.body, &eb)
	return eb.Error.Message
}

func (r response) view(t testing.TB) api.Request {
	t.Helper()
	var v api.Request
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode view (%d): %v: %s", r.status, err, r.body)
	}
	return v
}

// do sends one API call; token "" sends no Authorization header. headers
// are name, value pairs.
func (f *apiFixture) do(method, path, token, body string, headers ...string) response {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, f.api.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := f.api.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

const validBody = `{"action":"deploy","params":{"service":"api","version":"1.4.2"},"reason":"release","links":[{"title":"CI run","url":"https://ci.example/run/1"}]}`

// create makes a request as sub and returns it.
func (f *apiFixture) create(sub string) api.Request {
	f.t.Helper()
	resp := f.do("POST", "/v1/requests", f.token(sub, nil), validBody)
	if resp.status != http.StatusCreated {
		f.t.Fatalf("create: %d %s", resp.status, resp.body)
	}
	return resp.view(f.t)
}

func (f *apiFixture) vote(id, approver string, d storage.Decision) {
	f.t.Helper()
	_, err := f.svc.Vote(context.Background(), approvals.VoteInput{
		RequestID: id,
		Decision:  d,
		Reason:    "looks fine",
		Source:    approvals.Source{Platform: "dev", PlatformUser: approver},
		Approver:  oidc.Identity{Issuer: "https://idp.example", Subject: approver, Groups: []string{"sre"}, VerifiedAt: time.Now()},
	})
	if err != nil {
		f.t.Fatalf("vote: %v", err)
	}
}
