package bot_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/storage"
)

// apiErrorStatus is the documented set of API error codes, each with the
// status it is answered with (a policy refusal of an action's requester is
// 403 forbidden, its other refusals 400).
var apiErrorStatus = map[api.Code][]int{
	api.CodeUnauthenticated:  {http.StatusUnauthorized},
	api.CodeForbidden:        {http.StatusForbidden},
	api.CodeUnknownAction:    {http.StatusBadRequest},
	api.CodeInvalidParams:    {http.StatusBadRequest},
	api.CodeInvalidRequest:   {http.StatusBadRequest},
	api.CodeNotFound:         {http.StatusNotFound},
	api.CodeConflict:         {http.StatusConflict},
	api.CodeNotPending:       {http.StatusConflict},
	api.CodePayloadTooLarge:  {http.StatusRequestEntityTooLarge},
	api.CodeMethodNotAllowed: {http.StatusMethodNotAllowed},
}

// serve sends req through the fixture's front door (router, recover
// middleware, access log) in process, without a socket, and returns the
// answer.
func (f *apiFixture) serve(req *http.Request) response {
	rec := httptest.NewRecorder()
	f.front.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// checkLogs fails when the server log holds any of the tokens, and then
// empties the log (a fuzz target would otherwise grow it without bound).
func (f *apiFixture) checkLogs(t *testing.T, tokens []string) {
	t.Helper()
	logs := f.logs.Take()
	for _, tok := range tokens {
		if strings.Contains(logs, tok[len(tok)-20:]) {
			t.Fatalf("the log holds a bearer token:\n%s", logs)
		}
	}
}

// checkAPIAnswer checks what every answer of the API must be: no 5xx, one
// JSON value, and either a request view (2xx) or an error of a documented
// code with its status and a message.
func checkAPIAnswer(t *testing.T, resp response) (api.Request, bool) {
	t.Helper()
	if resp.status >= 500 {
		t.Fatalf("server error %d: %s", resp.status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("status %d with Content-Type %q: %s", resp.status, ct, resp.body)
	}
	dec := json.NewDecoder(bytes.NewReader(resp.body))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("status %d: the answer is not JSON (%v): %q", resp.status, err, resp.body)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("status %d: more than one JSON value in the answer: %q", resp.status, resp.body)
	}
	if bytes.Contains(resp.body, []byte("goroutine ")) {
		t.Fatalf("stack trace in the answer: %s", resp.body)
	}
	if resp.status == http.StatusOK || resp.status == http.StatusCreated {
		var v api.Request
		strict := json.NewDecoder(bytes.NewReader(resp.body))
		strict.DisallowUnknownFields()
		if err := strict.Decode(&v); err != nil {
			t.Fatalf("status %d: the answer is not a request: %v: %s", resp.status, err, resp.body)
		}
		if v.ID == "" || v.Action == "" || v.State == "" || v.Requester.Issuer == "" || v.Requester.Subject == "" {
			t.Fatalf("status %d: incomplete request: %s", resp.status, resp.body)
		}
		return v, true
	}
	var eb api.ErrorBody
	strict := json.NewDecoder(bytes.NewReader(resp.body))
	strict.DisallowUnknownFields()
	if err := strict.Decode(&eb); err != nil {
		t.Fatalf("status %d: the answer is not an error: %v: %s", resp.status, err, resp.body)
	}
	statuses, documented := apiErrorStatus[eb.Error.Code]
	if !documented {
		t.Fatalf("status %d with undocumented code %q: %s", resp.status, eb.Error.Code, resp.body)
	}
	ok := false
	for _, s := range statuses {
		ok = ok || s == resp.status
	}
	if !ok {
		t.Fatalf("code %q answered with status %d: %s", eb.Error.Code, resp.status, resp.body)
	}
	if strings.TrimSpace(eb.Error.Message) == "" {
		t.Fatalf("code %q without a message", eb.Error.Code)
	}
	return api.Request{}, false
}

// headerValue makes s a value net/http would deliver in a header: no
// control characters but tab (the server refuses those requests before
// any handler runs) and no surrounding blanks (it trims them).
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if (r < ' ' && r != '\t') || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return strings.Trim(s, " \t")
}

