package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
)

// fakeServer answers with handle and records each call it received.
func fakeServer(t *testing.T, handle http.HandlerFunc) (*httptest.Server, <-chan *http.Request) {
	t.Helper()
	calls := make(chan *http.Request, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r2 := r.Clone(context.Background())
		r2.Body = io.NopCloser(strings.NewReader(string(body)))
		select {
		case calls <- r2:
		default:
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		handle(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, calls
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func newClient(t *testing.T, base string, token api.TokenFunc) *api.Client {
	t.Helper()
	c, err := api.NewClient(base+"/", token, api.ClientOptions{UserAgent: "signoff/test"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCreateSendsBodyKeyAndToken(t *testing.T) {
	n := 0
	srv, calls := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		n++
		status := http.StatusCreated
		if n > 1 {
			status = http.StatusOK // an idempotent retry
		}
		writeJSON(w, status, api.Request{ID: "req_1", Action: "deploy", State: api.StatePending})
	})
	tokens := 0
	c := newClient(t, srv.URL, func(context.Context) (string, error) {
		tokens++
		return "tok-" + strconv.Itoa(tokens), nil
	})
	if c.BaseURL() != srv.URL {
		t.Errorf("BaseURL %q, want %q", c.BaseURL(), srv.URL)
	}
	body := api.CreateRequest{Action: "deploy", Params: map[string]string{"service": "api"}, Links: []api.Link{{Title: "CI", URL: "https://ci.example/1"}}}
	r, created, err := c.Create(t.Context(), body, "key-1")
	if err != nil || !created || r.ID != "req_1" {
		t.Fatalf("first create: %+v %v %v", r, created, err)
	}
	got := <-calls
	if got.Method != http.MethodPost || got.URL.Path != "/v1/requests" || got.Header.Get("Idempotency-Key") != "key-1" ||
		got.Header.Get("Authorization") != "Bearer tok-1" || got.Header.Get("Content-Type") != "application/json" || got.Header.Get("User-Agent") != "signoff/test" {
		t.Errorf("call: %s %s %v", got.Method, got.URL, got.Header)
	}
	var sent api.CreateRequest
	if err := json.NewDecoder(got.Body).Decode(&sent); err != nil || sent.Action != "deploy" || sent.Params["service"] != "api" || len(sent.Links) != 1 {
		t.Errorf("body sent: %+v %v", sent, err)
	}
	// The token is asked for on every call (a renewed one is used).
	if _, created, err := c.Create(t.Context(), body, "key-1"); err != nil || created {
		t.Fatalf("retry: created %v, %v", created, err)
	}
	if got := <-calls; got.Header.Get("Authorization") != "Bearer tok-2" {
		t.Errorf("second call's token: %q", got.Header.Get("Authorization"))
	}
}

func TestErrorAnswers(t *testing.T) {
	cases := []struct {
		name   string
		handle http.HandlerFunc
		check  func(t *testing.T, e *api.Error)
	}{
		{"signoff error", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "7")
			writeJSON(w, http.StatusTooManyRequests, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeRateLimited, Message: "slow down"}})
		}, func(t *testing.T, e *api.Error) {
			if e.Status != http.StatusTooManyRequests || e.Code != api.CodeRateLimited || e.Message != "slow down" || e.RetryAfter != 7*time.Second {
				t.Errorf("%+v", e)
			}
			if e.Error() != "429 rate_limited: slow down" {
				t.Errorf("Error() = %q", e.Error())
			}
		}},
		{"not signoff", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, func(t *testing.T, e *api.Error) {
			if e.Status != http.StatusNotFound || e.Code != "" || e.Error() != "404 Not Found" {
				t.Errorf("%+v %q", e, e.Error())
			}
		}},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/v1/requests", http.StatusFound)
		}, func(t *testing.T, e *api.Error) {
			if e.Status != http.StatusFound || e.Header.Get("Location") != "https://elsewhere.example/v1/requests" {
				t.Errorf("%+v", e)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := fakeServer(t, tc.handle)
			_, _, err := newClient(t, srv.URL, api.StaticToken("t")).Create(t.Context(), api.CreateRequest{Action: "deploy"}, "")
			var e *api.Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *api.Error: %v", err)
			}
			tc.check(t, e)
		})
	}
}

func TestAnswerErrors(t *testing.T) {
	srv, _ := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/requests":
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html>a login page</html>")
		case "/v1/requests/req_1":
			writeJSON(w, http.StatusOK, api.Request{ID: "req_2"})
		case "/v1/backup":
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html></html>")
		case api.LoginConfigPath:
			writeJSON(w, http.StatusOK, map[string]string{"issuer": "https://idp.example"})
		}
	})
	c := newClient(t, srv.URL, api.StaticToken("t"))
	var bad *api.AnswerError
	if _, _, err := c.Create(t.Context(), api.CreateRequest{Action: "deploy"}, ""); !errors.As(err, &bad) || bad.Status != http.StatusOK || bad.ContentType != "text/html" {
		t.Errorf("HTML for a create: %v", err)
	}
	if _, err := c.Get(t.Context(), "req_1", 0); !errors.As(err, &bad) {
		t.Errorf("another request's answer: %v", err)
	}
	if _, err := c.Backup(t.Context()); !errors.As(err, &bad) || bad.ContentType != "text/html" {
		t.Errorf("HTML for a backup: %v", err)
	}
	if _, err := c.LoginConfig(t.Context()); !errors.As(err, &bad) {
		t.Errorf("login config without a client id: %v", err)
	}
}

