package teamsbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/bot/teamsbot/teamstest"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/storage"
)

// opsThread is the conversation id of a click on a card in the ops
// channel: the channel and the card's thread.
const opsThread = chanOps + ";messageid=1772366400001"

// account is u's Teams account as a click in conversation names it.
func (e *env) account(u teamstest.User, conversation string) linkflow.PlatformUser {
	return linkflow.PlatformUser{Platform: Platform, Workspace: e.bf.TenantID(), UserID: u.AADObjectID, Conversation: conversation}
}

func (e *env) lookup(p linkflow.PlatformUser) (linkflow.ChatAccount, error) {
	return e.bot.LookupAccount(context.Background(), p)
}

func TestLookupAccountMapsMember(t *testing.T) {
	e := newEnv(t)
	alice := teamstest.NewUser("alice")
	e.bf.AddMember(chanOps, teamstest.Member{
		ID: alice.ID, Name: "Alice Smith", GivenName: "Alice", Surname: "Smith",
		Email: "Alice.Smith@example.com", UserPrincipalName: "asmith@example.com", AADObjectID: alice.AADObjectID,
	})
	acct, err := e.lookup(e.account(alice, opsThread))
	if err != nil {
		t.Fatal(err)
	}
	want := linkflow.ChatAccount{DisplayName: "Alice Smith", Email: "Alice.Smith@example.com", UPN: "asmith@example.com", ObjectID: alice.AADObjectID}
	if acct != want {
		t.Errorf("account %+v, want %+v", acct, want)
	}
	// One lookup: in the channel (not its thread), by the Entra object
	// id, with the bot's token, at the service URL learned for the
	// channel.
	l := e.bf.Lookups()
	if len(l) != 1 || l[0].Conversation != chanOps || l[0].MemberID != alice.AADObjectID || l[0].Status != http.StatusOK ||
		!strings.HasPrefix(l[0].Authorization, "Bearer bot-access-token-") {
		t.Fatalf("lookups: %+v", l)
	}
}

func TestLookupAccountAnswers(t *testing.T) {
	e := newEnv(t)
	tenant := e.bf.TenantID()
	for _, tc := range []struct {
		name string
		// email is the answer's email and UPN (teamstest.User.Member);
		// edit changes the rest of the answer.
		email string
		edit  func(u teamstest.User, m *teamstest.Member)
		// want is the account made of the answer; nil: u's name and
		// object id with email as email and UPN.
		want func(u teamstest.User) linkflow.ChatAccount
		// refused: the answer must not be used (ErrAccountNotFound).
		refused string
	}{{
		name:  "given name and surname without a display name",
		email: "bob@example.com",
		edit: func(_ teamstest.User, m *teamstest.Member) {
			m.Name, m.UserPrincipalName, m.GivenName, m.Surname = "", "", "Bob", "Jones"
		},
		want: func(u teamstest.User) linkflow.ChatAccount {
			return linkflow.ChatAccount{DisplayName: "Bob Jones", Email: "bob@example.com", ObjectID: u.AADObjectID}
		},
	}, {
		name:  "object id served as aadObjectId",
		email: "carol@example.com",
		edit:  func(_ teamstest.User, m *teamstest.Member) { m.ObjectIDKey = "aadObjectId" },
	}, {
		name:  "objectId and aadObjectId agree",
		email: "dave@example.com",
		edit:  func(u teamstest.User, m *teamstest.Member) { m.Extra = map[string]any{"aadObjectId": u.AADObjectID} },
	}, {
		name:  "no tenant in the answer",
		email: "erin@example.com",
		edit:  func(_ teamstest.User, m *teamstest.Member) { m.OmitTenant = true },
	}, {
		name:  "ids in another case",
		email: "frank@example.com",
		edit: func(u teamstest.User, m *teamstest.Member) {
			m.TenantID = strings.ToUpper(tenant)
			m.Extra = map[string]any{"objectId": strings.ToUpper(u.AADObjectID)}
		},
		want: func(u teamstest.User) linkflow.ChatAccount {
			return linkflow.ChatAccount{DisplayName: u.Name, Email: "frank@example.com", UPN: "frank@example.com", ObjectID: strings.ToUpper(u.AADObjectID)}
		},
	}, {
		name:    "the answer is about another account",
		email:   "victim@example.com",
		edit:    func(_ teamstest.User, m *teamstest.Member) { m.Extra = map[string]any{"objectId": "aad-victim"} },
		refused: "another account",
	}, {
		name:    "the answer has no object id",
		email:   "victim@example.com",
		edit:    func(_ teamstest.User, m *teamstest.Member) { m.Extra = map[string]any{"objectId": nil} },
		refused: "another account",
	}, {
		name:    "the answer has two object ids",
		email:   "victim@example.com",
		edit:    func(_ teamstest.User, m *teamstest.Member) { m.Extra = map[string]any{"aadObjectId": "aad-victim"} },
		refused: "two object ids",
	}, {
		name:    "the member belongs to another tenant",
		email:   "victim@example.com",
		edit:    func(_ teamstest.User, m *teamstest.Member) { m.TenantID = "0b0b0b0b-0000-4000-8000-000000000bad" },
		refused: `belongs to tenant "0b0b0b0b-0000-4000-8000-000000000bad"`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			u := teamstest.NewUser(strings.ReplaceAll(tc.name, " ", "-"))
			m := u.Member(tc.email)
			tc.edit(u, &m)
			e.bf.AddMember(chanOps, m)
			acct, err := e.lookup(e.account(u, opsThread))
			if tc.refused != "" {
				if !errors.Is(err, linkflow.ErrAccountNotFound) || errors.Is(err, linkflow.ErrDirectoryUnavailable) || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("err = %v, want a refusal (ErrAccountNotFound) saying %q", err, tc.refused)
				}
				if acct != (linkflow.ChatAccount{}) {
					t.Errorf("a refused answer was returned: %+v", acct)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := linkflow.ChatAccount{DisplayName: u.Name, Email: tc.email, UPN: tc.email, ObjectID: u.AADObjectID}
			if tc.want != nil {
				want = tc.want(u)
			}
			if acct != want {
				t.Errorf("account %+v, want %+v", acct, want)
			}
		})
	}
}

