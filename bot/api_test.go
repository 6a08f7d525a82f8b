package bot_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/storage"
)

func TestCreateRequest(t *testing.T) {
	f := newAPIFixture(t)
	tok := f.token("dev-user", map[string]any{"name": "Dev User", "email": "dev@example.com", "actor": "octocat"})
	resp := f.do("POST", "/v1/requests", tok, validBody)
	if resp.status != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	v := resp.view(t)
	if got, want := resp.header.Get("Location"), "/v1/requests/"+v.ID; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if v.State != api.StatePending || v.Action != "deploy" || v.Params["service"] != "api" || v.Reason != "release" ||
		len(v.Links) != 1 || v.MinApprovals != 1 || v.Remaining != 1 || v.URL != "http://console.example/dev#"+v.ID {
		t.Errorf("view: %+v", v)
	}
	if v.Requester != (api.Requester{Issuer: "ci", Subject: "dev-user", Person: "octocat", Name: "Dev User"}) {
		t.Errorf("requester: %+v", v.Requester)
	}
	// The stored requester carries the verified token's identity and claims.
	stored, err := f.svc.Get(t.Context(), v.ID)
	if err != nil {
		t.Fatal(err)
	}
	r := stored.Requester
	if r.IssuerURL != f.ci.URL() || r.Email != "dev@example.com" || r.Claims["repository"] != "acme/api" {
		t.Errorf("stored requester: %+v", r)
	}
	// The access log has one line for the call, with the request id and
	// nothing of the token.
	logs := f.logs.String()
	if !strings.Contains(logs, "method=POST path=/v1/requests status=201") || !strings.Contains(logs, "request="+v.ID) {
		t.Errorf("access log:\n%s", logs)
	}
	if strings.Contains(logs, tok) || strings.Contains(logs, tok[:20]) {
		t.Error("the log contains the token")
	}
}

func TestIdempotentCreate(t *testing.T) {
	f := newAPIFixture(t)
	tok := f.token("dev-user", nil)
	first := f.do("POST", "/v1/requests", tok, validBody, "Idempotency-Key", "run-42")
	if first.status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	again := f.do("POST", "/v1/requests", tok, validBody, "Idempotency-Key", "run-42")
	if again.status != http.StatusOK || again.view(t).ID != first.view(t).ID {
		t.Fatalf("retry: %d %s (first %s)", again.status, again.body, first.view(t).ID)
	}
	if again.header.Get("Location") != "" {
		t.Error("a retry has no Location: nothing was created")
	}
	// The same key with another body is a conflict.
	other := strings.Replace(validBody, "1.4.2", "1.4.3", 1)
	resp := f.do("POST", "/v1/requests", tok, other, "Idempotency-Key", "run-42")
	if resp.status != http.StatusConflict || resp.errorCode() != "conflict" || !strings.Contains(resp.errorMessage(), first.view(t).ID) {
		t.Fatalf("reused key: %d %s", resp.status, resp.body)
	}
	// Another requester's key lives in another scope.
	resp = f.do("POST", "/v1/requests", f.token("someone-else", nil), other, "Idempotency-Key", "run-42")
	if resp.status != http.StatusCreated {
		t.Fatalf("same key, other requester: %d %s", resp.status, resp.body)
	}
	// Without a key every call creates.
	a := f.do("POST", "/v1/requests", tok, validBody)
	b := f.do("POST", "/v1/requests", tok, validBody)
	if a.status != http.StatusCreated || b.status != http.StatusCreated || a.view(t).ID == b.view(t).ID {
		t.Fatalf("no key: %d %d", a.status, b.status)
	}
}

