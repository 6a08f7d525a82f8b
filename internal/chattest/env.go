package chattest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// Env is the part of an adapter's test environment that is the same on
// every platform: the approvals service, its store and the adapter's
// outbox pass, with helpers that fail the test on error. An adapter's
// test environment embeds it.
type Env struct {
	tb          testing.TB
	svc         *approvals.Service
	store       storage.Store
	deliverOnce func(context.Context) (int, error)
}

// NewEnv returns the helpers over svc, store (the one svc writes to) and
// deliverOnce (the adapter's outbox pass, Bot.DeliverOnce), failing tb.
func NewEnv(tb testing.TB, svc *approvals.Service, store storage.Store, deliverOnce func(context.Context) (int, error)) Env {
	return Env{tb: tb, svc: svc, store: store, deliverOnce: deliverOnce}
}

// Create asks for a new request of action by Requester, and fails the test
// unless one was created.
func (e Env) Create(action string, params map[string]string, reason string, links ...storage.Link) storage.Request {
	e.tb.Helper()
	return Create(e.tb, e.svc, action, params, reason, links...)
}

// BreakGlass gives action a break_glass for group oncall, reviewed within
// a day by one member of sre-leads, then breaks glass on it as Requester,
// a member of oncall, and fails the test unless the request was created
// approved.
func (e Env) BreakGlass(action string, params map[string]string, reason string) storage.Request {
	e.tb.Helper()
	e.svc.Policy().Actions[action].BreakGlass = &policy.BreakGlass{
		Groups: []string{"oncall"}, Review: policy.Approvers{Groups: []string{"sre-leads"}, MinApprovals: 1}, Within: 24 * time.Hour,
	}
	r, created, err := e.svc.Create(context.Background(), approvals.CreateInput{
		Requester: Requester(), Action: action, Params: params, Reason: reason,
		BreakGlass: true, Groups: []string{"oncall"}, GroupsClaim: "groups",
	})
	if err != nil || !created || r.State != storage.StateApproved {
		e.tb.Fatalf("break glass on %s: %+v created=%v err=%v", action, r.State, created, err)
	}
	return r
}

// BreakGlassReview breaks glass on action as BreakGlass does, delivers the
// cards, and returns the request and the first card posted for its review.
func (e Env) BreakGlassReview(action string, params map[string]string, reason string) (storage.Request, storage.Card) {
	e.tb.Helper()
	bg := e.BreakGlass(action, params, reason)
	e.Deliver()
	return bg, e.Get(bg.BreakGlass.Review).Cards[0]
}

// ExpireDue runs the service's expiry pass (expiries, reminders,
// escalations, overdue reviews) once, failing the test on error.
func (e Env) ExpireDue() {
	e.tb.Helper()
	if _, err := e.svc.ExpireDue(context.Background()); err != nil {
		e.tb.Fatal(err)
	}
}

// RecordBackups writes n audit records that post no card (admin backups).
func (e Env) RecordBackups(n int) {
	e.tb.Helper()
	for range n {
		if err := e.svc.RecordBackup(context.Background(), audit.Actor{Issuer: IdPIssuer, Subject: "sub-admin"}, nil); err != nil {
			e.tb.Fatal(err)
		}
	}
}

// Deliver runs outbox passes until nothing due is left.
func (e Env) Deliver() {
	e.tb.Helper()
	Drain(e.tb, e.deliverOnce)
}

// Get returns request id.
func (e Env) Get(id string) storage.Request {
	e.tb.Helper()
	return Get(e.tb, e.svc, id)
}

// Records returns the audit log, checking the chain.
func (e Env) Records() []audit.Record {
	e.tb.Helper()
	return testenv.AuditRecords(e.tb, e.store)
}

// RecordsOf returns the audit records of type typ, in order, checking the
// chain of the whole log.
func (e Env) RecordsOf(typ string) []audit.Record {
	e.tb.Helper()
	return RecordsOf(e.tb, e.store, typ)
}

// VoteAs casts decision on request id as approver, from src, straight
// through the approvals service (no click), and fails the test on error.
func (e Env) VoteAs(id string, approver oidc.Identity, decision storage.Decision, src approvals.Source) {
	e.tb.Helper()
	if _, err := e.svc.Vote(context.Background(), approvals.VoteInput{
		RequestID: id, Approver: approver, Decision: decision, Source: src,
	}); err != nil {
		e.tb.Fatal(err)
	}
}

// SaveOlderLink stores a link of acct to the identity subject (email,
// name) at IdPIssuer in group sre, linked and verified at T0, as links were
// made before a link had to match its chat account (no MatchedBy).
func (e Env) SaveOlderLink(acct linkflow.PlatformUser, subject, email, name string) {
	e.tb.Helper()
	if err := e.svc.SaveLink(context.Background(), storage.IdentityLink{
		Platform: acct.Platform, Workspace: acct.Workspace, PlatformUser: acct.UserID,
		Issuer: IdPIssuer, Subject: subject, Email: email, Name: name,
		Groups: []string{"sre"}, LinkedAt: T0, VerifiedAt: T0,
	}, ""); err != nil {
		e.tb.Fatal(err)
	}
}

