package bot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// adminToken is a ci token of an admin (group signoff-admins).
func (f *apiFixture) adminToken() string {
	return f.token("root-admin", map[string]any{"groups": []string{"signoff-admins"}, "email": "root@example.com", "name": "Root Admin"})
}

// auditorToken is a ci token of an auditor (group audit), not an admin.
func (f *apiFixture) auditorToken() string {
	return f.token("auditor", map[string]any{"groups": []string{"audit"}})
}

// records returns every audit record of the fixture's store.
func (f *apiFixture) records() []audit.Record {
	f.t.Helper()
	var out []audit.Record
	err := f.store.AuditRecords(context.Background(), 1, func(_ uint64, line []byte) error {
		rec, err := audit.ParseRecord(line)
		if err != nil {
			return err
		}
		out = append(out, rec)
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func lastOfType(recs []audit.Record, typ string) *audit.Record {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Type == typ {
			return &recs[i]
		}
	}
	return nil
}

// seedLinks stores three links: slack T1/U1 (alice, with a sealed refresh
// token), slack T1/U2 (Bob, stale) and teams tenant-1/aad-3 (carol).
func seedLinks(t *testing.T, f *apiFixture) {
	t.Helper()
	now := time.Now().UTC()
	links := []storage.IdentityLink{
		{Platform: "slack", Workspace: "T1", PlatformUser: "U1", Issuer: "https://idp.example", Subject: "alice-sub", Email: "alice@example.com",
			Name: "Alice", Groups: []string{"sre"}, LinkedAt: now, VerifiedAt: now, MatchedBy: "email", RefreshToken: []byte("SEALED-REFRESH-TOKEN")},
		{Platform: "slack", Workspace: "T1", PlatformUser: "U2", Issuer: "https://idp.example", Subject: "bob-sub", Email: "Bob@Example.com",
			Groups: []string{"sre"}, LinkedAt: now, VerifiedAt: now, MatchedBy: "email"},
		{Platform: "teams", Workspace: "tenant-1", PlatformUser: "aad-3", Issuer: "https://idp.example", Subject: "carol-sub", Email: "carol@example.com",
			LinkedAt: now, VerifiedAt: now, MatchedBy: "oid"},
	}
	for _, l := range links {
		if err := f.svc.SaveLink(t.Context(), l, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.MarkLinkStale(t.Context(), "slack", "T1", "U2", "the IdP refused the refresh: user disabled"); err != nil {
		t.Fatal(err)
	}
}

// TestAdminEndpointsRefuse: every admin endpoint refuses a missing token
// (401) and a token without an admin group (403 naming the admin groups,
// the claim read and the token's groups); an auditor may list requests but
// not links, revoke, cancel or back up.
func TestAdminEndpointsRefuse(t *testing.T) {
	f := newAPIFixture(t)
	req := f.create("alice")
	endpoints := []struct{ method, path, body string }{
		{"GET", "/v1/links", ""},
		{"DELETE", "/v1/links/slack/T1/U1", ""},
		{"GET", "/v1/requests?state=pending", ""},
		{"GET", "/v1/backup", ""},
		{"POST", "/v1/requests/" + req.ID + "/cancel", `{"reason":"stop"}`},
	}
	for _, e := range endpoints {
		resp := f.do(e.method, e.path, "", e.body)
		if resp.status != http.StatusUnauthorized || resp.errorCode() != api.CodeUnauthenticated {
			t.Errorf("%s %s without a token: %d %s", e.method, e.path, resp.status, resp.body)
		}
	}

	dev := f.token("dev-user", map[string]any{"groups": []string{"dev", "oncall"}})
	for _, e := range endpoints {
		resp := f.do(e.method, e.path, dev, e.body)
		if strings.HasSuffix(e.path, "/cancel") {
			// Someone else's request stays invisible to a non-admin.
			if resp.status != http.StatusNotFound {
				t.Errorf("cancel by a stranger: %d %s", resp.status, resp.body)
			}
			continue
		}
		msg := resp.errorMessage()
		if resp.status != http.StatusForbidden || resp.errorCode() != api.CodeForbidden {
			t.Errorf("%s %s as a non-admin: %d %s", e.method, e.path, resp.status, resp.body)
			continue
		}
		for _, want := range []string{"admins.groups", `"signoff-admins"`, `"groups" claim`, "requester ci", `"dev"`, `"oncall"`} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s %s: the 403 does not name %s: %s", e.method, e.path, want, msg)
			}
		}
		if strings.HasPrefix(e.path, "/v1/requests") && !strings.Contains(msg, `auditors.groups ["audit"]`) {
			t.Errorf("GET /v1/requests: the 403 does not name the auditor groups: %s", msg)
		}
	}

	// A token from an issuer whose entry reads no groups: the 403 says so.
	other := mint(t, f.other, "someone", "signoff", map[string]any{"groups": []string{"signoff-admins"}, "actor": "someone"})
	resp := f.do("GET", "/v1/links", other, "")
	if resp.status != http.StatusForbidden || !strings.Contains(resp.errorMessage(), "groups_claim") || !strings.Contains(resp.errorMessage(), "requester other") {
		t.Errorf("a token whose issuer reads no groups: %d %s", resp.status, resp.body)
	}

	// The auditor lists requests, and nothing else of the admin API.
	aud := f.auditorToken()
	if resp := f.do("GET", "/v1/requests", aud, ""); resp.status != http.StatusOK {
		t.Errorf("auditor lists requests: %d %s", resp.status, resp.body)
	}
	for _, e := range endpoints {
		if strings.HasPrefix(e.path, "/v1/requests?") {
			continue
		}
		resp := f.do(e.method, e.path, aud, e.body)
		if resp.status != http.StatusForbidden || !strings.Contains(resp.errorMessage(), "admins.groups") {
			t.Errorf("%s %s as an auditor: %d %s", e.method, e.path, resp.status, resp.body)
		}
	}
	if got, _ := f.svc.Get(t.Context(), req.ID); got.State != storage.StatePending {
		t.Fatalf("a refused cancel changed the request: %s", got.State)
	}
	if n := len(f.records()); n != 1 {
		t.Errorf("refusals wrote audit records: %d records, want only request.created", n)
	}

	// Wrong methods and malformed queries.
	adm := f.adminToken()
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"PUT", "/v1/links", http.StatusMethodNotAllowed},
		{"GET", "/v1/links/slack/T1/U1", http.StatusMethodNotAllowed},
		{"POST", "/v1/backup", http.StatusMethodNotAllowed},
		{"HEAD", "/v1/backup", http.StatusMethodNotAllowed},
		{"DELETE", "/v1/requests", http.StatusMethodNotAllowed},
		{"GET", "/v1/links?color=red", http.StatusBadRequest},
		{"GET", "/v1/links?user=a&user=b", http.StatusBadRequest},
		{"GET", "/v1/requests?state=bogus", http.StatusBadRequest},
		{"GET", "/v1/requests?limit=0", http.StatusBadRequest},
		{"GET", "/v1/requests?limit=100000", http.StatusBadRequest},
		{"GET", "/v1/requests?sort=asc", http.StatusBadRequest},
	} {
		resp := f.do(c.method, c.path, adm, "")
		if resp.status != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, resp.status, resp.body, c.status)
		}
	}
	if resp := f.do("DELETE", "/v1/requests", adm, ""); !strings.Contains(resp.header.Get("Allow"), "GET") {
		t.Errorf("405 on /v1/requests: Allow %q", resp.header.Get("Allow"))
	}
}

