package approvals_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

var (
	witnessKey   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	witnessSlack = approvals.PublishKind("slack", "C0AUDIT")
	witnessTeams = approvals.PublishKind("teams", "19:audit@thread.tacv2")
)

// witnessOptions sign a checkpoint after every fourth record and publish it
// to a Slack channel, a Teams conversation and the webhook.
func witnessOptions() approvals.Options {
	return approvals.Options{
		SigningKey: witnessKey, CheckpointEvery: 4,
		Witnesses: approvals.Witnesses{
			Chat:    policy.Notify{Slack: []string{"C0AUDIT"}, Teams: []string{"19:audit@thread.tacv2"}},
			Webhook: true,
		},
	}
}

// checkpointLines returns the checkpoint records of the log, as stored.
func checkpointLines(t *testing.T, st storage.Store) [][]byte {
	t.Helper()
	var out [][]byte
	for _, l := range testenv.AuditLines(t, st) {
		if bytes.Contains(l, []byte(`"type":"checkpoint"`)) {
			out = append(out, l)
		}
	}
	return out
}

// A signed checkpoint, periodic or closing, queues one entry per witness in
// its own transaction, each holding the record line exactly as the log
// stores it; the lines a witness holds anchor the log.
func TestCheckpointQueuesOnePublicationPerWitness(t *testing.T) {
	h := newHarness(t, witnessOptions())
	for range 4 {
		h.create("restart", nil)
	}
	cps := checkpointLines(t, h.store)
	if len(cps) != 1 {
		t.Fatalf("%d checkpoints, want 1", len(cps))
	}
	entries := h.outbox(approvals.KindPublishPrefix)
	var kinds []string
	for _, e := range entries {
		kinds = append(kinds, e.Kind)
		if !bytes.Equal(e.Payload, cps[0]) {
			t.Errorf("%s payload %s, want the stored line %s", e.Kind, e.Payload, cps[0])
		}
		if e.RequestID != "" {
			t.Errorf("%s names request %q", e.Kind, e.RequestID)
		}
	}
	if want := []string{witnessSlack, witnessTeams, approvals.KindPublishWebhook}; !slices.Equal(kinds, want) {
		t.Fatalf("kinds %q, want %q", kinds, want)
	}

	if err := h.svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cps = checkpointLines(t, h.store)
	if len(cps) != 2 {
		t.Fatalf("%d checkpoints after Close, want 2", len(cps))
	}
	// Per witness, the two checkpoints in order, as the witness would
	// keep them: they anchor the log, signatures checked.
	for _, kind := range []string{witnessSlack, witnessTeams, approvals.KindPublishWebhook} {
		var file bytes.Buffer
		for _, e := range h.outbox(kind) {
			file.Write(e.Payload)
			file.WriteByte('\n')
		}
		if !bytes.Equal(file.Bytes(), append(append(append(cps[0], '\n'), cps[1]...), '\n')) {
			t.Fatalf("%s holds\n%s", kind, file.Bytes())
		}
		pub := witnessKey.Public().(ed25519.PublicKey)
		anchors, err := audit.ReadAnchors(&file, pub)
		if err != nil {
			t.Fatal(err)
		}
		opts := audit.VerifyOptions{PublicKey: pub, Strict: true, Anchors: anchors}
		if sum, err := testenv.VerifyLines(t, testenv.AuditLines(t, h.store), opts); err != nil || sum.Anchors != 2 {
			t.Fatalf("verify against %s: %+v %v", kind, sum, err)
		}
	}
}

// Without witnesses, or without a signing key (no checkpoint to publish),
// nothing is queued.
func TestNoPublicationWithoutWitnessOrKey(t *testing.T) {
	noWitness := witnessOptions()
	noWitness.Witnesses = approvals.Witnesses{}
	noKey := witnessOptions()
	noKey.SigningKey = nil
	for name, opts := range map[string]approvals.Options{"no witness": noWitness, "no key": noKey} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, opts)
			for range 5 {
				h.create("restart", nil)
			}
			if err := h.svc.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := len(h.outbox(approvals.KindPublishPrefix)); n != 0 {
				t.Fatalf("%d publications", n)
			}
		})
	}
}

