package bot_test

// The OpenAPI document (api.OpenAPI) against the real front door: the
// routes it registers under /v1, the document it serves, and its answers,
// validated against the document's schemas by a maintained OpenAPI
// validator.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	vderrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/bot/chatlimit"
	"github.com/signoff-dev/signoff/bot/devconsole"
	"github.com/signoff-dev/signoff/bot/slackbot"
	"github.com/signoff-dev/signoff/bot/ssf"
	"github.com/signoff-dev/signoff/bot/teamsbot"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/storage"
)

// openAPI is the document, its OpenAPI 3.1 model and a validator of
// requests and answers against it.
type openAPI struct {
	model *v3.Document
	v     validator.Validator
}

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	doc, err := libopenapi.NewDocument(api.OpenAPI())
	if err != nil {
		t.Fatalf("parse the OpenAPI document: %v", err)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build its model: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errors.Join(errs...))
	}
	return openAPI{model: &m.Model, v: v}
}

// operations are the document's operations, "METHOD /path" → the methods
// of each path.
func (o openAPI) operations() (ops []string, methods map[string][]string) {
	methods = map[string][]string{}
	for path, item := range o.model.Paths.PathItems.FromOldest() {
		for m := range item.GetOperations().KeysFromOldest() {
			m = strings.ToUpper(m)
			ops = append(ops, m+" "+path)
			methods[path] = append(methods[path], m)
		}
	}
	slices.Sort(ops)
	return ops, methods
}

// v1Routes splits the front door's routes under /v1 into those of one
// method ("GET /v1/requests/{id}") and the method-less ones ("/v1/").
func v1Routes(front *bot.Server) (withMethod, anyMethod []string) {
	for _, r := range front.Routes() {
		if r.Host != "" || (r.Path != "/v1" && !strings.HasPrefix(r.Path, "/v1/")) {
			continue
		}
		if r.Method == "" {
			anyMethod = append(anyMethod, r.Path)
		} else {
			withMethod = append(withMethod, r.Method+" "+r.Path)
		}
	}
	slices.Sort(withMethod)
	slices.Sort(anyMethod)
	return withMethod, anyMethod
}

type refusingSETs struct{}

func (refusingSETs) Verify(context.Context, string) (*oidc.SET, error) {
	return nil, errors.New("no transmitter in this test")
}

