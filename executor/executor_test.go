package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/executor"
	"github.com/signoff-dev/signoff/internal/chattest"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const secret = "whsec-7f3a9c-do-not-leak-0123456789"

// reply is one scripted answer of the receiver.
type reply struct {
	status int
	header map[string]string
	body   string
	// hang: answer nothing until the client gives up.
	hang bool
}

// delivery is what the receiver saw of one call.
type delivery struct {
	header http.Header
	body   []byte
	// sigErr is Verify's verdict with the right secret, wrongErr with a
	// wrong one.
	sigErr, wrongErr error
	status           int
}

// receiver is a webhook endpoint on loopback that verifies every call with
// executor.Verify and answers from a script (the last reply repeats).
type receiver struct {
	t      *testing.T
	clock  *clock.Fake
	srv    *httptest.Server
	mu     sync.Mutex
	script []reply
	calls  []delivery
}

func newReceiver(t *testing.T, c *clock.Fake, script ...reply) *receiver {
	rc := &receiver{t: t, clock: c, script: script}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Errorf("receiver: read body: %v", err)
	}
	now := rc.clock.Now()
	d := delivery{
		header:   r.Header.Clone(),
		body:     body,
		sigErr:   executor.Verify(r.Header.Get(executor.HeaderSignature), []byte(secret), body, now, 0),
		wrongErr: executor.Verify(r.Header.Get(executor.HeaderSignature), []byte("not-the-secret"), body, now, 0),
	}
	rc.mu.Lock()
	rep := reply{status: http.StatusOK}
	if n := len(rc.calls); n < len(rc.script) {
		rep = rc.script[n]
	} else if len(rc.script) > 0 {
		rep = rc.script[len(rc.script)-1]
	}
	d.status = rep.status
	rc.calls = append(rc.calls, d)
	rc.mu.Unlock()
	if rep.hang {
		<-r.Context().Done()
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.calls)
}

// harness is a real approvals.Service over a real bbolt file, a fake clock
// and an executor.
type harness struct {
	t     *testing.T
	path  string
	clock *clock.Fake
	store *boltstore.Store
	svc   *approvals.Service
	exec  *executor.Executor
	// webhook is the "deploy" action's on_approve webhook.
	webhook policy.Webhook
	opts    executor.Options
	// undeclareDeploy drops the "deploy" action from the policy on the next
	// open, as an operator editing the config would.
	undeclareDeploy bool
	// attester, when set before an open, signs approvals' attestations.
	attester approvals.Attester
	// freezes, when set before an open, are the "deploy" action's.
	freezes []policy.Freeze
}

func newHarness(t *testing.T, c *clock.Fake, webhookURL string, opts executor.Options) *harness {
	t.Helper()
	h := &harness{
		t: t, path: testenv.DBPath(t), clock: c, opts: opts,
		webhook: policy.Webhook{URL: webhookURL, Secret: secret, Timeout: 5 * time.Second},
	}
	h.open()
	return h
}

func (h *harness) policy() *policy.Policy {
	wh := h.webhook
	pol := &policy.Policy{Actions: map[string]*policy.Action{
		"deploy": {
			Name:       "deploy",
			Requesters: []policy.RequesterRule{{Issuer: "github"}},
			Params:     map[string]policy.Param{"service": {Required: true}},
			Approvers:  policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
			TTL:        time.Hour,
			OnApprove:  &policy.OnApprove{Webhook: &wh},
			Freezes:    h.freezes,
		},
		"no-webhook": {
			Name:       "no-webhook",
			Requesters: []policy.RequesterRule{{Issuer: "github"}},
			Approvers:  policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
			TTL:        time.Hour,
			OnApprove:  &policy.OnApprove{},
		},
	}}
	if h.undeclareDeploy {
		delete(pol.Actions, "deploy")
	}
	return pol
}

func (h *harness) open() {
	h.t.Helper()
	st := testenv.OpenStoreAt(h.t, h.path)
	h.store = st
	discard := testenv.DiscardLogger()
	h.svc = approvals.New(st, h.policy(), approvals.Options{Clock: h.clock, Logger: discard, Attester: h.attester})
	opts := h.opts
	opts.Clock = h.clock
	if opts.Logger == nil {
		opts.Logger = discard
	}
	h.exec = executor.New(h.svc, opts)
}