func TestGetLongPollsAndCancel(t *testing.T) {
	srv, calls := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/requests/"), "/cancel")
		writeJSON(w, http.StatusOK, api.Request{ID: id, State: api.StateCancelled})
	})
	c := newClient(t, srv.URL, api.StaticToken("t"))
	if r, err := c.Get(t.Context(), "req 1", 30*time.Second); err != nil || r.ID != "req 1" {
		t.Fatalf("get: %+v %v", r, err)
	}
	got := <-calls
	if got.URL.EscapedPath() != "/v1/requests/req%201" || got.URL.Query().Get("wait") != "30s" {
		t.Errorf("get sent %s", got.URL)
	}
	if _, err := c.Get(t.Context(), "req_1", 0); err != nil {
		t.Fatal(err)
	}
	if got := <-calls; got.URL.RawQuery != "" {
		t.Errorf("a plain read sent ?%s", got.URL.RawQuery)
	}
	// A requester's cancel has no body; an admin's carries the reason.
	if _, err := c.Cancel(t.Context(), "req_1", ""); err != nil {
		t.Fatal(err)
	}
	if got := <-calls; got.Method != http.MethodPost || got.URL.Path != "/v1/requests/req_1/cancel" || got.ContentLength > 0 {
		t.Errorf("requester's cancel: %s %s (%d bytes)", got.Method, got.URL, got.ContentLength)
	}
	if _, err := c.Cancel(t.Context(), "req_1", "wrong change"); err != nil {
		t.Fatal(err)
	}
	var body api.ReasonBody
	if got := <-calls; json.NewDecoder(got.Body).Decode(&body) != nil || body.Reason != "wrong change" {
		t.Errorf("admin's cancel sent %+v", body)
	}
}

func TestAdminCalls(t *testing.T) {
	srv, calls := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/links":
			writeJSON(w, http.StatusOK, api.LinkedAccounts{Links: []api.LinkedAccount{{Platform: "slack", User: "U1", Groups: []string{}}}})
		case r.Method == http.MethodDelete:
			writeJSON(w, http.StatusOK, api.Revoked{Revoked: api.LinkedAccount{Platform: "slack", User: "U1"}})
		case r.URL.Path == "/v1/requests":
			writeJSON(w, http.StatusOK, api.RequestList{Requests: []api.Request{{ID: "req_1"}}, Truncated: true})
		case r.URL.Path == "/v1/audit":
			w.Header().Set("Content-Type", "application/x-ndjson")
			_, _ = io.WriteString(w, "{\"seq\":1}\n{\"seq\":2}\n")
		case r.URL.Path == "/v1/backup":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", "4")
			_, _ = io.WriteString(w, "bolt")
		}
	})
	c := newClient(t, srv.URL, api.StaticToken("admin"))

	links, err := c.Links(t.Context(), api.LinkQuery{Platform: "slack", Email: "a@example.com"})
	if err != nil || len(links) != 1 || links[0].User != "U1" {
		t.Fatalf("links: %+v %v", links, err)
	}
	if got := <-calls; got.URL.Query().Encode() != "email=a%40example.com&platform=slack" {
		t.Errorf("links query %q", got.URL.RawQuery)
	}
	revoked, err := c.RevokeLink(t.Context(), "slack", "T/1", "U1", "left the team")
	if err != nil || revoked.User != "U1" {
		t.Fatalf("revoke: %+v %v", revoked, err)
	}
	if got := <-calls; got.URL.EscapedPath() != "/v1/links/slack/T%2F1/U1" {
		t.Errorf("revoke path %q", got.URL.EscapedPath())
	}
	list, err := c.Requests(t.Context(), api.RequestQuery{States: []api.State{api.StatePending, api.StateApproved}, Action: "deploy", Limit: 5})
	if err != nil || len(list.Requests) != 1 || !list.Truncated {
		t.Fatalf("requests: %+v %v", list, err)
	}
	if got := <-calls; got.URL.Query().Get("state") != "pending,approved" || got.URL.Query().Get("limit") != "5" || got.URL.Query().Get("action") != "deploy" {
		t.Errorf("requests query %q", got.URL.RawQuery)
	}
	since := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	stream, err := c.Audit(t.Context(), api.AuditQuery{Since: since, Request: "req_1"})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(stream)
	stream.Close()
	if strings.Count(string(data), "\n") != 2 {
		t.Errorf("audit stream %q", data)
	}
	if got := <-calls; got.URL.Query().Get("since") != "2026-01-31T00:00:00Z" || got.URL.Query().Get("request") != "req_1" || got.URL.Query().Has("until") {
		t.Errorf("audit query %q", got.URL.RawQuery)
	}
	dl, err := c.Backup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	copied, _ := io.ReadAll(dl.Body)
	dl.Body.Close()
	if string(copied) != "bolt" || dl.Size != 4 {
		t.Errorf("backup %q, size %d", copied, dl.Size)
	}
}