func TestAuthenticationRefusals(t *testing.T) {
	f := newAPIFixture(t)
	valid := f.token("dev-user", nil)
	cases := []struct {
		name, auth, want string
		expire           bool
	}{
		{name: "no header", want: "no Authorization header"},
		{name: "basic", auth: "Basic ZGV2OmRldg==", want: `"Basic" scheme`},
		{name: "no token", auth: "Bearer", want: "no token"},
		{name: "garbage", auth: "Bearer not-a-jwt", want: "refused"},
		{name: "wrong audience", auth: "Bearer " + mint(t, f.ci, "dev-user", "another-service", map[string]any{"actor": "x"}), want: "audience"},
		{name: "unknown issuer", auth: "Bearer " + mint(t, f.rogue, "dev-user", "signoff", nil), want: "not accepted"},
		{name: "other key", auth: "Bearer " + mint(t, f.forged, "dev-user", "signoff", map[string]any{"actor": "x"}), want: "refused"},
		{name: "missing person claim", auth: "Bearer " + mint(t, f.ci, "dev-user", "signoff", nil), want: `"actor"`},
		{name: "expired", auth: "Bearer " + valid, expire: true, want: "expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.expire {
				f.clockOffset.Store(int64(2 * time.Hour))
				defer f.clockOffset.Store(0)
			}
			var headers []string
			if tc.auth != "" {
				headers = []string{"Authorization", tc.auth}
			}
			resp := f.do("POST", "/v1/requests", "", validBody, headers...)
			if resp.status != http.StatusUnauthorized || resp.errorCode() != "unauthenticated" {
				t.Fatalf("%d %s", resp.status, resp.body)
			}
			if !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", resp.header.Get("WWW-Authenticate"))
			}
			if !strings.Contains(resp.errorMessage(), tc.want) {
				t.Errorf("message %q does not say %q", resp.errorMessage(), tc.want)
			}
			if tok := strings.TrimPrefix(tc.auth, "Bearer "); len(tok) > 20 && (bytes.Contains(resp.body, []byte(tok[:20])) || strings.Contains(f.logs.String(), tok[:20])) {
				t.Error("the token is echoed or logged")
			}
		})
	}
	// A valid token still works: nothing above poisoned the verifier.
	if resp := f.do("POST", "/v1/requests", valid, validBody); resp.status != http.StatusCreated {
		t.Fatalf("valid token: %d %s", resp.status, resp.body)
	}
	// Every API route authenticates before anything else.
	for _, route := range [][2]string{{"GET", "/v1/requests/req_x"}, {"POST", "/v1/requests/req_x/cancel"}, {"GET", "/v1/audit"}} {
		if resp := f.do(route[0], route[1], "", ""); resp.status != http.StatusUnauthorized {
			t.Errorf("%v without a token: %d", route, resp.status)
		}
	}
}

func TestPolicyRefusals(t *testing.T) {
	f := newAPIFixture(t)
	tok := f.token("dev-user", nil)
	cases := []struct {
		name, token, body string
		status            int
		code, want        string
	}{
		{"unknown action", tok, `{"action":"drop-db"}`, 400, "unknown_action", `"drop-db" is not declared`},
		{"issuer not allowed", mint(t, f.other, "dev-user", "signoff", map[string]any{"repository": "acme/api"}), validBody, 403, "forbidden", `issuer "other"`},
		{"claim not allowed", f.token("dev-user", map[string]any{"repository": "evil/api"}), validBody, 403, "forbidden", `"evil/api"`},
		{"param pattern", tok, `{"action":"deploy","params":{"service":"API!","version":"1"}}`, 400, "invalid_params", `"service"`},
		{"param missing", tok, `{"action":"deploy","params":{"service":"api"}}`, 400, "invalid_params", `"version"`},
		{"param undeclared", tok, `{"action":"deploy","params":{"service":"api","version":"1","x":"y"}}`, 400, "invalid_params", `"x"`},
		{"no action", tok, `{"params":{}}`, 400, "invalid_request", "no action"},
		{"bad link", tok, `{"action":"deploy","params":{"service":"api","version":"1"},"links":[{"title":"x","url":"javascript:alert(1)"}]}`, 400, "invalid_request", "links[0].url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.do("POST", "/v1/requests", tc.token, tc.body)
			if resp.status != tc.status || string(resp.errorCode()) != tc.code || !strings.Contains(resp.errorMessage(), tc.want) {
				t.Fatalf("%d %s", resp.status, resp.body)
			}
		})
	}
	// The pattern refusal names the pattern.
	resp := f.do("POST", "/v1/requests", tok, `{"action":"deploy","params":{"service":"API!","version":"1"}}`)
	if !strings.Contains(resp.errorMessage(), "[a-z-]+") {
		t.Errorf("pattern not named: %s", resp.errorMessage())
	}
}