// mountEverything mounts on front what `signoff serve` can mount beside
// the API: the Slack and Teams adapters, the Shared Signals receiver and
// the dev console, each in its fullest configuration.
func mountEverything(t *testing.T, f *apiFixture, front *bot.Server) {
	t.Helper()
	links := chattest.NewLinks()
	sb, err := slackbot.New(slackbot.Options{
		Service: f.svc, Resolver: links, BotToken: "xoxb-test", SigningSecret: "slack-signing-secret-0123456789", TeamID: "T0TEST",
		APIURL: "http://127.0.0.1:1/api/", PublicURL: "https://signoff.example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Shutdown(context.Background()) })
	sb.Register(front)
	bf := teamstest.NewServer(teamstest.Options{})
	t.Cleanup(bf.Close)
	tb, err := teamsbot.New(teamsbot.Options{
		Service: f.svc, Resolver: links,
		AppID: bf.AppID(), AppPassword: bf.AppPassword(), TenantIDs: []string{bf.TenantID()},
		OpenIDMetadataURL: bf.OpenIDMetadataURL(), TokenURL: bf.TokenURL(),
		PublicURL: "https://signoff.example.com", ServiceURLHosts: []string{bf.ServiceHost()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tb.Shutdown(context.Background()) })
	tb.Register(front)
	rcv, err := ssf.New(ssf.Options{Verifier: refusingSETs{}, Links: f.svc, BearerToken: "push-token"})
	if err != nil {
		t.Fatal(err)
	}
	rcv.Register(front)
	devconsole.New(devconsole.Options{Service: f.svc, Linker: links}).Register(front)
}

// TestOpenAPIDescribesEveryRoute: the (method, path) pairs the front door
// registers under /v1 are exactly the document's operations, whatever the
// configuration and whatever else is mounted; each documented path answers
// other methods with a JSON 405 whose Allow lists the documented ones; and
// nothing else under /v1 is registered but the catch-all's JSON 404.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	o := loadOpenAPI(t)
	ops, methods := o.operations()
	wantAny := []string{"/v1/"} // the catch-all
	for p := range methods {
		wantAny = append(wantAny, p)
	}
	slices.Sort(wantAny)

	f := newAPIFixture(t)
	full := bot.New(bot.Options{
		Service: f.svc, Store: f.store, Version: "test",
		Login:             &api.LoginConfig{Issuer: "https://idp.example", ClientID: "signoff-cli", Scopes: []string{"openid"}},
		RequestURL:        func(id string) string { return "https://signoff.example.com/r/" + id },
		RequestsPerMinute: 10, Clicks: chatlimit.New(10, nil), Clock: clock.NewFake(time.Now()),
	})
	mountEverything(t, f, full)
	fronts := map[string]*bot.Server{
		"the test fixture":                     f.front,
		"no options but the service and store": bot.New(bot.Options{Service: f.svc, Store: f.store}),
		"every option, every component":        full,
	}
	for name, front := range fronts {
		withMethod, anyMethod := v1Routes(front)
		if !slices.Equal(withMethod, ops) {
			t.Errorf("%s: the server registers under /v1\n\t%v\nthe document describes\n\t%v", name, withMethod, ops)
		}
		if !slices.Equal(anyMethod, wantAny) {
			t.Errorf("%s: the method-less /v1 routes are %v; want each documented path's 405 twin and the catch-all: %v", name, anyMethod, wantAny)
		}
	}
	// The listing is the router's: it holds the routes outside /v1 and
	// what components mounted.
	all := fmt.Sprint(full.Routes())
	for _, want := range []string{"GET /healthz", "GET /metrics", "POST " + slackbot.InteractionsPath, "POST " + teamsbot.MessagesPath, "POST " + ssf.Path, "POST /dev/vote"} {
		if !strings.Contains(all, want) {
			t.Errorf("Routes() has no %s: %s", want, all)
		}
	}

	for path, ms := range methods {
		allow := slices.Clone(ms)
		if slices.Contains(ms, "GET") {
			get := o.model.Paths.PathItems.GetOrZero(path).Get
			if get.Responses.Codes.GetOrZero("405") == nil {
				allow = append(allow, "HEAD") // GET answers HEAD unless it documents a 405
			}
		}
		slices.Sort(allow)
		target := strings.NewReplacer("{", "", "}", "").Replace(path)
		resp := f.do("PATCH", target, f.token("alice", nil), "")
		got := strings.Split(resp.header.Get("Allow"), ", ")
		slices.Sort(got)
		if resp.status != http.StatusMethodNotAllowed || resp.errorCode() != api.CodeMethodNotAllowed || !slices.Equal(got, allow) {
			t.Errorf("PATCH %s: %d %s, Allow %v; want 405 method_not_allowed, Allow %v", target, resp.status, resp.errorCode(), got, allow)
		}
	}
	if resp := f.do("GET", "/v1/no-such-endpoint", "", ""); resp.status != http.StatusNotFound || resp.errorCode() != api.CodeNotFound ||
		!strings.Contains(resp.errorMessage(), api.OpenAPIPath) {
		t.Errorf("an unknown /v1 path: %d %s %q; want 404 not_found pointing at %s", resp.status, resp.errorCode(), resp.errorMessage(), api.OpenAPIPath)
	}
}

// TestOpenAPIServed: the document is public, JSON, exactly api.OpenAPI,
// cacheable and revalidated by its ETag.
func TestOpenAPIServed(t *testing.T) {
	f := newAPIFixture(t)
	resp := f.do("GET", api.OpenAPIPath, "", "")
	if resp.status != http.StatusOK || !bytes.Equal(resp.body, api.OpenAPI()) {
		t.Fatalf("GET %s without a token: %d, %d bytes; want 200 and the document", api.OpenAPIPath, resp.status, len(resp.body))
	}
	h := resp.header
	if h.Get("Content-Type") != "application/json" || !strings.Contains(h.Get("Cache-Control"), "max-age=") || h.Get("ETag") == "" ||
		h.Get("Access-Control-Allow-Origin") != "*" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v: want application/json, a max-age, an ETag, any origin and nosniff", h)
	}
	etag := h.Get("ETag")
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		again := f.do("GET", api.OpenAPIPath, "", "", "If-None-Match", inm)
		if again.status != http.StatusNotModified || len(again.body) != 0 || again.header.Get("ETag") != etag {
			t.Errorf("If-None-Match %s: %d, %d bytes, ETag %q; want 304, no body, the same ETag", inm, again.status, len(again.body), again.header.Get("ETag"))
		}
	}
	if other := f.do("GET", api.OpenAPIPath, "", "", "If-None-Match", `"other"`); other.status != http.StatusOK {
		t.Errorf("If-None-Match with another tag: %d, want 200", other.status)
	}
	head := f.do("HEAD", api.OpenAPIPath, "", "")
	if head.status != http.StatusOK || len(head.body) != 0 || head.header.Get("Content-Length") != fmt.Sprint(len(api.OpenAPI())) {
		t.Errorf("HEAD: %d, %d bytes, Content-Length %q", head.status, len(head.body), head.header.Get("Content-Length"))
	}
	if post := f.do("POST", api.OpenAPIPath, "", "{}"); post.status != http.StatusMethodNotAllowed || post.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q; want 405, GET, HEAD", post.status, post.header.Get("Allow"))
	}
}