// publishFailingTx fails the queueing of a publication.
type publishFailingStore struct{ storage.Store }

func (f publishFailingStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	return f.Store.Update(ctx, func(tx storage.Tx) error { return fn(publishFailingTx{tx}) })
}

type publishFailingTx struct{ storage.Tx }

func (t publishFailingTx) Enqueue(e storage.OutboxEntry) (storage.OutboxEntry, error) {
	if strings.HasPrefix(e.Kind, approvals.KindPublishPrefix) {
		return e, errInjected
	}
	return t.Tx.Enqueue(e)
}

// A checkpoint whose publication cannot be queued is not written, nor is
// the change that caused it: the witnesses miss no checkpoint.
func TestCheckpointAndPublicationsCommitTogether(t *testing.T) {
	h := newHarness(t, witnessOptions())
	for range 3 {
		h.create("restart", nil)
	}
	opts := witnessOptions()
	opts.Clock, opts.Logger = h.clock, slog.New(slog.DiscardHandler)
	svc := approvals.New(publishFailingStore{h.store}, testPolicy(), opts)
	_, _, err := svc.Create(context.Background(), approvals.CreateInput{Requester: requester, Action: "restart"})
	if !errors.Is(err, errInjected) {
		t.Fatalf("create: %v, want the injected failure", err)
	}
	if n := len(h.records()); n != 3 {
		t.Fatalf("%d audit records, want the 3 before", n)
	}
	if err := svc.Close(context.Background()); !errors.Is(err, errInjected) {
		t.Fatalf("close: %v, want the injected failure", err)
	}
	if n := len(h.records()); n != 3 {
		t.Fatalf("%d audit records after a failed close, want 3", n)
	}
	if n := len(h.outbox("")); n != 0 {
		t.Fatalf("%d outbox entries", n)
	}
}

// ClaimPublications hands out a witness's oldest checkpoint only: a younger
// one never overtakes it, whether the oldest is backing off after a
// failure or in flight; CompletePublication wakes the next at once.
func TestPublicationsClaimedInOrderPerWitness(t *testing.T) {
	opts := witnessOptions()
	opts.Witnesses = approvals.Witnesses{Chat: policy.Notify{Slack: []string{"CA", "CB"}}}
	h := newHarness(t, opts)
	for range 8 {
		h.create("restart", nil) // checkpoints at seq 5 and 9
	}
	a, b := approvals.PublishKind("slack", "CA"), approvals.PublishKind("slack", "CB")
	ctx := context.Background()
	prefix := approvals.PublishKindPrefix("slack")
	claim := func() map[string]uint64 {
		t.Helper()
		got, err := h.svc.ClaimPublications(ctx, prefix, 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		seqs := map[string]uint64{}
		for _, e := range got {
			anchor, err := audit.ParseAnchor(e.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if _, dup := seqs[e.Kind]; dup {
				t.Fatalf("two entries of %s claimed at once", e.Kind)
			}
			seqs[e.Kind] = anchor.Seq
		}
		return seqs
	}
	idOf := func(kind string, seq uint64) uint64 {
		t.Helper()
		for _, e := range h.outbox(kind) {
			if anchor, _ := audit.ParseAnchor(e.Payload); anchor.Seq == seq {
				return e.ID
			}
		}
		t.Fatalf("no entry of %s for seq %d", kind, seq)
		return 0
	}
	same := func(got, want map[string]uint64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("claimed %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("claimed %v, want %v", got, want)
			}
		}
	}

	same(claim(), map[string]uint64{a: 5, b: 5})
	// A's first fails and backs off; B's first is delivered.
	if err := h.svc.Retry(ctx, idOf(a, 5), h.clock.Now().Add(10*time.Minute), errors.New("channel_not_found")); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.CompletePublication(ctx, idOf(b, 5), b); err != nil {
		t.Fatal(err)
	}
	same(claim(), map[string]uint64{b: 9})
	for _, e := range h.outbox(a) {
		if anchor, _ := audit.ParseAnchor(e.Payload); anchor.Seq == 9 && (e.Attempts != 0 || !strings.Contains(e.LastError, "older checkpoint")) {
			t.Fatalf("A's second entry: %+v", e)
		}
	}
	if err := h.svc.CompletePublication(ctx, idOf(b, 9), b); err != nil {
		t.Fatal(err)
	}
	// Long after, A's first is due again and goes first; its second still
	// waits while the first is in flight.
	h.clock.Advance(time.Hour)
	same(claim(), map[string]uint64{a: 5})
	h.clock.Advance(30 * time.Second)
	same(claim(), map[string]uint64{})
	if err := h.svc.CompletePublication(ctx, idOf(a, 5), a); err != nil {
		t.Fatal(err)
	}
	same(claim(), map[string]uint64{a: 9})
	if err := h.svc.CompletePublication(ctx, idOf(a, 9), a); err != nil {
		t.Fatal(err)
	}
	// Completing an entry another worker completed already says so.
	if err := h.svc.CompletePublication(ctx, 9999, a); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("complete of a missing entry: %v", err)
	}
	if _, err := h.svc.ClaimPublications(ctx, "notify.slack", 1, time.Minute); !errors.Is(err, approvals.ErrInvalid) {
		t.Fatalf("claim of another kind: %v", err)
	}
}