// reopen simulates a restart: a new store handle, service and executor.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.store.Close(); err != nil {
		h.t.Fatalf("close store: %v", err)
	}
	h.open()
}

var requester = storage.Requester{
	Issuer: "github", Subject: "repo:acme/api:ref:refs/heads/main", Person: "octocat",
	Name: "Octo Cat", Email: "octocat@example.com",
}

// approve creates a request for action and approves it with a freshly
// verified identity, which queues its execution.
func (h *harness) approve(action string, params map[string]string) storage.Request {
	h.t.Helper()
	ctx := context.Background()
	r, _, err := h.svc.Create(ctx, approvals.CreateInput{
		Requester: requester, Action: action, Params: params, Reason: "ship it",
		Links: []storage.Link{{Title: "CI run", URL: "https://ci.example/run/42"}},
	})
	if err != nil {
		h.t.Fatalf("create %s: %v", action, err)
	}
	alice := oidc.Identity{
		Issuer: "https://idp.example", Subject: "sub-alice", Email: "alice@example.com", Name: "Alice",
		PreferredUsername: "alice", Groups: []string{"sre"}, VerifiedAt: h.clock.Now(),
	}
	res, err := h.svc.Vote(ctx, approvals.VoteInput{
		RequestID: r.ID, Approver: alice, Decision: storage.DecisionApprove,
		Source: approvals.Source{Platform: "slack", Workspace: "T1", PlatformUser: "U1", CallbackID: "cb-1"},
	})
	if err != nil || res.Request.State != storage.StateApproved {
		h.t.Fatalf("approve %s: state %s, err %v", r.ID, res.Request.State, err)
	}
	return res.Request
}

func (h *harness) runOnce(want int) {
	h.t.Helper()
	wantAttempts(h.t, h.exec.RunOnce, want)
}

// wantAttempts runs one pass of runOnce (an Executor's or a Publisher's
// RunOnce) and fails t unless it made want attempts.
func wantAttempts(t *testing.T, runOnce func(context.Context) (int, error), want int) {
	t.Helper()
	n, err := runOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	if n != want {
		t.Fatalf("RunOnce made %d attempts, want %d", n, want)
	}
}

func (h *harness) request(id string) storage.Request {
	h.t.Helper()
	return chattest.Get(h.t, h.svc, id)
}

// entry returns the request's execute outbox entry, if any.
func (h *harness) entry(id string) (storage.OutboxEntry, bool) {
	h.t.Helper()
	var (
		out   storage.OutboxEntry
		found bool
	)
	err := h.store.View(context.Background(), func(tx storage.ReadTx) error {
		all, err := tx.DueOutbox(time.Unix(1<<40, 0), "", 0)
		for _, e := range all {
			if e.RequestID == id && e.Kind == approvals.KindExecute {
				out, found = e, true
			}
		}
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out, found
}

// auditLines returns every audit record as stored, after checking the
// hash chain is intact.
func (h *harness) auditLines() []string {
	h.t.Helper()
	var out []string
	for _, line := range testenv.AuditLines(h.t, h.store) {
		out = append(out, string(line))
	}
	return out
}

// executionTypes returns the execution.* audit record types, in order.
func (h *harness) executionTypes() []string {
	h.t.Helper()
	var out []string
	for _, line := range h.auditLines() {
		var rec struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			h.t.Fatal(err)
		}
		if strings.HasPrefix(rec.Type, "execution.") {
			out = append(out, rec.Type)
		}
	}
	return out
}

func wantTypes(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("execution audit records %v, want %v", got, want)
	}
}

// retryDue moves the clock to the entry's next attempt, checking that
// nothing is delivered a nanosecond before it.
func (h *harness) retryDue(id string) time.Time {
	h.t.Helper()
	e, ok := h.entry(id)
	if !ok {
		h.t.Fatalf("no outbox entry left for %s", id)
	}
	if !e.LeaseUntil.IsZero() {
		h.t.Fatalf("entry still leased until %v after its attempt was recorded", e.LeaseUntil)
	}
	h.clock.Set(e.NextAttempt.Add(-time.Nanosecond))
	h.runOnce(0)
	h.clock.Set(e.NextAttempt)
	return e.NextAttempt
}