func TestLookupAccountAsksTheTeamWhenTheChannelDoesNotKnow(t *testing.T) {
	e := newEnv(t)
	// newEnv's installation said chanOps belongs to teamOps. The
	// channel's roster does not list bob; the team's does.
	bob := teamstest.NewUser("bob")
	e.bf.AddMember(chanOps, teamstest.NewUser("alice").Member("alice@example.com"))
	e.bf.AddMember(teamOps, bob.Member("bob@example.com"))
	acct, err := e.lookup(e.account(bob, opsThread))
	if err != nil || acct.Email != "bob@example.com" || acct.ObjectID != bob.AADObjectID {
		t.Fatalf("lookup: %+v %v", acct, err)
	}
	l := e.bf.Lookups()
	if len(l) != 2 || l[0].Conversation != chanOps || l[0].Status != http.StatusNotFound || l[1].Conversation != teamOps || l[1].Status != http.StatusOK {
		t.Errorf("lookups: %+v", l)
	}
	// The team's answer is checked like the channel's.
	mallory := teamstest.NewUser("mallory")
	m := mallory.Member("mallory@example.com")
	m.Extra = map[string]any{"objectId": bob.AADObjectID}
	e.bf.AddMember(teamOps, m)
	if _, err := e.lookup(e.account(mallory, opsThread)); !errors.Is(err, linkflow.ErrAccountNotFound) {
		t.Errorf("the team's answer about another account was used: %v", err)
	}
}

