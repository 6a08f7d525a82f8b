package linkflow_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/internal/testop"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// An email the IdP does not vouch for stays unvouched through every later
// read of the identity that does not vouch for it either: a refresh that
// sends no email, a step-up sign-in that sends the same email unvouched.
// Neither makes the person the approver an approvers.users email names;
// the step-up vote is refused as not eligible.
func TestAttack3UnvouchedEmailSurvivesRefreshAndStepUp(t *testing.T) {
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