// TestExecutionWaitsOutAFreeze: an approval that lands before a freeze but
// whose execution comes due inside it is not delivered during the freeze,
// stays queued, and is delivered exactly once when the freeze ends — the
// executor itself holds it back, not only the service's deferral step.
func TestExecutionWaitsOutAFreeze(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c)
	h := &harness{
		t: t, path: testenv.DBPath(t), clock: c,
		webhook: policy.Webhook{URL: rc.srv.URL + "/hook", Secret: secret, Timeout: 5 * time.Second},
		freezes: []policy.Freeze{{From: t0.Add(time.Minute), To: t0.Add(2 * time.Hour), Reason: "release freeze"}},
	}
	h.open()
	r := h.approve("deploy", map[string]string{"service": "api"})

	c.Advance(30 * time.Minute) // inside the freeze
	if _, err := h.exec.RunOnce(context.Background()); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	if n := len(rc.deliveries()); n != 0 {
		t.Fatalf("the webhook was called %d times during the freeze, want 0", n)
	}
	if _, queued := h.entry(r.ID); !queued {
		t.Fatal("the execution was dropped during the freeze")
	}

	c.Advance(90 * time.Minute) // the freeze has ended
	if _, err := h.exec.RunOnce(context.Background()); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	if n := len(rc.deliveries()); n != 1 {
		t.Fatalf("the webhook was called %d times after the freeze, want 1", n)
	}
}

func TestDeliveryIsSignedAndCarriesThePayload(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c)
	h := newHarness(t, c, rc.srv.URL+"/hook", executor.Options{UserAgent: "signoff/1.2.3"})
	r := h.approve("deploy", map[string]string{"service": "api"})

	h.runOnce(1)
	calls := rc.deliveries()
	if len(calls) != 1 {
		t.Fatalf("receiver got %d calls, want 1", len(calls))
	}
	d := calls[0]
	if d.sigErr != nil {
		t.Fatalf("receiver could not verify the signature: %v", d.sigErr)
	}
	if !errors.Is(d.wrongErr, executor.ErrSignatureMismatch) {
		t.Fatalf("verify with a wrong secret: %v, want ErrSignatureMismatch", d.wrongErr)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/json", "User-Agent": "signoff/1.2.3", executor.HeaderIdempotencyKey: r.ID,
	} {
		if got := d.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(d.header.Get(executor.HeaderSignature), fmt.Sprintf("t=%d,v1=", t0.Unix())) {
		t.Errorf("signature header %q does not carry the clock's time", d.header.Get(executor.HeaderSignature))
	}

	// The wire names are the contract.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(d.body, &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wantKeys := []string{"action", "approvers", "decided_at", "decision", "id", "links", "min_approvals", "params", "reason", "requester"}
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("payload keys %v, want %v", keys, wantKeys)
	}
	var p executor.Payload
	if err := json.Unmarshal(d.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.ID != r.ID || p.Action != "deploy" || p.Params["service"] != "api" || p.Reason != "ship it" ||
		p.Decision != "approved" || !p.DecidedAt.Equal(t0) || p.MinApprovals != 1 ||
		len(p.Links) != 1 || p.Links[0].URL != "https://ci.example/run/42" ||
		p.Requester != (executor.Requester{Issuer: "github", Subject: requester.Subject, Person: "octocat", Name: "Octo Cat", Email: "octocat@example.com"}) {
		t.Fatalf("payload %+v", p)
	}
	if len(p.Approvers) != 1 || p.Approvers[0] != (executor.Approver{Subject: "sub-alice", Name: "Alice", Email: "alice@example.com", Platform: "slack", Time: t0}) {
		t.Fatalf("approvers %+v", p.Approvers)
	}

	got := h.request(r.ID)
	if got.Execution == nil || got.Execution.Status != storage.ExecutionSucceeded || got.Execution.Attempts != 1 {
		t.Fatalf("execution %+v", got.Execution)
	}
	wantTypes(t, h.executionTypes(), "execution.succeeded")
	if _, ok := h.entry(r.ID); ok {
		t.Fatal("outbox entry left after success")
	}
	h.clock.Advance(time.Hour)
	h.runOnce(0)
}