func TestBodyErrors(t *testing.T) {
	f := newAPIFixture(t)
	tok := f.token("dev-user", nil)
	cases := []struct {
		name, body string
		status     int
		code, want string
	}{
		{"unknown field", `{"action":"deploy","approvers":["me"]}`, 400, "invalid_request", `unknown field "approvers"`},
		{"syntax", "{\n  \"action\": \"deploy\",\n  \"params\": {\"service\" \"api\"}\n}", 400, "invalid_request", "line 3, column"},
		{"wrong type", `{"action":"deploy","params":{"service":1}}`, 400, "invalid_request", `every value in "params" must be a string`},
		{"not an object", `["deploy"]`, 400, "invalid_request", "must be a JSON object"},
		{"trailing data", `{"action":"deploy"} {"action":"deploy"}`, 400, "invalid_request", "after the JSON object"},
		{"empty", ``, 400, "invalid_request", "empty"},
		{"truncated", `{"action":"dep`, 400, "invalid_request", "ends too early"},
		{"too large", `{"action":"deploy","reason":"` + strings.Repeat("x", bot.MaxRequestBody) + `"}`, 413, "payload_too_large", "64"},
		{"reason too long", `{"action":"deploy","params":{"service":"api","version":"1"},"reason":"` + strings.Repeat("x", 5000) + `"}`, 400, "invalid_request", "reason"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.do("POST", "/v1/requests", tok, tc.body)
			if resp.status != tc.status || string(resp.errorCode()) != tc.code || !strings.Contains(resp.errorMessage(), tc.want) {
				t.Fatalf("%d %s", resp.status, resp.body)
			}
		})
	}
}

func TestReadOnlyByRequesterOrAuditor(t *testing.T) {
	f := newAPIFixture(t)
	req := f.create("dev-user")
	path := "/v1/requests/" + req.ID

	if resp := f.do("GET", path, f.token("dev-user", nil), ""); resp.status != http.StatusOK || resp.view(t).ID != req.ID {
		t.Fatalf("requester: %d %s", resp.status, resp.body)
	}
	unknown := f.do("GET", "/v1/requests/req_doesnotexist", f.token("dev-user", nil), "")
	if unknown.status != http.StatusNotFound || unknown.errorCode() != "not_found" {
		t.Fatalf("unknown id: %d %s", unknown.status, unknown.body)
	}
	// Someone else gets exactly what an unknown id gets: existence is not
	// revealed.
	for name, tok := range map[string]string{
		"other subject":              f.token("mallory", nil),
		"same subject, other issuer": mint(t, f.other, "dev-user", "signoff", nil),
		"groups that are not audit":  f.token("mallory", map[string]any{"groups": []string{"sre"}}),
	} {
		resp := f.do("GET", path, tok, "")
		if resp.status != http.StatusNotFound || resp.errorCode() != "not_found" || strings.Contains(string(resp.body), "deploy") {
			t.Errorf("%s: %d %s", name, resp.status, resp.body)
		}
	}
	// An auditor reads any request; a single-string groups claim counts too.
	for _, groups := range []any{[]string{"dev", "audit"}, "audit"} {
		resp := f.do("GET", path, f.token("auditor", map[string]any{"groups": groups}), "")
		if resp.status != http.StatusOK || resp.view(t).ID != req.ID {
			t.Errorf("auditor %v: %d %s", groups, resp.status, resp.body)
		}
	}
}

func TestLongPoll(t *testing.T) {
	f := newAPIFixture(t)
	tok := f.token("dev-user", nil)
	req := f.create("dev-user")
	path := "/v1/requests/" + req.ID

	// The wait ends with the request still pending.
	resp := f.do("GET", path+"?wait=200ms", tok, "")
	if resp.status != http.StatusOK || resp.view(t).State != api.StatePending {
		t.Fatalf("short wait: %d %s", resp.status, resp.body)
	}
	// A decision ends the wait. The vote is cast once the long-poll has
	// reached the server; the client's own deadline (40s) is well above
	// the 30s wait, so a wait that never woke up would show as pending.
	f.entered = make(chan string, 1)
	got := make(chan response, 1)
	go func() { got <- f.do("GET", path+"?wait=30s", tok, "") }()
	<-f.entered
	f.entered = nil
	f.vote(req.ID, "alice", storage.DecisionApprove)
	resp = <-got
	v := resp.view(t)
	if resp.status != http.StatusOK || v.State != api.StateApproved || v.Approvals != 1 || len(v.Votes) != 1 || v.Votes[0].Subject != "alice" {
		t.Fatalf("wait for decision: %d %s", resp.status, resp.body)
	}
	// A decided request answers at once, whatever the wait.
	if resp := f.do("GET", path+"?wait=60", tok, ""); resp.view(t).State != api.StateApproved {
		t.Fatalf("decided: %s", resp.body)
	}
	for _, bad := range []string{"abc", "-1s", "1e9h", "30s&wait=1s"} {
		resp := f.do("GET", path+"?wait="+bad, tok, "")
		if resp.status != http.StatusBadRequest || resp.errorCode() != "invalid_request" {
			t.Errorf("wait=%s: %d %s", bad, resp.status, resp.body)
		}
	}
}