func TestLookupAccountUnknownMember(t *testing.T) {
	e := newEnv(t)
	alice, mallory := teamstest.NewUser("alice"), teamstest.NewUser("mallory")
	e.bf.AddMember(chanOps, alice.Member("alice@example.com"))
	e.bf.AddMember(teamOps, alice.Member("alice@example.com"))
	// Neither the channel nor its team lists mallory.
	_, err := e.lookup(e.account(mallory, opsThread))
	if !errors.Is(err, linkflow.ErrAccountNotFound) || errors.Is(err, linkflow.ErrDirectoryUnavailable) || !strings.Contains(err.Error(), "MemberNotFoundInConversation") {
		t.Errorf("unknown member: %v", err)
	}
	// A conversation the connector has no roster for.
	chat := teamstest.Place{Conversation: "19:quiet@thread.v2", Type: "groupChat"}
	if rec := e.send(e.bf.Installed(chat, teamstest.NewUser("admin"))); rec.Code != http.StatusOK {
		t.Fatalf("install: %d", rec.Code)
	}
	_, err = e.lookup(e.account(alice, chat.Conversation))
	if !errors.Is(err, linkflow.ErrAccountNotFound) || !strings.Contains(err.Error(), "ConversationNotFound") {
		t.Errorf("unknown conversation: %v", err)
	}
	// Teams refusing for another reason (the app was removed from the
	// conversation): neither unknown nor unavailable, and a hint; the
	// team is not asked instead.
	before := len(e.bf.Lookups())
	e.bf.Fail(http.MethodGet, teamstest.Answer{Status: http.StatusForbidden, Code: "BotNotInConversationRoster"})
	_, err = e.lookup(e.account(alice, opsThread))
	if err == nil || errors.Is(err, linkflow.ErrAccountNotFound) || errors.Is(err, linkflow.ErrDirectoryUnavailable) || !strings.Contains(err.Error(), "installed") {
		t.Errorf("403: %v", err)
	}
	if n := len(e.bf.Lookups()) - before; n != 1 {
		t.Errorf("%d lookups after a 403", n)
	}
}

func TestLookupAccountUnavailable(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/teams/"
	closed.Close()
	for _, tc := range []struct {
		name string
		// fail is the call that fails with answer (http.MethodGet: the
		// lookup; "TOKEN": the bot's token); "" looks up in a chat whose
		// service URL answers nothing.
		fail   string
		answer teamstest.Answer
		says   string
	}{
		{"429", http.MethodGet, teamstest.Answer{Status: http.StatusTooManyRequests, RetryAfter: "7"}, "Teams asked to wait 7s"},
		{"500", http.MethodGet, teamstest.Answer{Status: http.StatusInternalServerError}, "HTTP 500"},
		{"the bot's token cannot be had", "TOKEN", teamstest.Answer{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable"}, "temporarily_unavailable"},
		{"network", "", teamstest.Answer{}, "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			alice := teamstest.NewUser("alice")
			e.bf.AddMember(chanOps, alice.Member("alice@example.com"))
			p := e.account(alice, opsThread)
			if tc.fail != "" {
				e.bf.Fail(tc.fail, tc.answer)
			} else {
				chat := teamstest.Place{Conversation: "19:gone@thread.v2", Type: "groupChat", ServiceURL: closedURL}
				if rec := e.send(e.bf.Installed(chat, teamstest.NewUser("admin"))); rec.Code != http.StatusOK {
					t.Fatalf("install: %d", rec.Code)
				}
				p = e.account(alice, chat.Conversation)
			}
			_, err := e.lookup(p)
			if !errors.Is(err, linkflow.ErrDirectoryUnavailable) || errors.Is(err, linkflow.ErrAccountNotFound) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want ErrDirectoryUnavailable saying %q", err, tc.says)
			}
			if p.Conversation != opsThread {
				return
			}
			// Later, the lookup works.
			if acct, err := e.lookup(p); err != nil || acct.Email != "alice@example.com" {
				t.Errorf("retry: %+v %v", acct, err)
			}
		})
	}
}