// Header variations of FuzzCreateRequest (bits of its mode argument).
const (
	modeKey         = 1 << iota // send the key as Idempotency-Key
	modeSecondKey               // and a second Idempotency-Key header
	modeNoCT                    // no Content-Type
	modeTextCT                  // Content-Type text/plain
	modeUnknownLen              // a body of unknown length (Content-Length -1)
	modeOtherIssuer             // a token from an issuer no action allows
	modeLowerBearer             // "bearer" in lower case, padded
)

// FuzzCreateRequest posts arbitrary bodies to POST /v1/requests through the
// real router with a valid token, with a few header variations: the
// answer is never a 5xx or a panic, always one JSON value, and either a
// request (201 created with a Location, or 200 for an idempotent retry) or
// an error of a documented code. A request created under an idempotency
// key comes back, not again, when the call is repeated, and the audit log
// the calls write keeps verifying.
func FuzzCreateRequest(f *testing.F) {
	fx := newAPIFixture(f)
	tail := testenv.NewAuditTail(fx.store)
	tokens := [2]string{fx.token("fuzz-user", map[string]any{"name": "Fuzz User", "email": "fuzz@example.com"}), mint(f, fx.other, "fuzz-user", "signoff", map[string]any{"repository": "acme/api"})}

	for _, body := range []string{
		validBody,
		`{"action":"deploy","params":{"service":"api","version":"1.4.2"}}`,
		`{"action":"deploy","params":{"service":"api","version":"1"},"reason":"` + strings.Repeat("x", 5000) + `"}`,
		`{"action":"drop-db"}`,
		`{"action":"deploy","params":{"service":"API!","version":"1"}}`,
		`{"action":"deploy","params":{"service":"api"}}`,
		`{"action":"deploy","params":{"service":"api","version":"1","x":"y"}}`,
		`{"params":{}}`,
		`{"action":"deploy","params":{"service":"api","version":"1"},"links":[{"title":"x","url":"javascript:alert(1)"}]}`,
		`{"action":"deploy","params":{"service":"api","version":"1"},"links":[null]}`,
		`{"action":"deploy","approvers":["me"]}`,
		"{\n  \"action\": \"deploy\",\n  \"params\": {\"service\" \"api\"}\n}",
		`{"action":"deploy","params":{"service":1}}`,
		`["deploy"]`,
		`{"action":"deploy"} {"action":"deploy"}`,
		``,
		`{"action":"dep`,
		`null`,
		`"deploy"`,
		`1e999`,
		`{"action":1}`,
		`{"action":"deploy","params":[]}`,
		`{"action":"deploy","links":"x"}`,
		"{\"action\":\"deploy\",\"params\":{\"service\":\"api\",\"version\":\"1\"},\"reason\":\"\xff\xfe\"}",
		`{"action":"\u0000"}`,
		strings.Repeat("[", 2000),
		`{"action":"deploy","action":"x"}`,
		`{"ACTION":"deploy","Params":{"service":"api","version":"2"}}`,
		`{"action":"deploy","params":{"service":"api","version":"\ud800"}}`,
		manyParams(50),
	} {
		f.Add(body, "", uint8(0))
	}
	f.Add(validBody, "run-42", uint8(modeKey))
	f.Add(validBody, "run-42", uint8(modeKey|modeSecondKey))
	f.Add(validBody, strings.Repeat("k", 300), uint8(modeKey))
	f.Add(validBody, "", uint8(modeNoCT|modeUnknownLen))
	f.Add(validBody, "k\x00ey", uint8(modeKey|modeTextCT|modeLowerBearer))
	f.Add(validBody, "", uint8(modeOtherIssuer))

	f.Fuzz(func(t *testing.T, body, key string, mode uint8) {
		build := func() *http.Request {
			var rd io.Reader = strings.NewReader(body)
			if mode&modeUnknownLen != 0 {
				rd = io.MultiReader(rd) // hides the length
			}
			req := httptest.NewRequest(http.MethodPost, "/v1/requests", rd)
			if mode&modeUnknownLen != 0 {
				req.ContentLength = -1
			}
			tok := tokens[0]
			if mode&modeOtherIssuer != 0 {
				tok = tokens[1]
			}
			if mode&modeLowerBearer != 0 {
				req.Header.Set("Authorization", "bearer   "+tok)
			} else {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			switch {
			case mode&modeNoCT != 0:
			case mode&modeTextCT != 0:
				req.Header.Set("Content-Type", "text/plain")
			default:
				req.Header.Set("Content-Type", "application/json")
			}
			if mode&modeKey != 0 {
				req.Header.Add("Idempotency-Key", headerValue(key))
				if mode&modeSecondKey != 0 {
					req.Header.Add("Idempotency-Key", "second")
				}
			}
			return req
		}
		resp := fx.serve(build())
		tail.Check(t)
		fx.checkLogs(t, tokens[:])
		v, isView := checkAPIAnswer(t, resp)
		if !isView {
			return
		}
		idempotent := mode&modeKey != 0 && mode&modeSecondKey == 0 && strings.TrimSpace(headerValue(key)) != ""
		switch {
		case resp.status == http.StatusCreated:
			if loc := resp.header.Get("Location"); loc != "/v1/requests/"+v.ID {
				t.Fatalf("created %s with Location %q", v.ID, loc)
			}
		case !idempotent:
			t.Fatalf("status %d without an idempotency key: %s", resp.status, resp.body)
		}
		if v.State != api.StatePending || v.Action != "deploy" || v.Requester.Subject != "fuzz-user" {
			t.Fatalf("created an unexpected request: %s", resp.body)
		}
		if !idempotent {
			return
		}
		again := fx.serve(build())
		w, ok := checkAPIAnswer(t, again)
		if !ok || again.status != http.StatusOK || w.ID != v.ID {
			t.Fatalf("retry under key %q: %d %s (first %s)", key, again.status, again.body, v.ID)
		}
	})
}

// FuzzWaitQuery sends arbitrary query strings (and arbitrary ?wait=
// values) to GET /v1/requests/{id}: the answer is never a 5xx, is the
// request or an invalid_request error, and a wait that parses never holds
// the answer (the server is drained, as at shutdown, so long-polls answer
// at once).
func FuzzWaitQuery(f *testing.F) {
	fx := newAPIFixture(f)
	tok := fx.token("fuzz-user", nil)
	pending := fx.create("fuzz-user")
	decided := fx.create("fuzz-user")
	fx.vote(decided.ID, "alice", storage.DecisionApprove)
	// Long-polls in flight or to come answer at once from now on.
	fx.front.Drain()

	for _, raw := range []string{"", "wait=30s", "wait=60", "wait=200ms", "wait=abc", "wait=-1s", "wait=1e9h", "wait=30s&wait=1s",
		"wait=99999999999999999999", "wait=", "wait=%zz", "wait=0", "wait=4294967296", "wait=%2B5s", "wait=.5s", "wait=1h1m1s1ms1us1ns",
		"x=1&wait=5s", "wait;=1", "wait=9223372036854775807ns"} {
		f.Add(raw, false, uint8(0))
		f.Add(raw, false, uint8(1))
	}
	for _, v := range []string{"30s", "-0", "1\x00s", "١٢", "+1s", " 5", "18446744073709551615"} {
		f.Add(v, true, uint8(2))
	}

	f.Fuzz(func(t *testing.T, q string, asValue bool, which uint8) {
		id := []string{pending.ID, decided.ID, "req_doesnotexist"}[int(which)%3]
		req := httptest.NewRequest(http.MethodGet, "/v1/requests/"+id, nil)
		if asValue {
			req.URL.RawQuery = "wait=" + url.QueryEscape(q)
		} else {
			req.URL.RawQuery = requestTargetQuery(q)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp := fx.serve(req)
		fx.checkLogs(t, []string{tok})
		v, isView := checkAPIAnswer(t, resp)
		switch {
		case isView:
			if resp.status != http.StatusOK || v.ID != id {
				t.Fatalf("GET %s?%s: %d %s", id, req.URL.RawQuery, resp.status, resp.body)
			}
		case resp.status == http.StatusNotFound:
			if id != "req_doesnotexist" {
				t.Fatalf("GET %s?%s: %d %s", id, req.URL.RawQuery, resp.status, resp.body)
			}
		case resp.status != http.StatusBadRequest || resp.errorCode() != api.CodeInvalidRequest:
			t.Fatalf("GET %s?%s: %d %s", id, req.URL.RawQuery, resp.status, resp.body)
		}
	})
}

// requestTargetQuery makes s a query the server could receive in a request
// line: bytes that cannot appear there (controls, blanks, '#', non-ASCII)
// are percent-encoded, as a client would send them.
func requestTargetQuery(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '#' {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