// exchange is one call to the real front door: the request as sent and
// the answer as received, each readable again.
type exchange struct {
	method, path string
	header       http.Header
	reqBody      []byte
	resp         response
	url          string
}

func (f *apiFixture) exchange(method, path, token, body string, headers ...string) exchange {
	f.t.Helper()
	resp := f.do(method, path, token, body, headers...)
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		h.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Add(headers[i], headers[i+1])
	}
	return exchange{method: method, path: path, header: h, reqBody: []byte(body), resp: resp, url: f.api.URL + path}
}

func (e exchange) httpRequest(t *testing.T) *http.Request {
	t.Helper()
	req, err := http.NewRequest(e.method, e.url, bytes.NewReader(e.reqBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = e.header.Clone()
	return req
}

func (e exchange) httpResponse(req *http.Request) *http.Response {
	return &http.Response{
		StatusCode: e.resp.status, Header: e.resp.header.Clone(), Request: req,
		Body: io.NopCloser(bytes.NewReader(e.resp.body)), ContentLength: int64(len(e.resp.body)),
	}
}

// check validates the answer against the document and, when whole, the
// request too (a test sends some requests the document calls invalid, to
// see the server's error answer).
func (o openAPI) check(t *testing.T, e exchange, wantStatus int, whole bool) {
	t.Helper()
	if e.resp.status != wantStatus {
		t.Errorf("%s %s: status %d, want %d: %s", e.method, e.path, e.resp.status, wantStatus, e.resp.body)
		return
	}
	req := e.httpRequest(t)
	var ok bool
	var errs []*vderrors.ValidationError
	if whole {
		ok, errs = o.v.ValidateHttpRequestResponse(req, e.httpResponse(req))
	} else {
		ok, errs = o.v.ValidateHttpResponse(req, e.httpResponse(req))
	}
	if !ok {
		t.Errorf("%s %s → %d does not match the document:%s\n\tbody: %s", e.method, e.path, e.resp.status, describe(errs), e.resp.body)
	}
}

func describe(errs []*vderrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n\t%s: %s", e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n\t\t%s: %s", f.FieldPath, f.Reason)
		}
	}
	return b.String()
}