func TestServerErrorsAreRetriedWithBackoff(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c, reply{status: 500, body: "boom"}, reply{status: 502}, reply{status: 200})
	h := newHarness(t, c, rc.srv.URL, executor.Options{})
	r := h.approve("deploy", map[string]string{"service": "api"})

	h.runOnce(1)
	got := h.request(r.ID)
	if got.Execution.Status != storage.ExecutionPending || got.Execution.Attempts != 1 ||
		!strings.Contains(got.Execution.LastError, "answered 500 Internal Server Error: boom") {
		t.Fatalf("after the first 500: %+v", got.Execution)
	}
	// Default backoff: attempt 1 waits 1–2s, attempt 2 waits 2–4s.
	e, _ := h.entry(r.ID)
	if d := e.NextAttempt.Sub(c.Now()); d < time.Second || d > 2*time.Second {
		t.Fatalf("first retry in %v, want within [1s, 2s]", d)
	}
	h.runOnce(0) // not due yet
	before := h.retryDue(r.ID)
	h.runOnce(1)
	e, _ = h.entry(r.ID)
	if d := e.NextAttempt.Sub(before); d < 2*time.Second || d > 4*time.Second {
		t.Fatalf("second retry in %v, want within [2s, 4s]", d)
	}
	h.retryDue(r.ID)
	h.runOnce(1)

	wantTypes(t, h.executionTypes(), "execution.attempt", "execution.attempt", "execution.succeeded")
	got = h.request(r.ID)
	if got.Execution.Status != storage.ExecutionSucceeded || got.Execution.Attempts != 3 || got.Execution.LastError != "" {
		t.Fatalf("execution %+v", got.Execution)
	}
	calls := rc.deliveries()
	if len(calls) != 3 {
		t.Fatalf("receiver got %d calls, want 3", len(calls))
	}
	for i, d := range calls {
		if k := d.header.Get(executor.HeaderIdempotencyKey); k != r.ID {
			t.Errorf("call %d Idempotency-Key %q, want %q", i+1, k, r.ID)
		}
		if d.sigErr != nil {
			t.Errorf("call %d signature: %v", i+1, d.sigErr)
		}
		if string(d.body) != string(calls[0].body) {
			t.Errorf("call %d body differs from the first", i+1)
		}
	}
	if _, ok := h.entry(r.ID); ok {
		t.Fatal("outbox entry left after success")
	}
}

func TestClientErrorFailsWithoutRetry(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c, reply{status: 400, body: `{"error":"unknown service"}`})
	h := newHarness(t, c, rc.srv.URL, executor.Options{})
	r := h.approve("deploy", map[string]string{"service": "api"})

	h.runOnce(1)
	wantTypes(t, h.executionTypes(), "execution.failed")
	got := h.request(r.ID)
	if got.Execution.Status != storage.ExecutionFailed || got.Execution.Attempts != 1 ||
		!strings.Contains(got.Execution.LastError, "400 Bad Request") || !strings.Contains(got.Execution.LastError, "unknown service") {
		t.Fatalf("execution %+v", got.Execution)
	}
	if _, ok := h.entry(r.ID); ok {
		t.Fatal("outbox entry left after a final failure")
	}
	h.clock.Advance(24 * time.Hour)
	h.runOnce(0)
	if n := len(rc.deliveries()); n != 1 {
		t.Fatalf("receiver got %d calls, want 1", n)
	}
}

