package slackbot

// Attacks on the identity binding (docs/architecture.md, "Making a link")
// through the Slack adapter.
// Tests named TestAttack…Refused pass; the others demonstrate a hole and
// fail until it is fixed.

import (
	"context"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// useRealLinker makes a real linkflow.Linker (link_match: email) the bot's
// resolver, with the bot as its Slack directory, as serve wires them.
func (e *env) useRealLinker() *linkflow.Linker {
	e.t.Helper()
	l, err := linkflow.NewLinker(linkflow.LinkerOptions{
		Issuer: idpIssuer, ClientID: "signoff", RedirectURL: "https://signoff.example.com" + linkflow.CallbackPath,
		Store: e.store, Links: e.svc, Clock: e.clock, OnStepUp: e.svc.StepUpVote(), StepUpPolicy: e.svc.StepUpPolicy(),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	l.SetDirectory(Platform, e.bot)
	e.bot.res = l
	return l
}

// TestAttackOlderLinkStepUpClickGetsStepUpLink (HOLE, fails today): the
// Slack face of oidc's TestAttackLegacyLinkStepUpSkipsRecheck. Mallory's
// account was linked to Dana's identity before bindings were proved. On a
// plain action her click would make the link stale; on an action with
// step_up the bot calls BeginStepUp, which never re-checks an older link,
// so Mallory is handed a step-up sign-in link for a vote as Dana (which
// Dana, asked to "confirm", completes) and the link stays usable.
//
// Fix: Linker.BeginStepUp must run checkLegacyBinding like Resolve does
// (and completeStepUp must not accept a link with MatchedBy "").
func TestAttackOlderLinkStepUpClickGetsStepUpLink(t *testing.T) {
	e := newEnv(t)
	e.useRealLinker()
	// users.info says UMALLORY is umallory@example.com (the stand-in's
	// default for unlisted users).
	e.SaveOlderLink(teamAccount("UMALLORY"), "sub-dana", "dana@example.com", "Dana")
	r := e.Create("break-glass", nil, "")
	e.click("UMALLORY", r.ID, ActionApprove, "C3")
	text := e.slack.NextEphemeral(t).Form.Get("text")
	l, err := e.svc.Link(context.Background(), Platform, testTeam, "UMALLORY")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "fresh sign-in") || !l.Stale {
		t.Errorf("click by an account whose older link names someone else's identity on a step-up action: link stale=%v, reply %q", l.Stale, text)
	}
}

// TestAttackOlderLinkMismatchPlainClickRefused: on a plain action the same
// older link is re-checked with users.info and made stale; nothing counts.
func TestAttackOlderLinkMismatchPlainClickRefused(t *testing.T) {
	e := newEnv(t)
	e.useRealLinker()
	e.SaveOlderLink(teamAccount("UMALLORY"), "sub-alice", "alice@example.com", "Alice")
	r := e.Create("deploy-prod", deployParams(), "")
	e.click("UMALLORY", r.ID, ActionApprove, "C1")
	text := e.slack.NextEphemeral(t).Form.Get("text")
	if !strings.Contains(text, "could not be confirmed") {
		t.Errorf("reply %q", text)
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Fatalf("votes: %+v", got.Votes)
	}
	if l, _ := e.svc.Link(context.Background(), Platform, testTeam, "UMALLORY"); !l.Stale {
		t.Fatalf("link not stale: %+v", l)
	}
}

// TestAttackForeignClickFloodAuditIsSampledRefused: forty clicks by a
// Slack Connect account of another organisation write at most
// CallbackRejectedPerMinute callback.rejected records and never reach the
// resolver. (Each click is still answered with one chat.postEphemeral: the
// count is logged; see the review report.)
func TestAttackForeignClickFloodAuditIsSampledRefused(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	for range 40 {
		e.postSigned(InteractionsPath, withUserTeam(t, blockActions(testTeam, "UEXT", "C1", ActionApprove, r.ID), vendorTeam))
	}
	if n := len(e.RecordsOf(audit.TypeCallbackRejected)); n > approvals.CallbackRejectedPerMinute {
		t.Errorf("%d callback.rejected records for 40 foreign clicks", n)
	}
	if len(e.links.askedAbout()) != 0 {
		t.Error("the resolver was asked about another organisation's account")
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Fatalf("votes: %+v", got.Votes)
	}
	t.Logf("chat.postEphemeral calls for 40 foreign clicks: %d", len(e.slack.OK("chat.postEphemeral")))
}
