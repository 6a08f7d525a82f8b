package teamstest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
)

// TestDiscardBodies: with DiscardBodies the connector still checks the
// bot's token and records each call, but keeps no activity body; without
// it the body is kept, decoded.
func TestDiscardBodies(t *testing.T) {
	for _, discard := range []bool{false, true} {
		s := teamstest.NewServer(teamstest.Options{DiscardBodies: discard})
		defer s.Close()
		tok := botToken(t, s)
		for _, auth := range []string{"Bearer " + tok, "Bearer not-a-token"} {
			body := `{"type":"message","text":"hello"}`
			req, err := http.NewRequest(http.MethodPut, s.ServiceURL()+"v3/conversations/"+url.PathEscape("19:c@thread.tacv2")+"/activities/1", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", auth)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		calls := s.Calls()
		if len(calls) != 2 || calls[0].Status != http.StatusOK || calls[1].Status != http.StatusUnauthorized {
			t.Fatalf("discard=%v: calls %+v, want an accepted PUT and a refused one", discard, calls)
		}
		for _, c := range calls {
			if c.Method != http.MethodPut || c.ActivityID != "1" || c.Conversation != "19:c@thread.tacv2" {
				t.Errorf("discard=%v: call %+v, want PUT of activity 1 in 19:c@thread.tacv2", discard, c)
			}
			switch {
			case discard && c.Body != nil:
				t.Errorf("discard=%v: body kept: %v", discard, c.Body)
			case !discard && c.Body["text"] != "hello":
				t.Errorf("discard=%v: body %v, want the activity sent", discard, c.Body)
			}
		}
	}
}

// botToken gets an access token from s's token endpoint, as the bot does.
func botToken(t *testing.T, s *teamstest.Server) string {
	t.Helper()
	resp, err := http.PostForm(s.TokenURL(), url.Values{
		"grant_type": {"client_credentials"}, "client_id": {s.AppID()}, "client_secret": {s.AppPassword()}, "scope": {teamstest.Scope},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("token endpoint answered %d, %v", resp.StatusCode, err)
	}
	return out.AccessToken
}