func TestRetryAfter(t *testing.T) {
	cases := []struct {
		name  string
		reply func(now time.Time) reply
		wait  time.Duration
	}{
		{"429 seconds", func(time.Time) reply {
			return reply{status: 429, header: map[string]string{"Retry-After": "120"}}
		}, 120 * time.Second},
		{"503 http date", func(now time.Time) reply {
			return reply{status: 503, header: map[string]string{"Retry-After": now.Add(90 * time.Second).UTC().Format(http.TimeFormat)}}
		}, 90 * time.Second},
		{"capped at MaxBackoff", func(time.Time) reply {
			return reply{status: 429, header: map[string]string{"Retry-After": "999999999999999999999"}}
		}, executor.DefaultMaxBackoff},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := clock.NewFake(t0)
			rc := newReceiver(t, c, tc.reply(t0), reply{status: 200})
			h := newHarness(t, c, rc.srv.URL, executor.Options{})
			r := h.approve("deploy", map[string]string{"service": "api"})

			h.runOnce(1)
			e, ok := h.entry(r.ID)
			if !ok || !e.NextAttempt.Equal(t0.Add(tc.wait)) {
				t.Fatalf("next attempt %v, want %v", e.NextAttempt, t0.Add(tc.wait))
			}
			c.Set(t0.Add(tc.wait - time.Second))
			h.runOnce(0)
			c.Set(t0.Add(tc.wait))
			h.runOnce(1)
			if got := h.request(r.ID); got.Execution.Status != storage.ExecutionSucceeded || got.Execution.Attempts != 2 {
				t.Fatalf("execution %+v", got.Execution)
			}
		})
	}
}

// TestRestartMidRetry runs the executor's loop, stops it and the store after
// a failed attempt, and starts both again: the retry happens at its
// scheduled time and the action is delivered once.
func TestRestartMidRetry(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c, reply{status: 500}, reply{status: 200})
	h := newHarness(t, c, rc.srv.URL, executor.Options{})
	r := h.approve("deploy", map[string]string{"service": "api"})

	stop := h.start()
	testenv.Eventually(t, "first attempt recorded and loop parked", func() bool {
		e, ok := h.entry(r.ID)
		return ok && e.Attempts == 1 && e.LeaseUntil.IsZero() && c.Waiters() > 0
	})
	if n := len(rc.deliveries()); n != 1 {
		t.Fatalf("loop made %d calls before the retry was due, want 1", n)
	}
	stop()
	h.reopen()

	e, _ := h.entry(r.ID)
	parked := c.Waiters() // the stopped loop's timer is still registered
	stop = h.start()
	defer stop()
	testenv.Eventually(t, "restarted loop parked", func() bool { return c.Waiters() > parked })
	if n := len(rc.deliveries()); n != 1 {
		t.Fatalf("restarted loop called the receiver before the retry was due")
	}
	c.Set(e.NextAttempt)
	testenv.Eventually(t, "execution succeeded after restart", func() bool {
		x := h.request(r.ID).Execution
		return x != nil && x.Status == storage.ExecutionSucceeded
	})
	got := h.request(r.ID)
	if got.Execution.Attempts != 2 {
		t.Fatalf("attempts %d, want 2", got.Execution.Attempts)
	}
	ok := 0
	for _, d := range rc.deliveries() {
		if d.status == 200 {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("delivered %d times, want once", ok)
	}
	wantTypes(t, h.executionTypes(), "execution.attempt", "execution.succeeded")
}

// start runs the executor's loop and returns a function that stops it and
// waits for it to return.
func (h *harness) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	exec := h.exec
	go func() { done <- exec.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				h.t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			h.t.Fatal("Run did not return after cancel")
		}
	}
}

// TestExpiredLeaseIsClaimedAgain: a worker claims the execution and dies
// before recording anything; once its lease runs out, another executor
// delivers it, and the dead worker's late result is refused.
func TestExpiredLeaseIsClaimedAgain(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c)
	h := newHarness(t, c, rc.srv.URL, executor.Options{Lease: time.Minute})
	r := h.approve("deploy", map[string]string{"service": "api"})

	crashed, err := h.svc.Claim(context.Background(), approvals.KindExecute, 10, time.Minute)
	if err != nil || len(crashed) != 1 {
		t.Fatalf("claim: %v %v", crashed, err)
	}
	h.runOnce(0)
	c.Advance(time.Minute - time.Second)
	h.runOnce(0)
	c.Advance(time.Second)
	h.runOnce(1)

	got := h.request(r.ID)
	if got.Execution.Status != storage.ExecutionSucceeded || got.Execution.Attempts != 2 {
		t.Fatalf("execution %+v", got.Execution)
	}
	if n := len(rc.deliveries()); n != 1 {
		t.Fatalf("receiver got %d calls, want 1", n)
	}
	if _, err := h.svc.RecordExecution(context.Background(), crashed[0], approvals.ExecutionResult{OK: true}); !errors.Is(err, approvals.ErrStaleClaim) {
		t.Fatalf("late record by the crashed worker: %v, want ErrStaleClaim", err)
	}
	wantTypes(t, h.executionTypes(), "execution.succeeded")
}