func TestLookupAccountNeedsAConversationItCanReach(t *testing.T) {
	e := newEnv(t)
	alice := teamstest.NewUser("alice")
	e.bf.AddMember(chanOps, alice.Member("alice@example.com"))

	// No conversation: the person is told to click again.
	_, err := e.lookup(e.account(alice, ""))
	if err == nil || errors.Is(err, linkflow.ErrDirectoryUnavailable) || errors.Is(err, linkflow.ErrAccountNotFound) || !strings.Contains(err.Error(), "click Approve or Deny") {
		t.Errorf("no conversation: %v", err)
	}
	// A conversation whose service URL nobody told signoff: no call, and
	// the bot's token goes nowhere.
	_, err = e.lookup(e.account(alice, chanNowhere))
	if !errors.Is(err, errNoServiceURL) || errors.Is(err, linkflow.ErrDirectoryUnavailable) {
		t.Errorf("unknown service URL: %v", err)
	}
	// Not a Teams account, or a tenant signoff does not serve.
	p := e.account(alice, opsThread)
	p.Platform = "slack"
	if _, err := e.lookup(p); err == nil || !strings.Contains(err.Error(), "not a Microsoft Teams account") {
		t.Errorf("slack account: %v", err)
	}
	p = e.account(alice, opsThread)
	p.Workspace = "0b0b0b0b-0000-4000-8000-000000000bad"
	if _, err := e.lookup(p); !errors.Is(err, errTenantNotServed) {
		t.Errorf("foreign tenant: %v", err)
	}
	if n := len(e.bf.Calls()); n != 0 {
		t.Errorf("%d connector calls: %+v", n, e.bf.Calls())
	}
	if n := e.bf.TokenRequests(); n != 0 {
		t.Errorf("%d token requests", n)
	}
}

