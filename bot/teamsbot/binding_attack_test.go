package teamsbot

// Attacks on the identity binding (docs/architecture.md, "Making a link")
// through the Teams adapter, with the real linkflow.Linker as the resolver and
// the Bot as its account directory, as serve wires them. Tests named
// TestAttack…Refused pass; the others demonstrate a hole and fail until it
// is fixed.

import (
	"context"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// lateResolver lets the Bot be built before the Linker that uses it as its
// directory.
type lateResolver struct{ l *linkflow.Linker }

func (r *lateResolver) Resolve(ctx context.Context, p linkflow.PlatformUser) (oidc.Identity, error) {
	return r.l.Resolve(ctx, p)
}

func (r *lateResolver) Begin(ctx context.Context, p linkflow.PlatformUser) (string, error) {
	return r.l.Begin(ctx, p)
}

func (r *lateResolver) BeginStepUp(ctx context.Context, p linkflow.PlatformUser, requestID, decision string) (string, error) {
	return r.l.BeginStepUp(ctx, p, requestID, decision)
}

// newLinkedEnv is newEnv with a real Linker (link_match: email) whose
// Teams directory is the Bot.
func newLinkedEnv(t *testing.T) (*env, *linkflow.Linker) {
	t.Helper()
	late := &lateResolver{}
	e := newEnv(t, func(o *Options) { o.Resolver = late })
	l, err := linkflow.NewLinker(linkflow.LinkerOptions{
		Issuer: idpIssuer, ClientID: "signoff", RedirectURL: "https://signoff.example.com" + linkflow.CallbackPath,
		Store: e.store, Links: e.svc, Clock: e.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	l.SetDirectory(Platform, e.bot)
	late.l = l
	return e, l
}

// TestAttackOlderLinkMismatchPostsEmailsInChannel (HOLE, fails today):
// when an older link (saved before bindings were proved) turns out not to
// match its Teams account, the LinkRequiredError's message carries the
// "why" with both email addresses ("the chat account's email (…) is not
// the email of the identity that signed in (…)"), and so does the stale
// reason stored on the link, repeated on every later click. A click from
// a Teams client without Universal Actions (the Action.Submit fallback)
// is answered with a reply in the conversation: in a channel every member
// reads both people's addresses. The notices were given a name-free
// Public text for exactly this reason; the click replies were not.
//
// Fix: keep addresses out of the user-facing text: in
// checkLegacyBinding build the LinkRequiredError message (and the stale
// reason) from a name-free sentence ("the chat platform's email for this
// account is not the email of the linked identity") and log/audit the
// detailed why only; or in teamsbot's replyText(private=false) replace
// the message of a LinkRequiredError with a generic "your account needs
// to be linked again; click in a personal chat with signoff".
func TestAttackOlderLinkMismatchPostsEmailsInChannel(t *testing.T) {
	e, _ := newLinkedEnv(t)
	mallory, acct := e.teamsUser("mallory")
	e.bf.AddMember(chanOps, mallory.Member("mallory@example.com"))
	// Linked before this change through a forwarded link: Mallory's Teams
	// account votes as Alice.
	e.SaveOlderLink(acct, "sub-alice", "alice.secret@example.com", "Alice")
	r := e.Create("deploy-prod", deployParams(), "ship it")
	e.Deliver()
	before := len(e.bf.Replies())

	// Mallory clicks Approve from an old client, in the ops channel.
	e.send(e.bf.SubmitMessage(teamstest.Click{Place: opsPlace, User: mallory,
		Data: map[string]any{"signoff": "signoff.vote", "requestId": r.ID, "decision": VerbApprove}}))

	l, err := e.svc.Link(context.Background(), acct.Platform, acct.Workspace, acct.UserID)
	if err != nil || !l.Stale {
		t.Fatalf("the mismatched older link was not made stale: %+v, %v", l, err)
	}
	if got := e.Get(r.ID); len(got.Votes) != 0 {
		t.Fatalf("votes: %+v", got.Votes)
	}
	replies := e.bf.Replies()[before:]
	if len(replies) == 0 {
		t.Fatal("no reply to the click")
	}
	for _, text := range replies {
		for _, addr := range []string{"alice.secret@example.com", "mallory@example.com"} {
			if strings.Contains(text, addr) {
				t.Errorf("a reply posted in channel %s (read by all its members) names %s: %q", chanOps, addr, text)
			}
		}
	}
}

// TestAttackMemberLookupForAnotherAccountRefused: a sign-in link's binding
// check through the Bot refuses an answer about another object id or
// another tenant, and a lookup in a tenant signoff does not serve never
// reaches the connector.
func TestAttackMemberLookupForAnotherAccountRefused(t *testing.T) {
	e, _ := newLinkedEnv(t)
	mallory, _ := e.teamsUser("mallory")
	alice, _ := e.teamsUser("alice")
	// The roster answers the lookup of Mallory with Alice's record.
	m := alice.Member("alice@example.com")
	m.ID = mallory.ID
	e.bf.AddMember(chanOps, m)
	if _, err := e.lookup(e.account(mallory, chanOps)); err == nil {
		t.Fatal("a member lookup answered with another account's object id was used")
	}
	// The right object id, another tenant.
	m2 := mallory.Member("mallory@example.com")
	m2.TenantID = "00000000-0000-0000-0000-0000000e7111"
	e.bf.AddMember(chanOps, m2)
	if _, err := e.lookup(e.account(mallory, chanOps)); err == nil {
		t.Fatal("a member lookup answered for another tenant was used")
	}
	n := len(e.bf.Lookups())
	foreign := linkflow.PlatformUser{Platform: Platform, Workspace: "00000000-0000-0000-0000-0000000e7111", UserID: mallory.AADObjectID, Conversation: chanOps}
	if _, err := e.lookup(foreign); err == nil {
		t.Fatal("a lookup for an account of a tenant signoff does not serve succeeded")
	}
	if len(e.bf.Lookups()) != n {
		t.Fatal("a lookup for a tenant signoff does not serve reached the connector (with the bot's token)")
	}
}