// A witness's kind names its conversation unambiguously: no kind is the
// start of another's, and PublishTarget reads the conversation back.
func TestPublishKindRoundTrip(t *testing.T) {
	targets := []string{"C0123ABCD", "C0123ABCDE", "19:x@thread.tacv2", "19:x@thread.tacv2;messageid=17", "a(b)c", "a/b", "ü ö", ")"}
	for _, t1 := range targets {
		k1 := approvals.PublishKind("teams", t1)
		if got, ok := approvals.PublishTarget("teams", k1); !ok || got != t1 {
			t.Errorf("PublishTarget(%q) = %q, %v; want %q", k1, got, ok, t1)
		}
		if _, ok := approvals.PublishTarget("slack", k1); ok {
			t.Errorf("%q read as a Slack witness", k1)
		}
		for _, t2 := range targets {
			if k2 := approvals.PublishKind("teams", t2); t1 != t2 && strings.HasPrefix(k2, k1) {
				t.Errorf("kind %q starts with %q", k2, k1)
			}
		}
	}
	for _, bad := range []string{"publish.teams", "publish.teams()", "publish.teams(x", "publish.teams(a)b)", "publish.teams(%zz)", "publish.webhook", "notify.teams"} {
		if got, ok := approvals.PublishTarget("teams", bad); ok {
			t.Errorf("PublishTarget(%q) = %q, want none", bad, got)
		}
	}
}

// Backlog counts the checkpoints every kind of witness still waits for,
// and how long the oldest has waited, whatever their schedule.
func TestBacklogCountsUnpublishedCheckpoints(t *testing.T) {
	h := newHarness(t, witnessOptions())
	b, err := h.svc.Backlog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{approvals.WitnessSlack, approvals.WitnessTeams, approvals.WitnessWebhook} {
		if n, ok := b.Unpublished[w]; !ok || n != 0 || b.OldestUnpublished[w] != 0 {
			t.Fatalf("empty backlog of %s: %d %v %s", w, n, ok, b.OldestUnpublished[w])
		}
	}
	for range 8 {
		h.create("restart", nil)
	}
	h.clock.Advance(90 * time.Second)
	got, err := h.svc.ClaimPublications(context.Background(), approvals.KindPublishWebhook, 1, time.Minute)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	b, err = h.svc.Backlog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{approvals.WitnessSlack, approvals.WitnessTeams, approvals.WitnessWebhook} {
		if b.Unpublished[w] != 2 || b.OldestUnpublished[w] != 90*time.Second {
			t.Errorf("%s: %d unpublished, oldest %s; want 2 and 1m30s", w, b.Unpublished[w], b.OldestUnpublished[w])
		}
	}
}
