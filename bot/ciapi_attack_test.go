package bot_test

// Attacks on the CI API (the "CI API" part of the attacker's checklist):
// bodies that readers read differently, params, requester globs, access
// across issuers, idempotency keys, long-poll floods.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/storage"
)

// TestAttackDuplicateParamKeyRefused: a body whose params object holds the
// same key twice is read last-wins by encoding/json, first-wins by many
// other parsers (a WAF, an API gateway, a log pipeline). signoff refuses it
// rather than approve a value other readers of the same bytes never saw.
func TestAttackDuplicateParamKeyRefused(t *testing.T) {
	f := newAPIFixture(t)
	body := `{"action":"deploy","params":{"service":"api","version":"1.4.2","service":"billing"}}`
	resp := f.do("POST", "/v1/requests", f.token("dev-user", nil), body)
	if resp.status != http.StatusBadRequest {
		v := resp.view(t)
		t.Fatalf("duplicate params key accepted: %d, stored service=%q (the first occurrence said \"api\")", resp.status, v.Params["service"])
	}
}

// TestAttackDuplicateTopLevelKeyRefused: the same with "action" given
// twice (encoding/json would create a request for the action named last).
func TestAttackDuplicateTopLevelKeyRefused(t *testing.T) {
	f := newAPIFixture(t)
	body := `{"action":"nothing-risky","params":{"service":"api","version":"1"},"action":"deploy"}`
	resp := f.do("POST", "/v1/requests", f.token("dev-user", nil), body)
	if resp.status != http.StatusBadRequest {
		t.Fatalf("duplicate action key accepted: %d %s", resp.status, resp.body)
	}
}

// TestAttackCaseVariantKeyRefused: encoding/json matches object keys to
// fields without regard to case, so "Action" and "PARAMS" are not unknown
// fields for DisallowUnknownFields; a case-sensitive reader of the same
// body would see an action signoff never ran (or none at all). Refused.
func TestAttackCaseVariantKeyRefused(t *testing.T) {
	f := newAPIFixture(t)
	for _, body := range []string{
		`{"action":"nothing-risky","Action":"deploy","params":{"service":"api","version":"1"}}`,
		`{"ACTION":"deploy","PARAMS":{"service":"api","version":"1"}}`,
	} {
		resp := f.do("POST", "/v1/requests", f.token("dev-user", nil), body)
		if resp.status != http.StatusBadRequest {
			t.Errorf("case-variant keys accepted: %s -> %d %s", body, resp.status, resp.body)
		}
	}
}

// TestAttackInvalidUTF8ParamRefused: encoding/json replaces each byte of
// invalid UTF-8 by U+FFFD, so approvals' UTF-8 check never saw it and a
// request was created with a value the client did not send. The body is
// refused at the edge.
func TestAttackInvalidUTF8ParamRefused(t *testing.T) {
	f := newAPIFixture(t)
	body := "{\"action\":\"deploy\",\"params\":{\"service\":\"api\",\"version\":\"1.4.2\xff\xfe\"}}"
	resp := f.do("POST", "/v1/requests", f.token("dev-user", nil), body)
	if resp.status != http.StatusBadRequest {
		v := resp.view(t)
		t.Fatalf("invalid UTF-8 param accepted: %d, stored version=%q", resp.status, v.Params["version"])
	}
	body = "{\"action\":\"deploy\",\"params\":{\"service\":\"api\",\"version\":\"1\"},\"reason\":\"ok\xff\"}"
	if resp := f.do("POST", "/v1/requests", f.token("dev-user2", nil), body); resp.status != http.StatusBadRequest {
		t.Fatalf("invalid UTF-8 reason accepted: %d %s", resp.status, resp.body)
	}
}

// TestAttackParamPatternTricks: the anchored pattern refuses
// newline tricks, NUL, full-width letters, over-long values, undeclared
// and missing params.
func TestAttackParamPatternTricks(t *testing.T) {
	f := newAPIFixture(t)
	tok := f.token("dev-user", nil)
	for name, params := range map[string]string{
		"newline after":       `{"service":"api\nevil","version":"1"}`,
		"newline before":      `{"service":"evil\napi","version":"1"}`,
		"trailing newline":    `{"service":"api\n","version":"1"}`,
		"cr":                  `{"service":"api\r","version":"1"}`,
		"nul":                 `{"service":"api\u0000","version":"1"}`,
		"full-width":          `{"service":"ａｐｉ","version":"1"}`,
		"too long":            `{"service":"` + strings.Repeat("a", 257) + `","version":"1"}`,
		"version too long":    `{"service":"api","version":"` + strings.Repeat("1", 257) + `"}`,
		"undeclared":          `{"service":"api","version":"1","extra":"x"}`,
		"missing":             `{"service":"api"}`,
		"key with newline":    `{"service":"api","version":"1","service\n":"x"}`,
		"number value":        `{"service":"api","version":1}`,
		"bidi override value": `{"service":"api","version":"1\u202e2.4.1"}`,
	} {
		resp := f.do("POST", "/v1/requests", tok, `{"action":"deploy","params":`+params+`}`)
		if resp.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, resp.status, resp.body)
		}
	}
}