// TestLoginConfigIsPublic: without a token source no Authorization header
// is sent.
func TestLoginConfigIsPublic(t *testing.T) {
	srv, calls := fakeServer(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, api.LoginConfig{Issuer: "https://idp.example", ClientID: "cli", Scopes: []string{"openid"}})
	})
	lc, err := newClient(t, srv.URL, nil).LoginConfig(t.Context())
	if err != nil || lc.ClientID != "cli" {
		t.Fatalf("%+v %v", lc, err)
	}
	if got := <-calls; got.Header.Get("Authorization") != "" || got.URL.Path != api.LoginConfigPath {
		t.Errorf("sent %s with Authorization %q", got.URL, got.Header.Get("Authorization"))
	}
}

// TestTransportErrorsAsTheyAre: an unreachable server is net/http's error,
// not an *api.Error; a token source's error ends the call before it is made.
func TestTransportErrorsAsTheyAre(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c := newClient(t, base, api.StaticToken("t"))
	_, err := c.Get(t.Context(), "req_1", 0)
	var ue *url.Error
	var e *api.Error
	if !errors.As(err, &ue) || errors.As(err, &e) {
		t.Errorf("unreachable: %T %v", err, err)
	}
	refused := errors.New("no token today")
	c = newClient(t, base, func(context.Context) (string, error) { return "", refused })
	if _, err := c.Get(t.Context(), "req_1", 0); !errors.Is(err, refused) {
		t.Errorf("token source failure: %v", err)
	}
	if _, err := api.NewClient("http://bad host:x", nil, api.ClientOptions{}); err == nil {
		t.Error("a base URL that does not parse was accepted")
	}
}

// A request view whose id (from Create), action, state or review id (from
// Create, Get or Cancel) is not a plain name is refused as an answer that is not a request: those names reach CI logs
// verbatim, where a line break from a hostile server could start a line
// the runner reads as a workflow command.
func TestClientRefusesNamesThatAreNotPlain(t *testing.T) {
	good := api.Request{ID: "req_06h5145hd9gs6qunh9htdqguss", Action: "deploy-prod", State: api.StateApproved}
	hostile := map[string]func(*api.Request){
		"id with a line break":     func(r *api.Request) { r.ID = "req_1\n::add-mask::x" },
		"action with a line break": func(r *api.Request) { r.Action = "deploy\n::error::owned" },
		"state with a line break":  func(r *api.Request) { r.State = "approved\r\n::set-output name=x::y" },
		"action with a space":      func(r *api.Request) { r.Action = "deploy prod" },
		"review id with a line break": func(r *api.Request) {
			r.BreakGlass = &api.BreakGlass{Review: "req_2\n::stop-commands::t"}
		},
		"id too long":      func(r *api.Request) { r.ID = "req_" + strings.Repeat("a", 200) },
		"non-ASCII action": func(r *api.Request) { r.Action = "dеploy" }, // Cyrillic e
	}
	for name, spoil := range hostile {
		t.Run(name, func(t *testing.T) {
			bad := good
			spoil(&bad)
			srv, _ := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && r.URL.Path == "/v1/requests" {
					writeJSON(w, http.StatusCreated, bad)
					return
				}
				writeJSON(w, http.StatusOK, bad)
			})
			c := newClient(t, srv.URL, nil)
			var answerErr *api.AnswerError
			if _, _, err := c.Create(t.Context(), api.CreateRequest{Action: "deploy-prod"}, ""); !errors.As(err, &answerErr) {
				t.Errorf("Create took it: %v", err)
			}
			// Get answers the id it was asked for (the caller's own), so
			// only the names the server chose are its to refuse.
			if bad.ID == good.ID {
				if _, err := c.Get(t.Context(), bad.ID, 0); !errors.As(err, &answerErr) {
					t.Errorf("Get took it: %v", err)
				}
				if _, err := c.Cancel(t.Context(), bad.ID, ""); !errors.As(err, &answerErr) {
					t.Errorf("Cancel took it: %v", err)
				}
			}
		})
	}
	// The names signoff makes pass.
	srv, _ := fakeServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusCreated, good) })
	if _, _, err := newClient(t, srv.URL, nil).Create(t.Context(), api.CreateRequest{Action: "deploy-prod"}, ""); err != nil {
		t.Fatalf("a plain answer was refused: %v", err)
	}
}