// TestAdminListsLinks: every field of the contract, the filters, and never
// the refresh token.
func TestAdminListsLinks(t *testing.T) {
	f := newAPIFixture(t)
	seedLinks(t, f)
	adm := f.adminToken()
	list := func(query string) []api.LinkedAccount {
		t.Helper()
		resp := f.do("GET", "/v1/links"+query, adm, "")
		if resp.status != http.StatusOK {
			t.Fatalf("GET /v1/links%s: %d %s", query, resp.status, resp.body)
		}
		if bytes.Contains(resp.body, []byte("SEALED")) || bytes.Contains(resp.body, []byte("refresh_token")) {
			t.Fatalf("the listing shows the refresh token: %s", resp.body)
		}
		var out api.LinkedAccounts
		if err := json.Unmarshal(resp.body, &out); err != nil {
			t.Fatal(err)
		}
		return out.Links
	}
	users := func(ls []api.LinkedAccount) string {
		var u []string
		for _, l := range ls {
			u = append(u, l.User)
		}
		return strings.Join(u, ",")
	}
	all := list("")
	if users(all) != "U1,U2,aad-3" {
		t.Fatalf("links: %s", users(all))
	}
	a := all[0]
	if a.Platform != "slack" || a.Workspace != "T1" || a.Issuer != "https://idp.example" || a.Subject != "alice-sub" ||
		a.Email != "alice@example.com" || a.Name != "Alice" || len(a.Groups) != 1 || a.Groups[0] != "sre" ||
		a.VerifiedAt.IsZero() || a.LinkedAt.IsZero() || a.Stale || a.MatchedBy != "email" {
		t.Errorf("alice's link: %+v", a)
	}
	if b := all[1]; !b.Stale || !strings.Contains(b.StaleReason, "user disabled") {
		t.Errorf("bob's stale link: %+v", b)
	}
	// Every contract field is in the JSON, groups as a list even when empty.
	raw := f.do("GET", "/v1/links?platform=teams", adm, "").body
	for _, k := range []string{`"platform"`, `"workspace"`, `"user"`, `"issuer"`, `"subject"`, `"email"`, `"groups":[]`, `"verified_at"`, `"linked_at"`, `"stale":false`, `"matched_by":"oid"`} {
		if !bytes.Contains(raw, []byte(k)) {
			t.Errorf("the listing lacks %s: %s", k, raw)
		}
	}

	for query, want := range map[string]string{
		"?platform=slack":              "U1,U2",
		"?platform=teams":              "aad-3",
		"?workspace=T1&user=U2":        "U2",
		"?email=bob@example.com":       "U2",
		"?email=ALICE@example.com":     "U1",
		"?platform=slack&workspace=T2": "",
		"?user=nobody":                 "",
	} {
		if got := users(list(query)); got != want {
			t.Errorf("GET /v1/links%s: %q, want %q", query, got, want)
		}
	}
	if resp := f.do("GET", "/v1/links?user=nobody", adm, ""); !bytes.Contains(resp.body, []byte(`"links":[]`)) {
		t.Errorf("an empty listing is not an empty list: %s", resp.body)
	}
}