func TestTimeoutIsRetried(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c, reply{hang: true}, reply{status: 204})
	h := newHarness(t, c, rc.srv.URL, executor.Options{})
	h.webhook.Timeout = 100 * time.Millisecond
	h.reopen()
	r := h.approve("deploy", map[string]string{"service": "api"})

	h.runOnce(1)
	got := h.request(r.ID)
	if got.Execution.Status != storage.ExecutionPending || !strings.Contains(got.Execution.LastError, "did not answer within 100ms") {
		t.Fatalf("after timeout: %+v", got.Execution)
	}
	wantTypes(t, h.executionTypes(), "execution.attempt")
	h.retryDue(r.ID)
	h.runOnce(1)
	wantTypes(t, h.executionTypes(), "execution.attempt", "execution.succeeded")
}

func TestMaxAttempts(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c, reply{status: 503, body: "down for maintenance"})
	h := newHarness(t, c, rc.srv.URL, executor.Options{MaxAttempts: 3})
	r := h.approve("deploy", map[string]string{"service": "api"})

	h.runOnce(1)
	h.retryDue(r.ID)
	h.runOnce(1)
	h.retryDue(r.ID)
	h.runOnce(1)
	wantTypes(t, h.executionTypes(), "execution.attempt", "execution.attempt", "execution.failed")
	got := h.request(r.ID)
	if got.Execution.Status != storage.ExecutionFailed || got.Execution.Attempts != 3 ||
		!strings.HasPrefix(got.Execution.LastError, "giving up after 3 attempts: ") {
		t.Fatalf("execution %+v", got.Execution)
	}
	if _, ok := h.entry(r.ID); ok {
		t.Fatal("outbox entry left after giving up")
	}
	c.Advance(time.Hour)
	h.runOnce(0)
}

func TestSecretNeverRecorded(t *testing.T) {
	c := clock.NewFake(t0)
	// A hostile or careless receiver echoes the secret and floods the
	// error with control characters and a long body.
	echo := "expected secret " + secret + "\n\x1b[31m<!channel>\r\n" + strings.Repeat("x", 5000)
	rc := newReceiver(t, c, reply{status: 500, body: echo}, reply{status: 403, body: echo})
	h := newHarness(t, c, rc.srv.URL+"/hook?token=query-token-123", executor.Options{})
	r := h.approve("deploy", map[string]string{"service": "api"})

	h.runOnce(1)
	e, _ := h.entry(r.ID)
	retryErr := e.LastError
	h.retryDue(r.ID)
	h.runOnce(1)
	got := h.request(r.ID)
	if got.Execution.Status != storage.ExecutionFailed {
		t.Fatalf("execution %+v", got.Execution)
	}
	for _, s := range append(h.auditLines(), retryErr, got.Execution.LastError) {
		for _, leak := range []string{secret, "query-token-123"} {
			if strings.Contains(s, leak) {
				t.Fatalf("recorded text leaks %q: %s", leak, s)
			}
		}
	}
	for _, msg := range []string{retryErr, got.Execution.LastError} {
		if !strings.Contains(msg, "[redacted]") || strings.ContainsAny(msg, "\n\r\x1b") || len(msg) > 400 {
			t.Fatalf("recorded error not sanitized (%d bytes): %q", len(msg), msg)
		}
	}
}

func TestUnreachableWebhookIsRetriedWithoutItsURL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	h := newHarness(t, clock.NewFake(t0), "http://"+addr+"/hook?token=query-token-123", executor.Options{})
	r := h.approve("deploy", map[string]string{"service": "api"})

	h.runOnce(1)
	got := h.request(r.ID)
	if got.Execution.Status != storage.ExecutionPending || !strings.Contains(got.Execution.LastError, "webhook at "+addr+" unreachable") {
		t.Fatalf("execution %+v", got.Execution)
	}
	for _, s := range append(h.auditLines(), got.Execution.LastError) {
		if strings.Contains(s, "query-token-123") || strings.Contains(s, "/hook") {
			t.Fatalf("recorded text quotes the webhook URL: %s", s)
		}
	}
	wantTypes(t, h.executionTypes(), "execution.attempt")
}