// TestOpenAPIAnswersMatchTheDocument drives the real front door through
// every endpoint, its successes and its refusals, and validates each
// answer (and each well-formed request) against the document.
func TestOpenAPIAnswersMatchTheDocument(t *testing.T) {
	o := loadOpenAPI(t)
	f := newAPIFixture(t)
	alice, bob := f.token("alice", nil), f.token("bob", nil)
	admin, auditor := f.adminToken(), f.auditorToken()

	// POST /v1/requests
	created := f.exchange("POST", "/v1/requests", alice, validBody, "Idempotency-Key", "run-1")
	o.check(t, created, http.StatusCreated, true)
	o.check(t, f.exchange("POST", "/v1/requests", alice, validBody, "Idempotency-Key", "run-1"), http.StatusOK, true)
	o.check(t, f.exchange("POST", "/v1/requests", alice, `{"action":"deploy","params":{"service":"api","version":"2"}}`, "Idempotency-Key", "run-1"), http.StatusConflict, true)
	o.check(t, f.exchange("POST", "/v1/requests", alice, `{"action":"launch-rockets"}`), http.StatusBadRequest, true)
	o.check(t, f.exchange("POST", "/v1/requests", alice, `{"action":"deploy","params":{"service":"API!"}}`), http.StatusBadRequest, true)
	o.check(t, f.exchange("POST", "/v1/requests", f.token("mallory", map[string]any{"repository": "evil/repo"}), validBody), http.StatusForbidden, true)
	o.check(t, f.exchange("POST", "/v1/requests", alice, `{"action":`), http.StatusBadRequest, false)
	o.check(t, f.exchange("POST", "/v1/requests", "", validBody), http.StatusUnauthorized, false)
	o.check(t, f.exchange("POST", "/v1/requests", "not-a-jwt", validBody), http.StatusUnauthorized, true)
	o.check(t, f.exchange("POST", "/v1/requests", alice, `{"action":"deploy","reason":"`+strings.Repeat("x", bot.MaxRequestBody)+`"}`), http.StatusRequestEntityTooLarge, false)
	id := created.resp.view(t).ID

	// GET /v1/requests/{id}
	o.check(t, f.exchange("GET", "/v1/requests/"+id, alice, ""), http.StatusOK, true)
	o.check(t, f.exchange("GET", "/v1/requests/"+id+"?wait=soon", alice, ""), http.StatusBadRequest, true)
	o.check(t, f.exchange("GET", "/v1/requests/"+id, bob, ""), http.StatusNotFound, true)
	o.check(t, f.exchange("GET", "/v1/requests/req_missing", alice, ""), http.StatusNotFound, true)
	f.vote(id, "carol", storage.DecisionApprove)
	decided := f.exchange("GET", "/v1/requests/"+id+"?wait=30s", auditor, "")
	o.check(t, decided, http.StatusOK, true)
	if v := decided.resp.view(t); v.State != api.StateApproved || len(v.Votes) != 1 || v.DecidedAt == nil || v.DecidedBy != api.DecidedByQuorum {
		t.Errorf("the approved request: %+v", v)
	}

	// GET /v1/requests/{id}/attestation
	o.check(t, f.exchange("GET", "/v1/requests/"+id+"/attestation", alice, ""), http.StatusOK, true)
	o.check(t, f.exchange("GET", "/v1/requests/"+id+"/attestation", bob, ""), http.StatusNotFound, true)

	// POST /v1/requests/{id}/cancel
	o.check(t, f.exchange("POST", "/v1/requests/"+id+"/cancel", alice, ""), http.StatusConflict, true)
	pending := f.create("alice")
	o.check(t, f.exchange("GET", "/v1/requests/"+pending.ID+"/attestation", alice, ""), http.StatusConflict, true)
	o.check(t, f.exchange("POST", "/v1/requests/"+pending.ID+"/cancel", auditor, ""), http.StatusForbidden, true)
	o.check(t, f.exchange("POST", "/v1/requests/"+pending.ID+"/cancel", admin, ""), http.StatusBadRequest, true)
	o.check(t, f.exchange("POST", "/v1/requests/"+pending.ID+"/cancel", admin, `{"reason":"wrong train"}`), http.StatusOK, true)
	o.check(t, f.exchange("POST", "/v1/requests/"+f.create("alice").ID+"/cancel", alice, ""), http.StatusOK, true)

	// GET /v1/requests
	o.check(t, f.exchange("GET", "/v1/requests?state=pending,cancelled&limit=2", admin, ""), http.StatusOK, true)
	o.check(t, f.exchange("GET", "/v1/requests", auditor, ""), http.StatusOK, true)
	o.check(t, f.exchange("GET", "/v1/requests", alice, ""), http.StatusForbidden, true)
	o.check(t, f.exchange("GET", "/v1/requests?state=lost", admin, ""), http.StatusBadRequest, true)
	o.check(t, f.exchange("GET", "/v1/requests?limit=0", admin, ""), http.StatusBadRequest, false)

	// Links
	seedLinks(t, f)
	o.check(t, f.exchange("GET", "/v1/links?platform=slack", admin, ""), http.StatusOK, true)
	o.check(t, f.exchange("GET", "/v1/links", auditor, ""), http.StatusForbidden, true)
	o.check(t, f.exchange("GET", "/v1/links?colour=blue", admin, ""), http.StatusBadRequest, true)
	o.check(t, f.exchange("DELETE", "/v1/links/slack/T1/U1", admin, `{"reason":"left the company"}`), http.StatusOK, true)
	o.check(t, f.exchange("DELETE", "/v1/links/slack/T1/U1", admin, ""), http.StatusNotFound, true)
	o.check(t, f.exchange("DELETE", "/v1/links/slack/T1/U2", admin, `{"why":"x"}`), http.StatusBadRequest, false)

	// Backup
	o.check(t, f.exchange("GET", "/v1/backup", admin, ""), http.StatusOK, true)
	o.check(t, f.exchange("GET", "/v1/backup", auditor, ""), http.StatusForbidden, true)

	// Audit
	o.check(t, f.exchange("GET", "/v1/audit?request="+id, auditor, ""), http.StatusOK, true)
	o.check(t, f.exchange("GET", "/v1/audit", alice, ""), http.StatusForbidden, true)
	o.check(t, f.exchange("GET", "/v1/audit?since=yesterday", auditor, ""), http.StatusBadRequest, false)

	// Public documents
	o.check(t, f.exchange("GET", api.LoginConfigPath, "", ""), http.StatusNotFound, true)
	doc := f.exchange("GET", api.OpenAPIPath, "", "")
	o.check(t, doc, http.StatusOK, true)
	o.check(t, f.exchange("GET", api.OpenAPIPath, "", "", "If-None-Match", doc.resp.header.Get("ETag")), http.StatusNotModified, true)
	login := bot.New(bot.Options{Service: f.svc, Store: f.store, Login: &api.LoginConfig{
		Issuer: "https://idp.example", ClientID: "signoff-cli", Scopes: []string{"openid", "email", "groups"}, GroupsClaim: "groups",
	}})
	rec := httptest.NewRecorder()
	login.ServeHTTP(rec, httptest.NewRequest("GET", api.LoginConfigPath, nil))
	o.check(t, exchange{method: "GET", path: api.LoginConfigPath, url: "http://signoff.test" + api.LoginConfigPath, header: http.Header{},
		resp: response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}}, http.StatusOK, true)

	// 429, with its Retry-After.
	limited := newAPIFixture(t, apiLimits{requestsPerMinute: 1, clock: clock.NewFake(time.Now())})
	limited.create("alice")
	o.check(t, limited.exchange("POST", "/v1/requests", limited.token("alice", nil), `{"action":"deploy","params":{"service":"api","version":"9"}}`), http.StatusTooManyRequests, true)

	// The validator is not a rubber stamp: an answer that breaks the
	// document is refused.
	for name, body := range map[string]string{
		"a request without its state": strings.Replace(string(created.resp.body), `"state":"pending",`, "", 1),
		"an unknown state":            strings.Replace(string(created.resp.body), `"state":"pending"`, `"state":"maybe"`, 1),
	} {
		bad := created
		bad.resp.body = []byte(body)
		req := bad.httpRequest(t)
		if ok, _ := o.v.ValidateHttpResponse(req, bad.httpResponse(req)); ok {
			t.Errorf("%s passed validation", name)
		}
	}
	bad := f.exchange("GET", "/v1/requests/req_missing", alice, "")
	bad.resp.body = bytes.Replace(bad.resp.body, []byte(`"not_found"`), []byte(`"teapot"`), 1)
	req := bad.httpRequest(t)
	if ok, _ := o.v.ValidateHttpResponse(req, bad.httpResponse(req)); ok {
		t.Error("an error code outside the enum passed validation")
	}
}