// TestAdminRevokesLink: the link is gone at once, the audit record names
// the admin as actor and the link's account and identity in data; an
// unknown link is 404.
func TestAdminRevokesLink(t *testing.T) {
	f := newAPIFixture(t)
	seedLinks(t, f)
	adm := f.adminToken()
	resp := f.do("DELETE", "/v1/links/slack/T1/U1", adm, `{"reason":"laptop stolen"}`)
	if resp.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.status, resp.body)
	}
	var out api.Revoked
	if err := json.Unmarshal(resp.body, &out); err != nil || out.Revoked.User != "U1" || out.Revoked.Subject != "alice-sub" {
		t.Fatalf("revoke answer: %s (%v)", resp.body, err)
	}
	if bytes.Contains(resp.body, []byte("SEALED")) {
		t.Fatal("the revoke answer shows the refresh token")
	}
	if _, err := f.svc.Link(t.Context(), "slack", "T1", "U1"); err == nil {
		t.Fatal("the link is still stored")
	}
	rec := lastOfType(f.records(), audit.TypeIdentityUnlinked)
	if rec == nil {
		t.Fatal("no identity.unlinked record")
	}
	if rec.Actor == nil || rec.Actor.Issuer != f.ci.URL() || rec.Actor.Subject != "root-admin" || rec.Actor.Email != "root@example.com" ||
		rec.Actor.Name != "Root Admin" || rec.Actor.PlatformUser != "" {
		t.Errorf("actor is not the admin: %+v", rec.Actor)
	}
	link, _ := rec.Data["link"].(map[string]any)
	if rec.Data["reason"] != "laptop stolen" || link["platform"] != "slack" || link["workspace"] != "T1" || link["platform_user"] != "U1" ||
		link["subject"] != "alice-sub" || link["issuer"] != "https://idp.example" || link["email"] != "alice@example.com" {
		t.Errorf("data: %v", rec.Data)
	}

	// Again: nothing to revoke. An unknown account: 404 too.
	for _, path := range []string{"/v1/links/slack/T1/U1", "/v1/links/slack/T9/U1", "/v1/links/teams/tenant-1/nobody"} {
		resp := f.do("DELETE", path, adm, "")
		if resp.status != http.StatusNotFound || resp.errorCode() != api.CodeNotFound || !strings.Contains(resp.errorMessage(), "nothing to revoke") {
			t.Errorf("DELETE %s: %d %s", path, resp.status, resp.body)
		}
	}
	// Without a body the default reason is audited; a bad body is 400.
	if resp := f.do("DELETE", "/v1/links/slack/T1/U2", adm, `{"why":"x"}`); resp.status != http.StatusBadRequest {
		t.Errorf("a body with an unknown field: %d %s", resp.status, resp.body)
	}
	if resp := f.do("DELETE", "/v1/links/slack/T1/U2", adm, ""); resp.status != http.StatusOK {
		t.Fatalf("revoke without a body: %d %s", resp.status, resp.body)
	}
	if rec := lastOfType(f.records(), audit.TypeIdentityUnlinked); rec.Data["reason"] != bot.DefaultAdminRevokeReason {
		t.Errorf("default reason: %v", rec.Data)
	}
	// Only the revokes that happened are counted.
	wantLines(t, f.scrape(), `signoff_admin_actions_total{action="link_revoke"} 2`)
}