func TestActionWithoutWebhookFails(t *testing.T) {
	h := newHarness(t, clock.NewFake(t0), "http://127.0.0.1:1/unused", executor.Options{})
	r := h.approve("no-webhook", nil)
	h.runOnce(1)
	got := h.request(r.ID)
	if got.Execution.Status != storage.ExecutionFailed || !strings.Contains(got.Execution.LastError, `action "no-webhook" has no on_approve webhook`) {
		t.Fatalf("execution %+v", got.Execution)
	}
	wantTypes(t, h.executionTypes(), "execution.failed")
}

func TestActionNoLongerDeclaredFails(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c)
	h := newHarness(t, c, rc.srv.URL, executor.Options{})
	r := h.approve("deploy", map[string]string{"service": "api"})
	h.undeclareDeploy = true
	h.reopen()

	h.runOnce(1)
	got := h.request(r.ID)
	if got.Execution.Status != storage.ExecutionFailed || !strings.Contains(got.Execution.LastError, `action "deploy" is no longer declared`) {
		t.Fatalf("execution %+v", got.Execution)
	}
	if n := len(rc.deliveries()); n != 0 {
		t.Fatalf("receiver got %d calls, want none", n)
	}
}

func TestRunOnceDrainsMoreThanOneBatch(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c)
	h := newHarness(t, c, rc.srv.URL, executor.Options{Concurrency: 2})
	var ids []string
	for i := range 5 {
		ids = append(ids, h.approve("deploy", map[string]string{"service": fmt.Sprintf("svc-%d", i)}).ID)
	}
	h.runOnce(5)
	seen := map[string]int{}
	for _, d := range rc.deliveries() {
		seen[d.header.Get(executor.HeaderIdempotencyKey)]++
	}
	for _, id := range ids {
		if seen[id] != 1 || h.request(id).Execution.Status != storage.ExecutionSucceeded {
			t.Fatalf("request %s delivered %d times, execution %+v", id, seen[id], h.request(id).Execution)
		}
	}
}

// TestShutdownMidDeliveryReschedules: cancelling Run while a delivery hangs
// records the interrupted attempt as due at once, so the next start does
// not wait for the lease.
func TestShutdownMidDeliveryReschedules(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c, reply{hang: true}, reply{status: 200})
	h := newHarness(t, c, rc.srv.URL, executor.Options{})
	h.webhook.Timeout = time.Minute / 2
	h.reopen()
	r := h.approve("deploy", map[string]string{"service": "api"})

	stop := h.start()
	testenv.Eventually(t, "delivery in flight", func() bool { return len(rc.deliveries()) == 1 })
	stop()
	e, ok := h.entry(r.ID)
	if !ok || !e.LeaseUntil.IsZero() || e.NextAttempt.After(c.Now()) || !strings.Contains(e.LastError, "shutting down") {
		t.Fatalf("entry after shutdown: %+v", e)
	}
	h.reopen()
	h.runOnce(1)
	if got := h.request(r.ID); got.Execution.Status != storage.ExecutionSucceeded {
		t.Fatalf("execution %+v", got.Execution)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	c := clock.NewFake(t0)
	elsewhere := newReceiver(t, c)
	rc := newReceiver(t, c, reply{status: http.StatusPermanentRedirect, header: map[string]string{"Location": elsewhere.srv.URL}})
	h := newHarness(t, c, rc.srv.URL, executor.Options{})
	r := h.approve("deploy", map[string]string{"service": "api"})

	h.runOnce(1)
	got := h.request(r.ID)
	if got.Execution.Status != storage.ExecutionFailed || !strings.Contains(got.Execution.LastError, "redirects are not followed") {
		t.Fatalf("execution %+v", got.Execution)
	}
	if n := len(elsewhere.deliveries()); n != 0 {
		t.Fatalf("redirect target got %d calls", n)
	}
}
