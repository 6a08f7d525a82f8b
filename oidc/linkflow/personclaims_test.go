package linkflow_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// logins returns n CI logins, the last of them "octocat" (the requester of
// the env's deploy requests).
func logins(n int) []any {
	out := make([]any, 0, n)
	for i := 1; i < n; i++ {
		out = append(out, fmt.Sprintf("alt-%d", i))
	}
	return append(out, "octocat")
}

// TestPersonClaimWithTooManyValuesIsRefused is the attack on "nobody
// approves their own request": a person who can edit a multi-valued
// attribute of their own (the person claim github_login) lists their CI
// login past the point signoff reads. Cutting the list short would leave
// the one name that matters out, so the sign-in, and a later refresh, are
// refused instead; at the limit every value still counts.
func TestPersonClaimWithTooManyValuesIsRefused(t *testing.T) {
	t.Run("at the limit", func(t *testing.T) {
		e, _, r, id := linkOcho(t, logins(32))
		if _, err := e.vote(slackU1, id, r.ID); !errors.Is(err, approvals.ErrSelfApproval) {
			t.Fatalf("vote by the requester named 32nd = %v, want ErrSelfApproval", err)
		}
	})
	t.Run("sign-in", func(t *testing.T) {
		e, octo, _, _ := linkOcho(t, "someone-else")
		octo.Extra = map[string]any{"github_login": logins(33)}
		e.op.AddUser(octo)
		e.own(slackU2, octo)
		status, body := e.completeAs(e.begin(slackU2), octo)
		wantAnswer(t, "sign-in", status, http.StatusForbidden, body, "github_login", "more than 32")
		e.noLink(slackU2)
	})
	t.Run("refresh", func(t *testing.T) {
		e, octo, _, _ := linkOcho(t, "someone-else")
		octo.Extra = map[string]any{"github_login": logins(33)}
		e.op.AddUser(octo)
		e.clk.Advance(25 * time.Hour)
		refreshes := e.op.Refreshes()
		_, err := e.resolve(slackU1)
		if e.op.Refreshes() != refreshes+1 {
			t.Fatal("the link was not refreshed")
		}
		asLinkRequired(t, err, linkflow.LinkReasonStale)
	})
}

// TestPersonClaimWithTooManyValuesInUserinfoIsRefused: the same limit
// where the person claim comes from userinfo (the ID token lacks the
// groups, so userinfo is asked): whatever the ID token says of the claim
// (nothing, a short list, an empty one, blanks, an object), a userinfo
// answer listing more than 32 names refuses the sign-in.
func TestPersonClaimWithTooManyValuesInUserinfoIsRefused(t *testing.T) {
	for name, idTokenLogins := range map[string]any{
		"only in userinfo":                    nil,
		"short in ID token, long in userinfo": []any{"alt-1"},
		"empty list in ID token":              []any{},
		"blank strings in ID token":           []any{" ", ""},
		"object in ID token":                  map[string]any{"a": "octocat"},
	} {
		t.Run(name, func(t *testing.T) {
			e, octo, _, _ := linkOcho(t, "someone-else")
			octo.Extra = map[string]any{"github_login": logins(33)}
			e.op.AddUser(octo)
			e.own(slackU2, octo)
			e.op.RewriteIDToken(func(c map[string]any) {
				delete(c, "groups")
				if idTokenLogins == nil {
					delete(c, "github_login")
				} else {
					c["github_login"] = idTokenLogins
				}
			})
			status, body := e.completeAs(e.begin(slackU2), octo)
			wantAnswer(t, "sign-in", status, http.StatusForbidden, body, "github_login", "more than 32")
			e.noLink(slackU2)
		})
	}
}