// TestAdminListsRequests: state and action filters, the limit, and each
// entry exactly as GET /v1/requests/{id} shows it; auditors may list too.
func TestAdminListsRequests(t *testing.T) {
	f := newAPIFixture(t)
	r1 := f.create("alice")
	r2 := f.create("bob")
	r3 := f.create("alice")
	f.vote(r2.ID, "carol", storage.DecisionApprove)
	adm := f.adminToken()
	list := func(token, query string) api.RequestList {
		t.Helper()
		resp := f.do("GET", "/v1/requests"+query, token, "")
		if resp.status != http.StatusOK {
			t.Fatalf("GET /v1/requests%s: %d %s", query, resp.status, resp.body)
		}
		var out api.RequestList
		if err := json.Unmarshal(resp.body, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	ids := func(out api.RequestList) string {
		var s []string
		for _, r := range out.Requests {
			s = append(s, r.ID)
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct{ query, want string }{
		{"", r3.ID + "," + r2.ID + "," + r1.ID},
		{"?state=pending", r3.ID + "," + r1.ID},
		{"?state=approved", r2.ID},
		{"?state=approved,pending", r3.ID + "," + r2.ID + "," + r1.ID},
		{"?state=pending&action=deploy", r3.ID + "," + r1.ID},
		{"?state=pending&action=rollback", ""},
		{"?state=cancelled", ""},
	} {
		if got := ids(list(adm, tc.query)); got != tc.want {
			t.Errorf("GET /v1/requests%s: %s, want %s", tc.query, got, tc.want)
		}
	}
	cut := list(adm, "?limit=2")
	if ids(cut) != r3.ID+","+r2.ID || !cut.Truncated {
		t.Errorf("limit 2: %s truncated=%v", ids(cut), cut.Truncated)
	}
	if full := list(adm, "?limit=3"); full.Truncated {
		t.Error("a listing that fits is marked truncated")
	}
	if got := ids(list(f.auditorToken(), "?state=pending")); got != r3.ID+","+r1.ID {
		t.Errorf("auditor's listing: %s", got)
	}
	// An entry is the request as GET shows it.
	entry, err := json.Marshal(list(adm, "?state=approved").Requests[0])
	if err != nil {
		t.Fatal(err)
	}
	var viaGet api.Request
	if err := json.Unmarshal(f.do("GET", "/v1/requests/"+r2.ID, adm, "").body, &viaGet); err != nil {
		t.Fatal(err)
	}
	single, _ := json.Marshal(viaGet)
	if !bytes.Equal(entry, single) {
		t.Errorf("listing entry differs from GET:\n%s\n%s", entry, single)
	}
	if resp := f.do("GET", "/v1/requests", adm, ""); !strings.Contains(string(resp.body), `"requests":[`) {
		t.Errorf("not a requests object: %s", resp.body)
	}
}

// TestAdminCancel: an admin cancels someone else's pending request with a
// reason (audited with the admin as actor); without a reason 400, a
// request no longer pending 409.
func TestAdminCancel(t *testing.T) {
	f := newAPIFixture(t)
	req := f.create("alice")
	adm := f.adminToken()
	for _, body := range []string{"", `{}`, `{"reason":"  "}`, `{"reason":"x","force":true}`, `[1]`} {
		resp := f.do("POST", "/v1/requests/"+req.ID+"/cancel", adm, body)
		if resp.status != http.StatusBadRequest || resp.errorCode() != api.CodeInvalidRequest || !strings.Contains(resp.errorMessage(), "reason") {
			t.Errorf("admin cancel with body %q: %d %s", body, resp.status, resp.body)
		}
	}
	if got, _ := f.svc.Get(t.Context(), req.ID); got.State != storage.StatePending {
		t.Fatal("a refused cancel changed the request")
	}

	resp := f.do("POST", "/v1/requests/"+req.ID+"/cancel", adm, `{"reason":"wrong release train"}`)
	if resp.status != http.StatusOK {
		t.Fatalf("admin cancel: %d %s", resp.status, resp.body)
	}
	if v := resp.view(t); v.State != api.StateCancelled || v.DecidedBy != "admin" || v.DecidedAt == nil {
		t.Errorf("after the cancel: %+v", v)
	}
	rec := lastOfType(f.records(), audit.TypeRequestCancelled)
	if rec == nil || rec.RequestID != req.ID || rec.Actor == nil || rec.Actor.Subject != "root-admin" || rec.Actor.Issuer != f.ci.URL() ||
		rec.Data["reason"] != "wrong release train" || rec.Data["by"] != "admin" {
		t.Fatalf("request.cancelled record: %+v", rec)
	}

	resp = f.do("POST", "/v1/requests/"+req.ID+"/cancel", adm, `{"reason":"again"}`)
	if resp.status != http.StatusConflict || resp.errorCode() != api.CodeNotPending || !strings.Contains(resp.errorMessage(), "already cancelled") {
		t.Errorf("cancel of a cancelled request: %d %s", resp.status, resp.body)
	}
	other := f.create("bob")
	f.vote(other.ID, "carol", storage.DecisionApprove)
	resp = f.do("POST", "/v1/requests/"+other.ID+"/cancel", adm, `{"reason":"too late"}`)
	if resp.status != http.StatusConflict || !strings.Contains(resp.errorMessage(), "already approved") {
		t.Errorf("cancel of an approved request: %d %s", resp.status, resp.body)
	}
	if resp := f.do("POST", "/v1/requests/req_nope/cancel", adm, `{"reason":"x"}`); resp.status != http.StatusNotFound {
		t.Errorf("cancel of an unknown request: %d %s", resp.status, resp.body)
	}

	// The requester's own cancel is unchanged: no reason needed.
	mine := f.create("alice")
	if resp := f.do("POST", "/v1/requests/"+mine.ID+"/cancel", f.token("alice", nil), ""); resp.status != http.StatusOK || resp.view(t).DecidedBy != "requester" {
		t.Errorf("requester's cancel: %d %s", resp.status, resp.body)
	}
}

// TestBackupEndpoint: the copy streams with its exact length, opens as a
// store holding what was committed before it, and its audit chain (which
// ends with the admin.backup record naming the admin) verifies.
func TestBackupEndpoint(t *testing.T) {
	f := newAPIFixture(t)
	req := f.create("alice")
	resp := f.do("GET", "/v1/backup", f.adminToken(), "")
	if resp.status != http.StatusOK {
		t.Fatalf("backup: %d %s", resp.status, resp.body)
	}
	h := resp.header
	if h.Get("Content-Type") != "application/octet-stream" || h.Get("Content-Length") != strconv.Itoa(len(resp.body)) ||
		!strings.HasPrefix(h.Get("Content-Disposition"), `attachment; filename="signoff-`) || !strings.HasSuffix(h.Get("Content-Disposition"), `.db"`) {
		t.Errorf("headers: %v (body %d bytes)", h, len(resp.body))
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, resp.body, 0o600); err != nil {
		t.Fatal(err)
	}
	cp, err := boltstore.Open(path, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("the copy does not open: %v", err)
	}
	defer cp.Close()
	v := audit.NewVerifier(audit.VerifyOptions{})
	var last audit.Record
	err = cp.AuditRecords(t.Context(), 1, func(_ uint64, line []byte) error {
		if err := v.Add(line); err != nil {
			return err
		}
		last, err = audit.ParseRecord(line)
		return err
	})
	if err != nil {
		t.Fatalf("the copy's audit chain: %v", err)
	}
	if _, err := v.Finish(); err != nil {
		t.Fatal(err)
	}
	if last.Type != approvals.TypeAdminBackup || last.Actor == nil || last.Actor.Subject != "root-admin" || last.Actor.Email != "root@example.com" {
		t.Errorf("the copy does not end with the admin.backup record: %+v", last)
	}
	err = cp.View(t.Context(), func(tx storage.ReadTx) error {
		_, err := tx.Request(req.ID)
		return err
	})
	if err != nil {
		t.Errorf("the copy lacks request %s: %v", req.ID, err)
	}
	if rec := lastOfType(f.records(), approvals.TypeAdminBackup); rec == nil {
		t.Error("the live log has no admin.backup record")
	}
	wantLines(t, f.scrape(), `signoff_admin_actions_total{action="backup"} 1`)
}

// storeWithoutBackup hides boltstore's Backuper capability, as a backend
// that cannot copy itself (PostgreSQL) would.
type storeWithoutBackup struct{ storage.Store }

// TestBackupEndpointNeedsCapableStore: on a backend without
// storage.Backuper the endpoint answers 501 pointing at pg_dump, and
// writes no audit record.
func TestBackupEndpointNeedsCapableStore(t *testing.T) {
	f := newAPIFixture(t)
	verifier, err := oidc.NewRequesterVerifier([]oidc.TrustedIssuer{
		{Name: "ci", Issuer: f.ci.URL(), Audience: "signoff", PersonClaim: "actor", GroupsClaim: "groups"},
	}, oidc.VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	front := bot.New(bot.Options{Service: f.svc, Store: storeWithoutBackup{f.store}, Logger: slog.New(slog.DiscardHandler), Verifier: verifier})
	srv := httptest.NewServer(front)
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/v1/backup", nil)
	req.Header.Set("Authorization", "Bearer "+f.adminToken())
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb api.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	if resp.StatusCode != http.StatusNotImplemented || eb.Error.Code != api.CodeNotImplemented || !strings.Contains(eb.Error.Message, "pg_dump") {
		t.Errorf("backup on a backend without the capability: %d %+v", resp.StatusCode, eb)
	}
	if lastOfType(f.records(), approvals.TypeAdminBackup) != nil {
		t.Error("a refused backup was audited as taken")
	}
}