// CheckApprovedByTwo checks that request id is approved with two votes,
// the first cast from account first by the identity subject; that two
// vote.approve records were written, the first by that account with the
// vote's source; and that one request.approved record was. It returns the
// first vote.
func (e Env) CheckApprovedByTwo(id string, first linkflow.PlatformUser, subject string) storage.Vote {
	e.tb.Helper()
	got := e.Get(id)
	if got.State != storage.StateApproved || len(got.Votes) != 2 {
		e.tb.Fatalf("request: %s with %d votes", got.State, len(got.Votes))
	}
	v := got.Votes[0]
	if v.Approver.Platform != first.Platform || v.Approver.Workspace != first.Workspace || v.Approver.PlatformUser != first.UserID ||
		v.Approver.Subject != subject {
		e.tb.Errorf("vote: %+v", v)
	}
	recs := e.RecordsOf(audit.TypeVoteApprove)
	if len(recs) != 2 || recs[0].Actor.Platform != first.Platform || recs[0].Actor.PlatformUser != first.UserID ||
		recs[0].Actor.Workspace != first.Workspace || recs[0].Source != v.Source {
		e.tb.Errorf("vote records: %+v", recs)
	}
	if len(e.RecordsOf(audit.TypeRequestApproved)) != 1 {
		e.tb.Error("no request.approved record")
	}
	return v
}

// CheckClickFlood checks what a flood of clicks by one linked account that
// may not approve left behind, when the adapter lets limit clicks a minute
// through: of replies (what each click was answered, in order) limit say
// "Not counted" and every other one that the account clicked more than
// limit times in the last minute and may try again in 60/limit seconds;
// approvals refused limit votes as not eligible, with as many vote.rejected
// records; and the audit log, which held before records when the flood
// began, grew by at most limit records.
func (e Env) CheckClickFlood(replies []string, limit, before int) {
	e.tb.Helper()
	tooMany := fmt.Sprintf("more than %d times in the last minute", limit)
	wait := fmt.Sprintf("Try again in %d seconds", 60/limit)
	refused, told := 0, 0
	for _, text := range replies {
		switch {
		case strings.Contains(text, "Not counted"):
			refused++
		case strings.Contains(text, tooMany) && strings.Contains(text, wait):
			told++
		default:
			e.tb.Errorf("unexpected reply %q", text)
		}
	}
	flood := len(replies)
	if refused != limit || told != flood-limit {
		e.tb.Errorf("%d clicks reached approvals and %d were told to wait; want %d and %d", refused, told, limit, flood-limit)
	}
	if got := len(e.RecordsOf(audit.TypeVoteRejected)); got != limit {
		e.tb.Errorf("%d vote.rejected records, want %d", got, limit)
	}
	if grew := len(e.Records()) - before; grew > limit {
		e.tb.Errorf("the audit log grew by %d records under a flood of %d clicks; want at most %d", grew, flood, limit)
	}
	if got := e.svc.Metrics().VotesRefused[string(approvals.ReasonNotEligible)]; got != uint64(limit) {
		e.tb.Errorf("approvals saw %d votes, want %d", got, limit)
	}
}

// CheckCancelNames checks that the status an adapter renders for a
// cancelled request (status returns it as text) names who cancelled it:
// byRequester after the requester's cancel; byAdmin, and not the
// requester, after an admin's.
func CheckCancelNames(t testing.TB, status func(storage.Request) string, byRequester, byAdmin string) {
	t.Helper()
	r := storage.Request{ID: "req_1", Action: "deploy", State: storage.StateCancelled, MinApprovals: 1, DecidedAt: time.Now(), DecidedBy: "requester"}
	if got := status(r); !strings.Contains(got, byRequester) {
		t.Errorf("requester's cancel: %q", got)
	}
	r.DecidedBy = "admin"
	if got := status(r); !strings.Contains(got, byAdmin) || strings.Contains(got, "requester") {
		t.Errorf("admin's cancel: %q", got)
	}
}

// checkpointKey signs the checkpoints of a service with WitnessOptions.
var checkpointKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, ed25519.SeedSize))

// WitnessOptions are the approvals service's options, beyond its clock,
// logger and platforms, for a service that signs a checkpoint after every
// third record and publishes it to witnesses.
func WitnessOptions(witnesses policy.Notify) approvals.Options {
	return approvals.Options{SigningKey: checkpointKey, CheckpointEvery: 3, Witnesses: approvals.Witnesses{Chat: witnesses}}
}

// unescapeEntities reads back the three entities both adapters escape a
// record line with (Slack's mrkdwn and Teams' XML text alike).
var unescapeEntities = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// CheckWitnessed checks the checkpoints a witness received, texts in the
// order posted: each holds, in the first group of block, the audit log's
// line at the matching seq of seqs, with &, < and > escaped as entities;
// and those lines, as the witness holds them, anchor the whole log of a
// service with WitnessOptions.
func (e Env) CheckWitnessed(block *regexp.Regexp, texts []string, seqs ...int) {
	e.tb.Helper()
	if len(texts) != len(seqs) {
		e.tb.Fatalf("%d checkpoints posted, want %d", len(texts), len(seqs))
	}
	lines := testenv.AuditLines(e.tb, e.store)
	var anchors bytes.Buffer
	for i, seq := range seqs {
		m := block.FindStringSubmatch(texts[i])
		if m == nil {
			e.tb.Fatalf("post %d has no block matching %s: %q", i, block, texts[i])
		}
		if got := unescapeEntities.Replace(m[1]); got != string(lines[seq-1]) {
			e.tb.Fatalf("post %d holds\n%s\nnot the log's line %d\n%s", i, got, seq, lines[seq-1])
		}
		anchors.WriteString(m[1] + "\n")
	}
	pub := checkpointKey.Public().(ed25519.PublicKey)
	read, err := audit.ReadAnchors(&anchors, pub)
	if err != nil {
		e.tb.Fatal(err)
	}
	v := audit.NewVerifier(audit.VerifyOptions{PublicKey: pub, Anchors: read})
	for _, l := range lines {
		if err := v.Add(l); err != nil {
			e.tb.Fatal(err)
		}
	}
	if sum, err := v.Finish(); err != nil || sum.Anchors != len(seqs) {
		e.tb.Fatalf("the witness's lines do not anchor the log: %+v %v", sum, err)
	}
}