func TestDrainEndsLongPolls(t *testing.T) {
	f := newAPIFixture(t)
	tok := f.token("dev-user", nil)
	req := f.create("dev-user")
	f.entered = make(chan string, 1)
	got := make(chan response, 1)
	go func() { got <- f.do("GET", "/v1/requests/"+req.ID+"?wait=60s", tok, "") }()
	<-f.entered
	f.entered = nil
	f.front.Drain()
	resp := <-got
	if resp.status != http.StatusOK || resp.view(t).State != api.StatePending {
		t.Fatalf("drained long-poll: %d %s", resp.status, resp.body)
	}
}

func TestCancel(t *testing.T) {
	f := newAPIFixture(t)
	req := f.create("dev-user")
	path := "/v1/requests/" + req.ID + "/cancel"

	if resp := f.do("POST", path, f.token("mallory", nil), ""); resp.status != http.StatusNotFound || resp.errorCode() != "not_found" {
		t.Fatalf("stranger: %d %s", resp.status, resp.body)
	}
	if resp := f.do("POST", path, f.token("auditor", map[string]any{"groups": []string{"audit"}}), ""); resp.status != http.StatusForbidden || resp.errorCode() != "forbidden" {
		t.Fatalf("auditor: %d %s", resp.status, resp.body)
	}
	resp := f.do("POST", path, f.token("dev-user", nil), "")
	if resp.status != http.StatusOK || resp.view(t).State != api.StateCancelled || resp.view(t).DecidedAt == nil {
		t.Fatalf("requester: %d %s", resp.status, resp.body)
	}
	resp = f.do("POST", path, f.token("dev-user", nil), "")
	if resp.status != http.StatusConflict || resp.errorCode() != "not_pending" || !strings.Contains(resp.errorMessage(), "cancelled") {
		t.Fatalf("twice: %d %s", resp.status, resp.body)
	}
	// A decided request cannot be cancelled either.
	other := f.create("dev-user")
	f.vote(other.ID, "alice", storage.DecisionDeny)
	resp = f.do("POST", "/v1/requests/"+other.ID+"/cancel", f.token("dev-user", nil), "")
	if resp.status != http.StatusConflict || resp.errorCode() != "not_pending" {
		t.Fatalf("denied: %d %s", resp.status, resp.body)
	}
}

func TestAuditStream(t *testing.T) {
	f := newAPIFixture(t)
	first := f.create("dev-user")
	f.vote(first.ID, "alice", storage.DecisionApprove)
	second := f.create("dev-user")
	auditor := f.token("auditor", map[string]any{"groups": []string{"audit"}})

	for name, tok := range map[string]string{"requester": f.token("dev-user", nil), "sre": f.token("alice", map[string]any{"groups": []string{"sre"}})} {
		if resp := f.do("GET", "/v1/audit", tok, ""); resp.status != http.StatusForbidden || resp.errorCode() != "forbidden" {
			t.Errorf("%s: %d %s", name, resp.status, resp.body)
		}
	}

	records := func(query string) []map[string]any {
		t.Helper()
		resp := f.do("GET", "/v1/audit"+query, auditor, "")
		if resp.status != http.StatusOK || resp.header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("audit%s: %d %q %s", query, resp.status, resp.header.Get("Content-Type"), resp.body)
		}
		var out []map[string]any
		sc := bufio.NewScanner(bytes.NewReader(resp.body))
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			out = append(out, rec)
		}
		return out
	}
	all := records("")
	// created, vote.approve, approved, created.
	if len(all) != 4 || all[0]["seq"] != float64(1) || all[3]["request_id"] != second.ID {
		t.Fatalf("all records: %v", all)
	}
	for _, rec := range records("?request=" + url.QueryEscape(first.ID)) {
		if rec["request_id"] != first.ID {
			t.Errorf("request filter let through %v", rec)
		}
	}
	if n := len(records("?request=" + first.ID)); n != 3 {
		t.Errorf("records of %s: %d, want 3", first.ID, n)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if n := len(records("?since=" + future)); n != 0 {
		t.Errorf("since the future: %d records", n)
	}
	if n := len(records("?until=" + past)); n != 0 {
		t.Errorf("until the past: %d records", n)
	}
	if n := len(records("?since=" + past + "&until=" + future)); n != 4 {
		t.Errorf("since..until: %d records", n)
	}
	for _, q := range []string{"?since=yesterday", "?until=2026-13-01T00:00:00Z", "?sinse=" + past, "?request=a&request=b"} {
		if resp := f.do("GET", "/v1/audit"+q, auditor, ""); resp.status != http.StatusBadRequest || resp.errorCode() != "invalid_request" {
			t.Errorf("%s: %d %s", q, resp.status, resp.body)
		}
	}
}