func TestLookupAccountAsksTheConversationsServiceURL(t *testing.T) {
	// The chat below was learned at another region's service URL; the
	// configured teams.service_url (the stand-in) is only a fallback.
	e := newEnv(t, func(o *Options) {
		o.ServiceURL = strings.TrimSuffix(o.TokenURL, "/botframework.com/oauth2/v2.0/token") + "/teams/"
	})
	region := teamstest.NewServer(teamstest.Options{Now: e.clock.Now})
	t.Cleanup(region.Close)
	chat := teamstest.Place{Conversation: "19:emea-chat@thread.v2", Type: "groupChat", ServiceURL: region.ServiceURL()}
	if rec := e.send(e.bf.Installed(chat, teamstest.NewUser("admin"))); rec.Code != http.StatusOK {
		t.Fatalf("install: %d", rec.Code)
	}
	alice := teamstest.NewUser("alice")
	e.bf.AddMember(chat.Conversation, alice.Member("alice@example.com"))
	// The region stand-in does not know the bot's token: 401.
	if _, err := e.lookup(e.account(alice, chat.Conversation)); !errors.Is(err, linkflow.ErrDirectoryUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if l := region.Lookups(); len(l) != 1 || l[0].Conversation != chat.Conversation || !strings.HasPrefix(l[0].Authorization, "Bearer ") {
		t.Errorf("the conversation's service URL was not asked: %+v", l)
	}
	if l := e.bf.Lookups(); len(l) != 0 {
		t.Errorf("the fallback service URL was asked instead: %+v", l)
	}
}

// noticeEntries returns the "notice.teams" outbox entries, due or not.
func (e *env) noticeEntries() []storage.OutboxEntry {
	e.t.Helper()
	return testenv.DueOutbox(e.t, e.store, NoticeKind)
}

// queueNotice queues n as approvals does.
func (e *env) queueNotice(n approvals.AccountNotice) {
	e.t.Helper()
	payload, err := json.Marshal(n)
	if err != nil {
		e.t.Fatal(err)
	}
	err = e.store.Update(context.Background(), func(tx storage.Tx) error {
		_, err := tx.Enqueue(storage.OutboxEntry{Kind: NoticeKind, Payload: payload, NextAttempt: e.clock.Now(), CreatedAt: e.clock.Now()})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func TestNotifyPostsTheTextIntoTheConversation(t *testing.T) {
	e := newEnv(t)
	text := "Your Microsoft Teams account now votes as alice@example.com (https://idp.example). <at>everyone</at> *not bold*"
	e.queueNotice(approvals.AccountNotice{Workspace: e.bf.TenantID(), User: "aad-alice", Conversation: opsThread, Text: text})
	e.Deliver()
	var posts []teamstest.Call
	for _, c := range e.bf.Calls() {
		if c.Method == http.MethodPost {
			posts = append(posts, c)
		}
	}
	if len(posts) != 1 {
		t.Fatalf("posts: %+v", posts)
	}
	c := posts[0]
	if !c.OK() || c.Conversation != opsThread || c.Body["type"] != "message" || c.Body["text"] != text ||
		c.Body["textFormat"] != "plain" || c.Card() != nil || !strings.HasPrefix(c.Authorization, "Bearer bot-access-token-") {
		t.Errorf("notice post: %+v", c)
	}
	if left := e.noticeEntries(); len(left) != 0 {
		t.Errorf("the notice is still queued: %+v", left)
	}
}

func TestNotifyFailures(t *testing.T) {
	t.Run("no conversation: dropped", func(t *testing.T) {
		e := newEnv(t)
		e.queueNotice(approvals.AccountNotice{Workspace: e.bf.TenantID(), User: "aad-alice", Text: "linked"})
		e.Deliver()
		if len(e.noticeEntries()) != 0 || len(e.bf.Calls()) != 0 {
			t.Fatalf("entries %+v calls %+v", e.noticeEntries(), e.bf.Calls())
		}
		if !strings.Contains(e.logs.String(), "dropping it") {
			t.Errorf("not logged:\n%s", e.logs)
		}
	})
	t.Run("tenant not served: dropped", func(t *testing.T) {
		e := newEnv(t)
		e.queueNotice(approvals.AccountNotice{Workspace: "0b0b0b0b-0000-4000-8000-000000000bad", User: "aad-alice", Conversation: opsThread, Text: "linked"})
		e.Deliver()
		if len(e.noticeEntries()) != 0 || len(e.bf.Calls()) != 0 {
			t.Fatalf("entries %+v calls %+v", e.noticeEntries(), e.bf.Calls())
		}
	})
	t.Run("404: dropped", func(t *testing.T) {
		e := newEnv(t)
		e.bf.Fail(http.MethodPost, teamstest.Answer{Status: http.StatusNotFound, Code: "ConversationNotFound"})
		e.queueNotice(approvals.AccountNotice{Workspace: e.bf.TenantID(), User: "aad-alice", Conversation: opsThread, Text: "linked"})
		e.Deliver()
		if len(e.noticeEntries()) != 0 {
			t.Fatalf("still queued: %+v", e.noticeEntries())
		}
	})
	t.Run("429: retried after its Retry-After", func(t *testing.T) {
		e := newEnv(t)
		e.bf.Fail(http.MethodPost, teamstest.Answer{Status: http.StatusTooManyRequests, RetryAfter: "7"})
		e.queueNotice(approvals.AccountNotice{Workspace: e.bf.TenantID(), User: "aad-alice", Conversation: opsThread, Text: "linked"})
		e.Deliver()
		left := e.noticeEntries()
		if len(left) != 1 || !left[0].NextAttempt.Equal(t0.Add(7*time.Second)) || !strings.Contains(left[0].LastError, "429") {
			t.Fatalf("after the 429: %+v", left)
		}
		e.clock.Advance(7 * time.Second)
		e.Deliver()
		if r := e.bf.Replies(); len(r) != 1 || r[0] != "linked" {
			t.Errorf("replies %q", r)
		}
	})
}

func TestClassifyNotices(t *testing.T) {
	c := teamsChat{}
	for _, tc := range []struct {
		name string
		err  error
		want cards.FailureKind
	}{
		{"no conversation", errNoConversation, cards.Gone},
		{"tenant not served", errTenantNotServed, cards.Gone},
		{"notice 404", &apiError{Op: opNotice, Status: http.StatusNotFound}, cards.Gone},
		{"notice 403", &apiError{Op: opNotice, Status: http.StatusForbidden}, cards.Gone},
		{"notice 429", &apiError{Op: opNotice, Status: http.StatusTooManyRequests}, cards.RateLimited},
		{"notice 500", &apiError{Op: opNotice, Status: http.StatusInternalServerError}, cards.Retry},
		// Cards are unchanged: a post that is refused is retried.
		{"card post 404", &apiError{Op: "post activity", Status: http.StatusNotFound}, cards.Retry},
		{"no service URL", errNoServiceURL, cards.Unreachable},
	} {
		if got := c.Classify(tc.err, opsThread).Kind; got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestClickNamesItsConversation(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	e.Deliver()
	cardID := e.Get(r.ID).Cards[0].MessageID
	carol := teamstest.NewUser("carol")
	if d := e.vote(carol, r.ID, VerbApprove); !strings.Contains(d.message(), "link-"+carol.AADObjectID) {
		t.Fatalf("answer: %s", d.message())
	}
	asked := e.links.Asked()
	thread := chanOps + ";messageid=" + cardID
	if len(asked) != 1 || asked[0] != e.account(carol, thread) {
		t.Fatalf("asked about %+v, want %+v", asked, e.account(carol, thread))
	}
	// The account a click names can be looked up where it clicked.
	e.bf.AddMember(chanOps, carol.Member("carol@example.com"))
	if acct, err := e.lookup(asked[0]); err != nil || acct.ObjectID != carol.AADObjectID || acct.Email != "carol@example.com" {
		t.Errorf("lookup: %+v %v", acct, err)
	}

	// A step-up and an older client's Action.Submit name it too.
	alice := e.linked("alice", "sre")
	bg := e.Create("break-glass", nil, "")
	e.Deliver()
	e.vote(alice, bg.ID, VerbApprove)
	if asked := e.links.Asked(); len(asked) != 2 || asked[1].Conversation == "" || !strings.HasPrefix(asked[1].Conversation, chanOps+";messageid=") {
		t.Errorf("step-up asked about %+v", asked)
	}
	data := map[string]any{"signoff": "signoff.vote", "requestId": r.ID, "decision": VerbApprove}
	e.send(e.bf.SubmitMessage(teamstest.Click{Place: opsPlace, User: carol, ReplyToID: cardID, Data: data}))
	if asked := e.links.Asked(); len(asked) != 3 || asked[2] != e.account(carol, chanOps) {
		t.Errorf("submit asked about %+v", asked)
	}
}

func TestClickWithOversizedConversationIDNamesNone(t *testing.T) {
	e := newEnv(t)
	r := e.Create("deploy-prod", deployParams(), "")
	chat := teamstest.Place{Conversation: "19:" + strings.Repeat("a", maxConversationIDLen) + "@thread.v2", Type: "groupChat"}
	carol := teamstest.NewUser("carol")
	data := map[string]any{"signoff": "signoff.vote", "requestId": r.ID, "decision": VerbApprove}
	d := e.invokeActivity(e.bf.Invoke(teamstest.Click{Place: chat, User: carol, Verb: VerbApprove, Data: data}))
	if !strings.Contains(d.message(), "link-"+carol.AADObjectID) {
		t.Fatalf("answer: %s", d.message())
	}
	if asked := e.links.Asked(); len(asked) != 1 || asked[0] != e.account(carol, "") {
		t.Errorf("asked about %+v", asked)
	}
}

// TestNotifyKeepsNamesOutOfSharedConversations: in a channel or group
// chat everybody reads the notice, so the version without names or emails
// is posted; in a personal chat the full one.
func TestNotifyKeepsNamesOutOfSharedConversations(t *testing.T) {
	full := "signoff: a sign-in as alice@example.com tried to link this chat account and was refused"
	public := "signoff: a sign-in link meant for a chat account here was completed by someone else and refused"
	for _, tc := range []struct {
		conversation, want string
	}{
		{opsThread, public},
		{"a:1personal-chat-id", full},
	} {
		e := newEnv(t, func(o *Options) {
			o.ServiceURL = strings.TrimSuffix(o.TokenURL, "/botframework.com/oauth2/v2.0/token") + "/teams/"
		})
		e.queueNotice(approvals.AccountNotice{Workspace: e.bf.TenantID(), User: "aad-alice", Conversation: tc.conversation, Text: full, Public: public})
		e.Deliver()
		var texts []string
		for _, c := range e.bf.Calls() {
			if c.Method == http.MethodPost && c.Conversation == tc.conversation {
				texts = append(texts, fmt.Sprint(c.Body["text"]))
			}
		}
		if len(texts) != 1 || texts[0] != tc.want {
			t.Errorf("%s: notices posted %q, want %q", tc.conversation, texts, tc.want)
		}
	}
}
