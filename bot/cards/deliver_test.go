package cards

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// call is one Chat call the fake answered.
type call struct {
	op, request, conversation string
	ok                        bool
}

// fakeChat is a Chat whose answers a test scripts per operation.
type fakeChat struct {
	mu    sync.Mutex
	calls []call
	fails map[string][]error // op → errors to answer, in order
	seq   int
	// published are the checkpoints Publish took, in order.
	published []published
	// replies are the texts Reply took, in order.
	replies []string
}

type published struct {
	target string
	seq    uint64
	record string
}

func (f *fakeChat) answer(op, request, conversation string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if q := f.fails[op]; len(q) > 0 {
		err, f.fails[op] = q[0], q[1:]
	}
	f.calls = append(f.calls, call{op: op, request: request, conversation: conversation, ok: err == nil})
	return err
}

func (f *fakeChat) fail(op string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails[op] = append(f.fails[op], errs...)
}

// ops lists the calls as "op request" ("post r1", "update r2(failed)").
func (f *fakeChat) ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		s := c.op + " " + c.request
		if !c.ok {
			s += "(failed)"
		}
		out = append(out, s)
	}
	return out
}

func (f *fakeChat) Post(_ context.Context, r storage.Request, target string) (storage.Card, error) {
	if err := f.answer("post", r.ID, target); err != nil {
		return storage.Card{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return storage.Card{Conversation: target, MessageID: fmt.Sprintf("m%d", f.seq)}, nil // no Platform: the Deliverer sets it
}

func (f *fakeChat) Update(_ context.Context, r storage.Request, c storage.Card) error {
	return f.answer("update", r.ID, c.Conversation)
}

func (f *fakeChat) Delete(_ context.Context, c storage.Card) error {
	return f.answer("delete", "", c.Conversation)
}

func (f *fakeChat) Reply(_ context.Context, c storage.Card, text string) error {
	err := f.answer("reply", c.MessageID, c.Conversation)
	if err == nil {
		f.mu.Lock()
		f.replies = append(f.replies, text)
		f.mu.Unlock()
	}
	return err
}

func (f *fakeChat) Notify(_ context.Context, n approvals.AccountNotice) error {
	return f.answer("notice", n.User, n.Conversation)
}

func (f *fakeChat) Publish(_ context.Context, target string, seq uint64, record string) error {
	err := f.answer("publish", fmt.Sprint(seq), target)
	if err == nil {
		f.mu.Lock()
		f.published = append(f.published, published{target: target, seq: seq, record: record})
		f.mu.Unlock()
	}
	return err
}

// verdict is an error that carries the Failure the fake classifies it as.
type verdict struct{ f Failure }

func (v verdict) Error() string { return fmt.Sprintf("scripted failure %d", v.f.Kind) }

func (f *fakeChat) Classify(err error, _ string) Failure {
	var v verdict
	if errors.As(err, &v) {
		return v.f
	}
	return Failure{}
}

type env struct {
	t     *testing.T
	clock *clock.Fake
	svc   *approvals.Service
	chat  *fakeChat
	logs  *bytes.Buffer
	d     *Deliverer
	store storage.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newDeployEnv(t, func(*policy.Action) {})
}

// newDeployEnv is newEnvWith over a fresh store and a policy of one
// action, "deploy": requested by github, 3 approvals from sre, an hour to
// live, announced in C1, and then changed by edit.
func newDeployEnv(t *testing.T, edit func(*policy.Action)) *env {
	t.Helper()
	deploy := &policy.Action{
		Name: "deploy", Requesters: []policy.RequesterRule{{Issuer: "github"}},
		Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 3},
		TTL:       time.Hour,
		Notify:    policy.Notify{Slack: []string{"C1"}},
	}
	edit(deploy)
	pol := &policy.Policy{Actions: map[string]*policy.Action{"deploy": deploy}}
	return newEnvWith(t, testenv.OpenStore(t), pol, approvals.Options{})
}

// newEnvWith is a Slack Deliverer over st and a service with policy pol
// and opts, to which it adds the fake clock, a logger that drops
// everything and the platform slack. The Deliverer logs to e.logs.
func newEnvWith(t *testing.T, st storage.Store, pol *policy.Policy, opts approvals.Options) *env {
	t.Helper()
	e := &env{t: t, clock: clock.NewFake(t0), chat: &fakeChat{fails: map[string][]error{}}, logs: &bytes.Buffer{}, store: st}
	opts.Clock, opts.Logger, opts.Platforms = e.clock, slog.New(slog.DiscardHandler), []string{"slack"}
	e.svc = approvals.New(st, pol, opts)
	e.d = NewDeliverer(e.chat, Config{
		Service: e.svc, Platform: "slack", CallTimeout: time.Second, Clock: e.clock,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	})
	return e
}

func (e *env) create() storage.Request {
	e.t.Helper()
	r, _, err := e.svc.Create(context.Background(), approvals.CreateInput{
		Requester: storage.Requester{Issuer: "github", Subject: "repo:acme/api", Person: "octocat"},
		Action:    "deploy",
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) vote(r storage.Request, name string) {
	e.t.Helper()
	if _, err := e.svc.Vote(context.Background(), approvals.VoteInput{
		RequestID: r.ID, Decision: storage.DecisionApprove,
		Approver: oidc.Identity{Issuer: "https://idp.example", Subject: "sub-" + name, Email: name + "@example.com", Groups: []string{"sre"}, VerifiedAt: t0},
		Source:   approvals.Source{Platform: "slack", Workspace: "T1", PlatformUser: "U" + name},
	}); err != nil {
		e.t.Fatal(err)
	}
}

// deliver runs one pass and returns how many entries it claimed.
func (e *env) deliver() int {
	e.t.Helper()
	n, err := e.d.DeliverOnce(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) cards(id string) []storage.Card {
	e.t.Helper()
	r, err := e.svc.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.Cards
}

func TestPostStoresCardThenUpdates(t *testing.T) {
	e := newEnv(t)
	r := e.create()
	e.deliver()
	if got := e.cards(r.ID); len(got) != 1 || got[0] != (storage.Card{Platform: "slack", Conversation: "C1", MessageID: "m1"}) {
		t.Fatalf("cards: %+v", got)
	}
	e.vote(r, "alice")
	e.deliver()
	if got := strings.Join(e.chat.ops(), ", "); got != "post "+r.ID+", update "+r.ID {
		t.Errorf("calls: %s", got)
	}
	if e.deliver() != 0 {
		t.Error("entries left")
	}
}

// A rate limit makes the rest of the batch wait it out, and an entry
// rescheduled by it still blocks the younger entries of its card.
func TestRateLimitPausesBatchAndKeepsOrder(t *testing.T) {
	e := newEnv(t)
	other := e.create()
	e.deliver() // other's card is posted
	r := e.create()
	e.vote(other, "alice") // U1, younger than r's post
	e.chat.fail("post", verdict{Failure{Kind: RateLimited, Wait: 3 * time.Second}})
	if n := e.deliver(); n != 2 {
		t.Fatalf("claimed %d, want r's post and U1", n)
	}
	e.vote(other, "bob") // U2, due now, while U1 waits out the rate limit
	e.deliver()
	if got := strings.Join(e.chat.ops(), ", "); got != "post "+other.ID+", post "+r.ID+"(failed)" {
		t.Fatalf("calls during the rate limit: %s", got)
	}
	e.clock.Advance(3 * time.Second)
	for e.deliver() > 0 {
	}
	want := "post " + other.ID + ", post " + r.ID + "(failed), post " + r.ID + ", update " + other.ID + ", update " + other.ID
	if got := strings.Join(e.chat.ops(), ", "); got != want {
		t.Errorf("calls:\n got %s\nwant %s", got, want)
	}
}

// Gone gives up an update, but never a post.
func TestGoneGivesUpUpdatesOnly(t *testing.T) {
	e := newEnv(t)
	r := e.create()
	gone := verdict{Failure{Kind: Gone}}
	e.chat.fail("post", gone)
	e.deliver()
	if len(e.cards(r.ID)) != 0 {
		t.Fatal("posted despite the failure")
	}
	e.clock.Advance(Backoff(1))
	e.deliver()
	if len(e.cards(r.ID)) != 1 {
		t.Fatal("a post classified Gone was not retried")
	}
	e.chat.fail("update", gone)
	e.vote(r, "alice")
	e.deliver()
	e.clock.Advance(time.Hour)
	if e.deliver() != 0 {
		t.Error("the update of a gone card is still queued")
	}
	if !strings.Contains(e.logs.String(), "cannot be updated any more") {
		t.Errorf("not logged:\n%s", e.logs)
	}
}

func TestUnreachableIsLoggedAsError(t *testing.T) {
	e := newEnv(t)
	r := e.create()
	e.chat.fail("post", verdict{Failure{Kind: Unreachable, Err: errors.New("no route to C1")}})
	e.deliver()
	if !strings.Contains(e.logs.String(), "level=ERROR") || !strings.Contains(e.logs.String(), "slack card cannot be delivered yet") {
		t.Errorf("not logged as an error:\n%s", e.logs)
	}
	e.clock.Advance(Backoff(1))
	e.deliver()
	if len(e.cards(r.ID)) != 1 {
		t.Error("not retried")
	}
}

func TestBackoff(t *testing.T) {
	for attempts, want := range map[int]time.Duration{0: BackoffBase, 1: BackoffBase, 2: 2 * BackoffBase, 3: 4 * BackoffBase, 20: BackoffMax, 1000: BackoffMax} {
		if got := Backoff(attempts); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", attempts, got, want)
		}
	}
}

func TestNewDelivererRefusesALongCallTimeout(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	NewDeliverer(&fakeChat{}, Config{Service: &approvals.Service{}, Platform: "slack", CallTimeout: time.Hour})
}