func TestRoutingErrors(t *testing.T) {
	f := newAPIFixture(t)
	tok := f.token("dev-user", nil)
	cases := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"PUT", "/v1/requests", 405, "method_not_allowed", "GET, HEAD, POST"},
		// GET /v1/requests lists requests, for admins and auditors only.
		{"GET", "/v1/requests", 403, "forbidden", ""},
		{"DELETE", "/v1/requests/req_x", 405, "method_not_allowed", "GET, HEAD"},
		{"GET", "/v1/requests/req_x/cancel", 405, "method_not_allowed", "POST"},
		{"POST", "/v1/audit", 405, "method_not_allowed", "GET, HEAD"},
		{"GET", "/v1/nothing-here", 404, "not_found", ""},
		{"GET", "/v1/requests/req_x/votes", 404, "not_found", ""},
	}
	for _, tc := range cases {
		resp := f.do(tc.method, tc.path, tok, "")
		if resp.status != tc.status || string(resp.errorCode()) != tc.code || resp.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %q %s", tc.method, tc.path, resp.status, resp.header.Get("Allow"), resp.body)
		}
	}
}

// TestNoServerErrorsForGarbage sends malformed headers, bodies, paths and
// queries: each gets a 4xx with a JSON error of a stable code, never a 5xx.
func TestNoServerErrorsForGarbage(t *testing.T) {
	f := newAPIFixture(t)
	tok := f.token("dev-user", nil)
	auditor := f.token("auditor", map[string]any{"groups": []string{"audit"}})
	codes := map[api.Code]bool{"unauthenticated": true, "forbidden": true, "unknown_action": true, "invalid_params": true,
		"invalid_request": true, "not_found": true, "conflict": true, "not_pending": true, "payload_too_large": true, "method_not_allowed": true}
	type call struct {
		name, method, path, token, body string
		headers                         []string
	}
	calls := []call{
		{name: "huge bearer", method: "POST", path: "/v1/requests", headers: []string{"Authorization", "Bearer " + strings.Repeat("A", 200_000)}, body: validBody},
		{name: "three dots", method: "POST", path: "/v1/requests", headers: []string{"Authorization", "Bearer a.b.c"}, body: validBody},
		{name: "alg none", method: "POST", path: "/v1/requests", headers: []string{"Authorization", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}, body: validBody},
		{name: "two authorizations", method: "POST", path: "/v1/requests", headers: []string{"Authorization", "Bearer " + tok, "Authorization", "Bearer " + tok}, body: validBody},
		{name: "non-ascii scheme", method: "POST", path: "/v1/requests", headers: []string{"Authorization", "Bëarer x"}, body: validBody},
		{name: "null", method: "POST", path: "/v1/requests", token: tok, body: `null`},
		{name: "string", method: "POST", path: "/v1/requests", token: tok, body: `"deploy"`},
		{name: "number", method: "POST", path: "/v1/requests", token: tok, body: `1e999`},
		{name: "action number", method: "POST", path: "/v1/requests", token: tok, body: `{"action":1}`},
		{name: "params list", method: "POST", path: "/v1/requests", token: tok, body: `{"action":"deploy","params":[]}`},
		{name: "links string", method: "POST", path: "/v1/requests", token: tok, body: `{"action":"deploy","links":"x"}`},
		{name: "link null", method: "POST", path: "/v1/requests", token: tok, body: `{"action":"deploy","params":{"service":"api","version":"1"},"links":[null]}`},
		{name: "invalid utf-8", method: "POST", path: "/v1/requests", token: tok, body: "{\"action\":\"deploy\",\"reason\":\"\xff\xfe\"}"},
		{name: "nul", method: "POST", path: "/v1/requests", token: tok, body: `{"action":"\u0000"}`},
		{name: "deep nesting", method: "POST", path: "/v1/requests", token: tok, body: strings.Repeat("[", 20000)},
		{name: "duplicate keys", method: "POST", path: "/v1/requests", token: tok, body: `{"action":"deploy","action":"x"}`},
		{name: "long idempotency key", method: "POST", path: "/v1/requests", token: tok, body: validBody, headers: []string{"Idempotency-Key", strings.Repeat("k", 300)}},
		{name: "two idempotency keys", method: "POST", path: "/v1/requests", token: tok, body: validBody, headers: []string{"Idempotency-Key", "a", "Idempotency-Key", "b"}},
		{name: "many params", method: "POST", path: "/v1/requests", token: tok, body: manyParams(2000)},
		{name: "dot-dot id", method: "GET", path: "/v1/requests/%2e%2e", token: tok},
		{name: "encoded slash id", method: "GET", path: "/v1/requests/a%2Fb", token: tok},
		{name: "long id", method: "GET", path: "/v1/requests/" + strings.Repeat("x", 5000), token: tok},
		{name: "huge wait", method: "GET", path: "/v1/requests/req_x?wait=99999999999999999999", token: tok},
		{name: "cancel unknown", method: "POST", path: "/v1/requests/req_x/cancel", token: tok, body: "garbage"},
		{name: "audit garbage since", method: "GET", path: "/v1/audit?since=%00", token: auditor},
		{name: "bad percent", method: "GET", path: "/v1/audit?since=%zz", token: auditor},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			resp := f.do(c.method, c.path, c.token, c.body, c.headers...)
			if resp.status >= 500 {
				t.Fatalf("%d %s", resp.status, resp.body)
			}
			if resp.status >= 400 && !codes[resp.errorCode()] {
				t.Fatalf("%d without a stable code: %s", resp.status, resp.body)
			}
			if bytes.Contains(resp.body, []byte("goroutine")) {
				t.Fatalf("stack trace in the answer: %s", resp.body)
			}
		})
	}
}

