package linkflow_test

import (
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/internal/testop"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// The promise these tests attack: only an email the IdP vouches for
// (email_verified: true, or Entra ID's xms_edov: true when email_verified
// is absent) ties a chat account to an identity, and only such an email
// names the person a vote counts as. An approver named by email in
// approvers.users must not be impersonated by someone who sets their own
// email at the IdP.

// withClaim is u with the extra claim name: v, in the ID token and
// userinfo alike.
func withClaim(u testop.User, name string, v any) testop.User {
	u.Extra = maps.Clone(u.Extra)
	if u.Extra == nil {
		u.Extra = map[string]any{}
	}
	u.Extra[name] = v
	return u
}

// TestAttackOddEmailVerifiedShapes: an email_verified claim that is there
// but says neither true nor false (a number, an array, an object, a word)
// is no vouching, and it is not absent either: Entra ID's xms_edov does
// not stand in for it, and idp.email_verified: assumed does not take it.
func TestAttackOddEmailVerifiedShapes(t *testing.T) {
	cases := []struct {
		name   string
		ev     any  // the email_verified claim
		edov   any  // xms_edov, nil for none
		assume bool // idp.email_verified: assumed
		linked bool
	}{
		// The strings providers send for booleans.
		{"string TRUE", "TRUE", nil, false, true},
		{"string 1", "1", nil, false, true},
		{"string false", "false", nil, true, false},
		{"string false, xms_edov true", "false", true, false, false},
		// Present but unreadable: not vouched for, whatever else is sent.
		{"number 1", 1, nil, false, false},
		{"array [true]", []any{true}, nil, false, false},
		{"object", map[string]any{"v": true}, nil, false, false},
		{"number 0, xms_edov true", 0, true, false, false},
		{"word no, xms_edov true", "no", true, false, false},
		{"array [true], xms_edov true", []any{true}, true, false, false},
		{"number 0, assumed", 0, nil, true, false},
		{"word no, assumed", "no", nil, true, false},
		{"object, assumed", map[string]any{"v": false}, nil, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []envOption
			if tc.assume {
				opts = append(opts, func(o *linkflow.LinkerOptions) { o.AssumeEmailVerified = true })
			}
			e := newEnv(t, opts...)
			u := withClaim(withoutVerified(erin, tc.edov), "email_verified", tc.ev)
			e.op.AddUser(u)
			e.own(slackU2, erin)
			status, body := e.completeAs(e.begin(slackU2), u)
			if tc.linked {
				wantStatus(t, "link", status, http.StatusOK, body)
				e.mustLink(slackU2)
				return
			}
			wantStatus(t, "link", status, http.StatusForbidden, body)
			e.noLink(slackU2)
			if rs := e.refusals(); len(rs) != 1 || rs[0].Data["reason"] != string(linkflow.RefusalEmailUnverif) {
				t.Fatalf("refusal records %+v, want reason %s", rs, linkflow.RefusalEmailUnverif)
			}
		})
	}
}

// TestAttackUserinfoDoesNotVouchForTheIDTokensEmail: when the ID token
// carries an email without saying it is verified, and lacks the groups (so
// userinfo is asked), userinfo's email_verified or xms_edov does not vouch
// for the ID token's email.
func TestAttackUserinfoDoesNotVouchForTheIDTokensEmail(t *testing.T) {
	for _, claim := range []string{"email_verified", "xms_edov"} {
		t.Run(claim, func(t *testing.T) {
			e := newEnv(t)
			u := withClaim(withoutVerified(erin, nil), claim, true)
			e.op.AddUser(u)
			e.own(slackU2, erin)
			e.op.RewriteIDToken(func(c map[string]any) {
				delete(c, "groups")
				delete(c, "email_verified")
				delete(c, "xms_edov")
			})
			status, body := e.completeAs(e.begin(slackU2), u)
			wantStatus(t, "link", status, http.StatusForbidden, body)
			e.noLink(slackU2)
		})
	}
}

// linkMal links slackU2 to mal, an IdP user of group sre whose verified
// email is mallory@example.com, then has mal set her own email at the IdP
// to alice's, which the IdP marks unverified as changed (per how:
// "false" or "absent").
func linkMal(t *testing.T, e *env, how string) testop.User {
	t.Helper()
	mal := testop.User{Username: "mal", Password: "mal-pw", Email: "mallory@example.com", Name: "Mal", Groups: []string{"sre"}, OTP: "777777"}
	e.op.AddUser(mal)
	e.linkAs(slackU2, mal)
	changed := mal
	changed.Email = alice.Email
	switch how {
	case "false":
		no := false
		changed.EmailVerified = &no
	case "absent":
		changed.NoEmailVerified = true
	default:
		t.Fatalf("how = %q", how)
	}
	e.op.AddUser(changed)
	return changed
}

// eligibleAsAlice reports whether an action naming only alice by email in
// approvers.users takes email as one of its approvers.
func eligibleAsAlice(email string) bool {
	a := &policy.Action{Name: "x", Approvers: policy.Approvers{Users: []string{alice.Email}, MinApprovals: 1}}
	return a.ExplainApprover(policy.Person{Subject: "sub-mal", Email: email}).Eligible
}

// TestAttackRefreshDoesNotAdoptAnUnverifiedEmail: a linked person who
// sets their own IdP email to an approver's, unverified, does not vote as
// that approver once the link's groups are refreshed.
func TestAttackRefreshDoesNotAdoptAnUnverifiedEmail(t *testing.T) {
	for _, how := range []string{"false", "absent"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			linkMal(t, e, how)
			e.clk.Advance(25 * time.Hour)
			refreshes := e.op.Refreshes()
			id, err := e.resolve(slackU2)
			if err != nil {
				t.Fatalf("Resolve after the refresh: %v", err)
			}
			if e.op.Refreshes() != refreshes+1 {
				t.Fatal("the link was not refreshed")
			}
			if id.Email != "mallory@example.com" || eligibleAsAlice(id.Email) {
				t.Fatalf("identity after the refresh has email %q: an unverified email names the voter", id.Email)
			}
			if l := e.mustLink(slackU2); l.Email != "mallory@example.com" {
				t.Fatalf("stored link email = %q", l.Email)
			}
		})
	}
}