// TestAttackRequesterGlobEdges (holds, with one documented caveat): the
// rule repository: "acme/*" refuses "acme", "evilacme/x", "acme-x/y",
// full-width "ａｃｍｅ/api", and claims that are arrays, objects, null or
// numbers. "acme/../evil" and "acme/x\x00y" DO match: * is documented to
// match any run including '/', and such names cannot come from GitHub.
func TestAttackRequesterGlobEdges(t *testing.T) {
	f := newAPIFixture(t)
	for name, repo := range map[string]any{
		"bare org":       "acme",
		"suffix org":     "evilacme/x",
		"dash org":       "acme-x/y",
		"prefix only":    "acme",
		"upper":          "ACME/api",
		"full-width":     "ａｃｍｅ/api",
		"leading space":  " acme/api",
		"array":          []string{"acme/api"},
		"object":         map[string]any{"acme/api": true},
		"number":         42,
		"null":           nil,
		"bool":           true,
		"empty":          "",
		"slash no owner": "/acme/api",
	} {
		extra := map[string]any{"repository": repo}
		if repo == nil {
			extra = map[string]any{"repository": nil}
		}
		resp := f.do("POST", "/v1/requests", f.token("u-"+strings.ReplaceAll(name, " ", "-"), extra), validBody)
		if resp.status != http.StatusForbidden || resp.errorCode() != api.CodeForbidden {
			t.Errorf("repository %#v (%s): %d %s, want 403 forbidden", repo, name, resp.status, resp.body)
		}
	}
	// Documented glob semantics: these match "acme/*".
	for _, repo := range []string{"acme/../evil", "acme/x\x00y"} {
		resp := f.do("POST", "/v1/requests", f.token("glob-"+repo[len(repo)-1:], map[string]any{"repository": repo}), validBody)
		if resp.status != http.StatusCreated {
			t.Errorf("repository %q: %d (documented to match acme/*)", repo, resp.status)
		}
	}
}

// TestAttackSameSubOtherIssuer: a token with the same sub from
// another trusted issuer can neither read, long-poll, cancel nor read the
// attestation of the request; and it gets the same 404 as an unknown id.
func TestAttackSameSubOtherIssuer(t *testing.T) {
	f := newAPIFixture(t)
	r := f.create("dev-user")
	other := mint(t, f.other, "dev-user", "signoff", map[string]any{"repository": "acme/api", "actor": "dev-user"})
	// the fixture's ci issuer with another sub, but the same actor
	sameActor := f.token("someone-else", map[string]any{"actor": "dev-user"})
	for _, tok := range []string{other, sameActor} {
		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/requests/" + r.ID},
			{"GET", "/v1/requests/" + r.ID + "?wait=1s"},
			{"POST", "/v1/requests/" + r.ID + "/cancel"},
			{"GET", "/v1/requests/" + r.ID + "/attestation"},
		} {
			resp := f.do(c.method, c.path, tok, "")
			if resp.status != http.StatusNotFound {
				t.Errorf("%s %s by another identity: %d %s", c.method, c.path, resp.status, resp.body)
			}
		}
	}
	got, _ := f.svc.Get(t.Context(), r.ID)
	if got.State != storage.StatePending {
		t.Fatalf("request is %s after the other identities' calls", got.State)
	}
}

// TestAttackIdempotencyKeys: the same key from two requesters
// makes two requests; the same key with another body is a 409; under the
// rate limit a faithful retry is still answered but a changed body is not
// slipped through the replay path.
func TestAttackIdempotencyKeys(t *testing.T) {
	f := newAPIFixture(t, apiLimits{requestsPerMinute: 1})
	key := []string{"Idempotency-Key", "shared-key"}
	a := f.do("POST", "/v1/requests", f.token("alice", nil), validBody, key...)
	b := f.do("POST", "/v1/requests", f.token("bob", nil), validBody, key...)
	if a.status != http.StatusCreated || b.status != http.StatusCreated {
		t.Fatalf("two requesters, one key: %d / %d", a.status, b.status)
	}
	if a.view(t).ID == b.view(t).ID {
		t.Fatal("two requesters with one key share a request")
	}
	// other issuer, same sub, same key: its own request (or a refusal), never alice's
	oth := mint(t, f.other, "alice", "signoff", map[string]any{"repository": "acme/api"})
	if resp := f.do("POST", "/v1/requests", oth, validBody, key...); resp.status == http.StatusOK || resp.status == http.StatusCreated {
		if resp.view(t).ID == a.view(t).ID {
			t.Fatal("other issuer's same sub got alice's request through the key")
		}
	}
	changed := strings.Replace(validBody, "1.4.2", "9.9.9", 1)
	// alice is now over requests_per_minute: a faithful retry answers 200
	if resp := f.do("POST", "/v1/requests", f.token("alice", nil), validBody, key...); resp.status != http.StatusOK || resp.view(t).ID != a.view(t).ID {
		t.Errorf("faithful retry over the limit: %d %s", resp.status, resp.body)
	}
	if resp := f.do("POST", "/v1/requests", f.token("alice", nil), changed, key...); resp.status != http.StatusConflict {
		t.Errorf("changed body, same key, over the limit: %d %s", resp.status, resp.body)
	}
}

// TestAttackConcurrentLongPollsBounded: one requester cannot hold any
// number of long polls open at once (each a goroutine and a store read
// every ReplicaPoll): past MaxLongPollsPerRequester the answer is 429.
func TestAttackConcurrentLongPollsBounded(t *testing.T) {
	f := newAPIFixture(t, apiLimits{requestsPerMinute: 60, pendingPerRequester: 5})
	r := f.create("dev-user")
	tok := f.token("dev-user", nil)
	const n = 300
	statuses := make(chan int, n)
	for range n {
		go func() {
			resp := f.do("GET", "/v1/requests/"+r.ID+"?wait=2s", tok, "")
			statuses <- resp.status
		}()
	}
	refused := 0
	for range n {
		if s := <-statuses; s == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused == 0 {
		t.Fatalf("%d concurrent long polls by one requester on one request: none refused", n)
	}
}
