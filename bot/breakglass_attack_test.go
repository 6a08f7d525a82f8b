package bot_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/policy"
)

// The person reviewed may not end or lift their own review with a signoff
// login token either: the IdP names them by idp.person_claims (here a
// custom github_login attribute holding their CI login), as the
// no-self-approval rule reads those claims from the same IdP's sign-ins.
func TestBreakGlassReviewedAdminLoginTokenIsMatchedByIdPPersonClaims(t *testing.T) {
	f, idp := newLoginFixtureWith(t, func(base *apiFixture) {
		base.svc.Policy().Actions["deploy"].BreakGlass = &policy.BreakGlass{
			Groups: []string{"oncall"},
			Review: policy.Approvers{Groups: []string{"sre-leads"}, MinApprovals: 1},
			Within: 24 * time.Hour,
		}
	}, []string{"github_login"})

	// alice breaks glass from CI (her GitHub login is the person).
	created := f.do("POST", "/v1/requests", f.token("alice", map[string]any{"groups": []any{"oncall"}}), breakGlassBody)
	if created.status != http.StatusCreated {
		t.Fatalf("break-glass: %d %s", created.status, created.body)
	}
	reviewID := created.view(t).BreakGlass.Review

	// The same alice, signed in at the IdP as an admin: her subject, email
	// and preferred_username are not her GitHub login; github_login is.
	aliceAdmin := mint(t, idp, "00u-alice", loginClientID, map[string]any{
		"groups": []string{"signoff-admins"}, "email": "alice.smith@corp.example",
		"preferred_username": "asmith", "github_login": "Alice",
	})
	reason := `{"reason":"I say it was justified"}`
	if x := f.do("POST", "/v1/requests/"+reviewID+"/cancel", aliceAdmin, reason); x.status != http.StatusForbidden || !strings.Contains(x.errorMessage(), "your own break-glass") {
		t.Fatalf("the person reviewed cancelled their own pending review with a login token: %d %s", x.status, x.body)
	}
	// The claim as a list (an IdP keeping several logins) names her too.
	aliceListed := mint(t, idp, "00u-alice", loginClientID, map[string]any{
		"groups": []string{"signoff-admins"}, "github_login": []any{"alice-old", " alice "},
	})
	if x := f.do("POST", "/v1/requests/"+reviewID+"/cancel", aliceListed, reason); x.status != http.StatusForbidden || !strings.Contains(x.errorMessage(), "your own break-glass") {
		t.Fatalf("the person reviewed, named in a list claim, cancelled their own pending review: %d %s", x.status, x.body)
	}

	f.denyReview(reviewID, "no incident")
	if x := f.do("POST", "/v1/requests/"+reviewID+"/lift-block", aliceAdmin, reason); x.status != http.StatusForbidden || !strings.Contains(x.errorMessage(), "your own break-glass") {
		t.Fatalf("the person reviewed lifted their own block with a login token: %d %s", x.status, x.body)
	}

	// Another admin's login token still may.
	bobAdmin := mint(t, idp, "00u-bob", loginClientID, map[string]any{
		"groups": []string{"signoff-admins"}, "email": "bob@corp.example", "github_login": "bob",
	})
	if x := f.do("POST", "/v1/requests/"+reviewID+"/lift-block", bobAdmin, `{"reason":"postmortem: justified"}`); x.status != http.StatusOK {
		t.Fatalf("another admin's lift: %d %s", x.status, x.body)
	}
}
