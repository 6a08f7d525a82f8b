package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/api"
)

func TestAttestation(t *testing.T) {
	answers := map[string]func(w http.ResponseWriter){
		"req_ok": func(w http.ResponseWriter) {
			writeJSON(w, http.StatusOK, api.Attestation{Attestation: "aGVhZA.Ym9keQ.c2ln"})
		},
		"req_pending": func(w http.ResponseWriter) {
			writeJSON(w, http.StatusConflict, errorBody(api.CodeNotApproved, "request req_pending is pending"))
		},
		"req_odd": func(w http.ResponseWriter) {
			writeJSON(w, http.StatusOK, map[string]string{"attestation": "not a jwt"})
		},
		// Three dots' worth of segments, but with a line that a CI runner
		// would read as a workflow command after the token.
		"req_forged": func(w http.ResponseWriter) {
			writeJSON(w, http.StatusOK, map[string]string{"attestation": "aGVhZA.Ym9keQ.c2ln\n::warning::forged"})
		},
		"req_spaced": func(w http.ResponseWriter) {
			writeJSON(w, http.StatusOK, map[string]string{"attestation": "aGVhZA.Ym9 keQ.c2ln"})
		},
		"req_empty_segment": func(w http.ResponseWriter) {
			writeJSON(w, http.StatusOK, map[string]string{"attestation": "aGVhZA..c2ln"})
		},
	}
	srv, calls := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		answers[strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/requests/"), "/attestation")](w)
	})
	c := newClient(t, srv.URL, api.StaticToken("tok"))

	tok, err := c.Attestation(t.Context(), "req_ok")
	if err != nil || tok != "aGVhZA.Ym9keQ.c2ln" {
		t.Fatalf("approved: %q %v", tok, err)
	}
	if got := <-calls; got.Method != http.MethodGet || got.URL.Path != "/v1/requests/req_ok/attestation" || got.Header.Get("Authorization") != "Bearer tok" {
		t.Errorf("call %s %s %q", got.Method, got.URL.Path, got.Header.Get("Authorization"))
	}
	var e *api.Error
	if _, err := c.Attestation(t.Context(), "req_pending"); !errors.As(err, &e) || e.Status != http.StatusConflict || e.Code != api.CodeNotApproved {
		t.Errorf("pending: %v, want 409 not_approved", err)
	}
	var bad *api.AnswerError
	for _, id := range []string{"req_odd", "req_forged", "req_spaced", "req_empty_segment"} {
		if tok, err := c.Attestation(t.Context(), id); !errors.As(err, &bad) {
			t.Errorf("%s, an answer without a compact JWT: %q, %v, want an *AnswerError", id, tok, err)
		}
	}
}

func errorBody(code api.Code, msg string) api.ErrorBody {
	return api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}}
}