func manyParams(n int) string {
	var b strings.Builder
	b.WriteString(`{"action":"deploy","params":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"p%d":"v"`, i)
	}
	b.WriteString(`}}`)
	return b.String()
}

func TestPanicIsAnInternalErrorWithoutDetails(t *testing.T) {
	logs := &testenv.LogBuffer{}
	front := bot.New(bot.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	front.Handle("/boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("secret detail") }))
	srv := httptest.NewServer(front)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb api.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 500 || eb.Error.Code != "internal" || strings.Contains(eb.Error.Message, "secret") || strings.Contains(eb.Error.Message, "goroutine") {
		t.Fatalf("%d %+v", resp.StatusCode, eb)
	}
	if !strings.Contains(logs.String(), "secret detail") || !strings.Contains(logs.String(), "status=500") {
		t.Errorf("the panic is not in the server log:\n%s", logs)
	}
}

func TestNoVerifierRefusesEveryCall(t *testing.T) {
	front := bot.New(bot.Options{Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(front)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/requests", strings.NewReader(validBody))
	req.Header.Set("Authorization", "Bearer x.y.z")
	if resp, _ := testenv.Do(t, http.DefaultClient, req); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%d", resp.StatusCode)
	}
}

// TestWaitGivenTwiceIsRefused: a repeated wait= is a 400, whichever of
// the values is empty.
func TestWaitGivenTwiceIsRefused(t *testing.T) {
	fx := newAPIFixture(t)
	tok := fx.token("ci-user", nil)
	r := fx.create("ci-user")
	for _, q := range []string{"wait=30s&wait=1s", "wait=&wait=30s", "wait=1s&wait="} {
		resp := fx.do(http.MethodGet, "/v1/requests/"+r.ID+"?"+q, tok, "")
		if resp.status != http.StatusBadRequest || !strings.Contains(resp.errorMessage(), "more than once") {
			t.Errorf("GET ?%s: %d %s", q, resp.status, resp.body)
		}
	}
	if resp := fx.do(http.MethodGet, "/v1/requests/"+r.ID+"?wait=", tok, ""); resp.status != http.StatusOK {
		t.Errorf("GET ?wait= (empty, once): %d %s", resp.status, resp.body)
	}
}