// TestOpenAPIAuditRecords: every line of a real audit stream is an
// AuditRecord as the document describes it, whose properties are
// audit.Record's JSON fields (and AuditActor's audit.Actor's).
func TestOpenAPIAuditRecords(t *testing.T) {
	o := loadOpenAPI(t)
	for name, typ := range map[string]reflect.Type{"AuditRecord": reflect.TypeFor[audit.Record](), "AuditActor": reflect.TypeFor[audit.Actor]()} {
		var want, got []string
		for fld := range typ.Fields() {
			if n, _, _ := strings.Cut(fld.Tag.Get("json"), ","); n != "" && n != "-" {
				want = append(want, n)
			}
		}
		for k := range o.model.Components.Schemas.GetOrZero(name).Schema().Properties.KeysFromOldest() {
			got = append(got, k)
		}
		if slices.Sort(want); !slices.Equal(slices.Sorted(slices.Values(got)), want) {
			t.Errorf("schema %s has properties %v; %s's JSON fields are %v", name, slices.Sorted(slices.Values(got)), typ, want)
		}
	}

	f := newAPIFixture(t)
	req := f.create("alice")
	f.vote(req.ID, "carol", storage.DecisionApprove)
	if resp := f.do("POST", "/v1/requests/"+f.create("alice").ID+"/cancel", f.adminToken(), `{"reason":"not today"}`); resp.status != http.StatusOK {
		t.Fatalf("admin cancel: %d %s", resp.status, resp.body)
	}
	resp := f.do("GET", "/v1/audit", f.auditorToken(), "")
	if resp.status != http.StatusOK || resp.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("GET /v1/audit: %d %s", resp.status, resp.header.Get("Content-Type"))
	}
	schema := o.model.Components.Schemas.GetOrZero("AuditRecord").Schema()
	sv := schema_validation.NewSchemaValidator()
	lines := strings.Split(strings.TrimSuffix(string(resp.body), "\n"), "\n")
	if len(lines) < 4 {
		t.Fatalf("%d audit records, want at least 4: %s", len(lines), resp.body)
	}
	for _, line := range lines {
		if ok, errs := sv.ValidateSchemaString(schema, line); !ok {
			t.Errorf("audit record does not match AuditRecord:%s\n\t%s", describe(errs), line)
		}
	}
	if ok, _ := sv.ValidateSchemaString(schema, `{"seq":0,"time":"now","type":"x","prev":"","actor":{"issuer":1}}`); ok {
		t.Error("a malformed record passed validation")
	}
}