// TestAttackStepUpDoesNotAdoptAnUnverifiedEmail: neither does a step-up
// sign-in, whose vote is cast under the sign-in's identity.
func TestAttackStepUpDoesNotAdoptAnUnverifiedEmail(t *testing.T) {
	for _, how := range []string{"false", "absent"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			changed := linkMal(t, e, how)
			e.clk.Advance(11 * time.Minute)
			r := e.create("break-glass")
			b := newBrowser(t)
			b.open(e.beginStepUp(slackU2, r.ID, "approve"))
			status, body := b.login(changed.Username, changed.Password, changed.OTP)
			wantStatus(t, "step-up", status, http.StatusOK, body)
			got := e.request(r.ID)
			if len(got.Votes) != 1 {
				t.Fatalf("votes = %+v", got.Votes)
			}
			if v := got.Votes[0]; v.Approver.Email != "mallory@example.com" {
				t.Fatalf("the step-up vote counts as %q: an unverified email names the voter", v.Approver.Email)
			}
			if l := e.mustLink(slackU2); l.Email != "mallory@example.com" {
				t.Fatalf("stored link email = %q", l.Email)
			}
			if got.State != storage.StateApproved {
				t.Fatalf("state = %s", got.State)
			}
		})
	}
}

// TestAttackRefreshTakesAVerifiedNewEmail: a verified change of email is
// still taken at a refresh.
func TestAttackRefreshTakesAVerifiedNewEmail(t *testing.T) {
	e := newEnv(t)
	mal := testop.User{Username: "mal", Password: "mal-pw", Email: "mallory@example.com", Name: "Mal", Groups: []string{"sre"}}
	e.op.AddUser(mal)
	e.linkAs(slackU2, mal)
	mal.Email = "mal@example.com"
	e.op.AddUser(mal)
	e.clk.Advance(25 * time.Hour)
	id, err := e.resolve(slackU2)
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != "mal@example.com" {
		t.Fatalf("identity email = %q, want the verified new one", id.Email)
	}
}

// An email the IdP does not vouch for stays unvouched through every later
// read of the identity that does not vouch for it either: a refresh that
// sends no email, a step-up sign-in that sends the same email unvouched.
// Neither makes the person the approver an approvers.users email names;
// the step-up vote is refused as not eligible.
func TestAttackUnvouchedEmailSurvivesRefreshAndStepUp(t *testing.T) {
	teamsMallory := linkflow.PlatformUser{Platform: "teams", Workspace: "tenant-1", UserID: "obj-mallory", Conversation: "19:c@thread.tacv2"}
	mallory := testop.User{ID: "sub-entra-mallory", Username: "entra-mallory", Password: "pw", Name: "Mallory", OTP: "777777",
		Email: "alice@example.com", NoEmailVerified: true, Extra: map[string]any{"oid": "OBJ-MALLORY"}}

	e := newEnv(t)
	e.svc.Policy().Actions["named"] = &policy.Action{
		Name: "named", Requesters: []policy.RequesterRule{{Issuer: "github"}},
		Approvers: policy.Approvers{Users: []string{"alice@example.com"}, MinApprovals: 1}, TTL: time.Hour,
		StepUp: &policy.StepUp{MaxAge: 5 * time.Minute, RequireMFA: true},
	}
	e.linker.SetDirectory("teams", e.dir)
	e.op.AddUser(mallory)
	e.dir.set(teamsMallory, linkflow.ChatAccount{ObjectID: "obj-mallory", Email: "mallory@example.com"})
	status, body := e.completeAs(e.begin(teamsMallory), mallory)
	wantStatus(t, "link by oid", status, http.StatusOK, body)
	if l := e.mustLink(teamsMallory); !l.EmailUnverified {
		t.Fatalf("link = %+v, want its email unverified", l)
	}

	// A refresh whose answer carries no email keeps the mark.
	noEmail := mallory
	noEmail.Email = ""
	e.op.AddUser(noEmail)
	e.clk.Advance(25 * time.Hour)
	id, err := e.resolve(teamsMallory)
	if err != nil {
		t.Fatalf("Resolve after a refresh: %v", err)
	}
	if l := e.mustLink(teamsMallory); l.Email != "alice@example.com" || !l.EmailUnverified || !id.EmailUnverified {
		t.Fatalf("after a refresh without email: link %+v, identity %+v", l, id)
	}

	// A step-up sign-in that sends the email unvouched again: the vote it
	// casts is not eligible, and the link stays unvouched.
	e.op.AddUser(mallory)
	r := e.create("named")
	b := newBrowser(t)
	b.open(e.beginStepUp(teamsMallory, r.ID, "approve"))
	status, body = b.login(mallory.Username, mallory.Password, mallory.OTP)
	wantAnswer(t, "step-up", status, http.StatusForbidden, body, "may not approve")
	if got := e.request(r.ID); got.State != storage.StatePending || len(got.Votes) != 0 {
		t.Fatalf("the step-up vote of an unvouched email counted: %s %+v", got.State, got.Votes)
	}
	if l := e.mustLink(teamsMallory); !l.EmailUnverified {
		t.Fatalf("a step-up without email_verified marked the email vouched: %+v", l)
	}
}
