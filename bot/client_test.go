package bot_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/storage"
)

// TestAPIClientAgainstServer drives the front door with package api's
// Client, as the command line does: the answers decode into the wire
// types, and each refusal is an *api.Error with the code the server sent.
func TestAPIClientAgainstServer(t *testing.T) {
	f := newAPIFixture(t)
	client := func(token string) *api.Client {
		c, err := api.NewClient(f.api.URL, api.StaticToken(token), api.ClientOptions{HTTPClient: f.api.Client()})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	requester := client(f.token("dev-user", nil))
	body := api.CreateRequest{Action: "deploy", Params: map[string]string{"service": "api", "version": "1.4.2"}, Reason: "release",
		Links: []api.Link{{Title: "CI run", URL: "https://ci.example/run/1"}}}

	r, created, err := requester.Create(t.Context(), body, "run-1")
	if err != nil || !created || r.State != api.StatePending || r.Remaining != 1 || len(r.Links) != 1 || r.Links[0].URL != "https://ci.example/run/1" {
		t.Fatalf("create: %+v %v %v", r, created, err)
	}
	if again, created, err := requester.Create(t.Context(), body, "run-1"); err != nil || created || again.ID != r.ID {
		t.Fatalf("idempotent retry: %s %v %v", again.ID, created, err)
	}
	f.vote(r.ID, "alice", storage.DecisionApprove)
	got, err := requester.Get(t.Context(), r.ID, time.Second)
	if err != nil || got.State != api.StateApproved || got.DecidedBy != api.DecidedByQuorum || len(got.Votes) != 1 || got.Votes[0].Decision != api.DecisionApprove {
		t.Fatalf("get: %+v %v", got, err)
	}

	refusals := []struct {
		name   string
		call   func() error
		status int
		code   api.Code
	}{
		{"unknown action", func() error {
			_, _, err := requester.Create(t.Context(), api.CreateRequest{Action: "drop-db"}, "")
			return err
		}, http.StatusBadRequest, api.CodeUnknownAction},
		{"idempotency conflict", func() error {
			_, _, err := requester.Create(t.Context(), api.CreateRequest{Action: "deploy", Params: body.Params, Reason: "other"}, "run-1")
			return err
		}, http.StatusConflict, api.CodeConflict},
		{"not pending", func() error {
			_, err := requester.Cancel(t.Context(), r.ID, "")
			return err
		}, http.StatusConflict, api.CodeNotPending},
		{"someone else's request", func() error {
			_, err := client(f.token("mallory", nil)).Get(t.Context(), r.ID, 0)
			return err
		}, http.StatusNotFound, api.CodeNotFound},
		{"no admin", func() error {
			_, err := requester.Links(t.Context(), api.LinkQuery{})
			return err
		}, http.StatusForbidden, api.CodeForbidden},
		{"bad token", func() error {
			_, err := client("not-a-token").Get(t.Context(), r.ID, 0)
			return err
		}, http.StatusUnauthorized, api.CodeUnauthenticated},
	}
	for _, tc := range refusals {
		var e *api.Error
		if err := tc.call(); !errors.As(err, &e) || e.Status != tc.status || e.Code != tc.code || e.Message == "" {
			t.Errorf("%s: %v, want %d %s", tc.name, err, tc.status, tc.code)
		}
	}

	// The admin and auditor endpoints.
	admin := client(f.adminToken())
	list, err := admin.Requests(t.Context(), api.RequestQuery{States: []api.State{api.StateApproved}, Limit: 10})
	if err != nil || len(list.Requests) != 1 || list.Requests[0].ID != r.ID {
		t.Fatalf("requests: %+v %v", list, err)
	}
	if links, err := admin.Links(t.Context(), api.LinkQuery{Platform: "slack"}); err != nil || links == nil || len(links) != 0 {
		t.Errorf("links: %+v %v", links, err)
	}
	stream, err := client(f.auditorToken()).Audit(t.Context(), api.AuditQuery{Request: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	lines, err := io.ReadAll(stream)
	stream.Close()
	if err != nil || !strings.Contains(string(lines), "request.approved") {
		t.Errorf("audit: %v %s", err, lines)
	}
	dl, err := admin.Backup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, dl.Body)
	dl.Body.Close()
	if err != nil || dl.Size <= 0 || n != dl.Size {
		t.Errorf("backup: %d of %d bytes, %v", n, dl.Size, err)
	}
}

// TestAPIValuesMatchStorage: the wire states, decisions and execution
// states are the stored ones, which APIRequest converts by value.
func TestAPIValuesMatchStorage(t *testing.T) {
	pairs := [][2]string{
		{string(api.StatePending), string(storage.StatePending)},
		{string(api.StateApproved), string(storage.StateApproved)},
		{string(api.StateDenied), string(storage.StateDenied)},
		{string(api.StateExpired), string(storage.StateExpired)},
		{string(api.StateCancelled), string(storage.StateCancelled)},
		{string(api.DecisionApprove), string(storage.DecisionApprove)},
		{string(api.DecisionDeny), string(storage.DecisionDeny)},
		{string(api.ExecutionPending), string(storage.ExecutionPending)},
		{string(api.ExecutionSucceeded), string(storage.ExecutionSucceeded)},
		{string(api.ExecutionFailed), string(storage.ExecutionFailed)},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("api %q, storage %q", p[0], p[1])
		}
	}
	r := bot.APIRequest(storage.Request{ID: "req_1", State: storage.StateCancelled, DecidedBy: "admin", Links: []storage.Link{{Title: "t", URL: "https://x"}}}, "")
	if r.State != api.StateCancelled || r.DecidedBy != api.DecidedByAdmin || r.Links[0] != (api.Link{Title: "t", URL: "https://x"}) {
		t.Errorf("%+v", r)
	}
}
