package cards

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

var checkpointKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))

// newPublishEnv is a Slack Deliverer over a service that signs a checkpoint
// after every second record and publishes it to the witness channels
// targets; its action notifies nowhere, so the only chat calls are
// checkpoints.
func newPublishEnv(t *testing.T, st storage.Store, targets ...string) *env {
	t.Helper()
	pol := &policy.Policy{Actions: map[string]*policy.Action{
		"deploy": {
			Name: "deploy", Requesters: []policy.RequesterRule{{Issuer: "github"}},
			Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
			TTL:       time.Hour,
		},
	}}
	return newEnvWith(t, st, pol, approvals.Options{
		SigningKey: checkpointKey, CheckpointEvery: 2,
		Witnesses: approvals.Witnesses{Chat: policy.Notify{Slack: targets}},
	})
}

// drain runs passes until one claims nothing.
func (e *env) drain() {
	e.t.Helper()
	for range 50 {
		if e.deliver() == 0 {
			return
		}
	}
	e.t.Fatal("the outbox never drained")
}

// publishedTo returns the seqs Publish took for target, in order, and
// checks that each record is the log's line at that seq.
func (e *env) publishedTo(target string) []uint64 {
	e.t.Helper()
	lines := testenv.AuditLines(e.t, e.store)
	e.chat.mu.Lock()
	defer e.chat.mu.Unlock()
	var seqs []uint64
	for _, p := range e.chat.published {
		if p.target != target {
			continue
		}
		if p.seq == 0 || p.seq > uint64(len(lines)) || p.record != string(lines[p.seq-1]) {
			e.t.Fatalf("published seq %d as %q, not the log's line", p.seq, p.record)
		}
		seqs = append(seqs, p.seq)
	}
	return seqs
}

func seqsEqual(got []uint64, want ...uint64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// Each witness gets every checkpoint, in seq order: while the oldest
// checkpoint of one witness fails and backs off, the younger ones wait
// behind it, and the other witness is not held up.
func TestCheckpointsPublishedInOrderPerWitness(t *testing.T) {
	e := newPublishEnv(t, testenv.OpenStore(t), "CA", "CB")
	for range 4 {
		e.create() // checkpoints at seq 3, 5 and 7
	}
	e.chat.fail("publish", verdict{Failure{Kind: Retry}})
	e.drain()
	if got := e.publishedTo("CA"); len(got) != 0 {
		t.Fatalf("CA got %v while its first checkpoint was failing", got)
	}
	if got := e.publishedTo("CB"); !seqsEqual(got, 3, 5, 7) {
		t.Fatalf("CB got %v, want 3 5 7", got)
	}
	e.clock.Advance(Backoff(1))
	e.drain()
	if got := e.publishedTo("CA"); !seqsEqual(got, 3, 5, 7) {
		t.Fatalf("CA got %v after the retry, want 3 5 7", got)
	}
	if n := len(testenv.DueOutbox(t, e.store, approvals.KindPublishPrefix)); n != 0 {
		t.Fatalf("%d publications left", n)
	}

	// What each witness holds anchors the log.
	pub := checkpointKey.Public().(ed25519.PublicKey)
	for _, target := range []string{"CA", "CB"} {
		var file bytes.Buffer
		e.chat.mu.Lock()
		for _, p := range e.chat.published {
			if p.target == target {
				file.WriteString(p.record + "\n")
			}
		}
		e.chat.mu.Unlock()
		anchors, err := audit.ReadAnchors(&file, pub)
		if err != nil {
			t.Fatal(err)
		}
		opts := audit.VerifyOptions{PublicKey: pub, Anchors: anchors}
		if sum, err := testenv.VerifyLines(t, testenv.AuditLines(t, e.store), opts); err != nil || sum.Anchors != 3 {
			t.Fatalf("%s's lines: %+v %v", target, sum, err)
		}
	}
}

// No failure drops a checkpoint: a channel the platform says is gone, or
// that the adapter cannot reach yet, is retried with backoff and logged as
// an error until it takes the checkpoint.
func TestCheckpointNeverDropped(t *testing.T) {
	e := newPublishEnv(t, testenv.OpenStore(t), "CA")
	e.create()
	e.create() // checkpoint at seq 3
	e.chat.fail("publish", verdict{Failure{Kind: Gone}}, verdict{Failure{Kind: Unreachable}}, verdict{Failure{Kind: Retry, Severe: true}})
	e.drain()
	for attempt := 1; attempt <= 3; attempt++ {
		if got := e.publishedTo("CA"); len(got) != 0 {
			t.Fatalf("published %v on attempt %d", got, attempt)
		}
		if n := len(testenv.DueOutbox(t, e.store, approvals.KindPublishPrefix)); n != 1 {
			t.Fatalf("%d publications after failed attempt %d, want 1", n, attempt)
		}
		e.clock.Advance(Backoff(attempt))
		e.drain()
	}
	if got := e.publishedTo("CA"); !seqsEqual(got, 3) {
		t.Fatalf("published %v", got)
	}
	if n := strings.Count(e.logs.String(), "level=ERROR msg=\"a signed checkpoint could not be published"); n != 3 {
		t.Errorf("%d errors logged, want 3:\n%s", n, e.logs)
	}
}

// A rate limit makes the other witnesses of the batch wait it out too.
func TestCheckpointRateLimitPausesBatch(t *testing.T) {
	e := newPublishEnv(t, testenv.OpenStore(t), "CA", "CB")
	e.create()
	e.create() // checkpoint at seq 3
	e.chat.fail("publish", verdict{Failure{Kind: RateLimited, Wait: 3 * time.Second}})
	e.drain()
	if got := strings.Join(e.chat.ops(), ", "); got != "publish 3(failed)" {
		t.Fatalf("calls during the rate limit: %s", got)
	}
	e.clock.Advance(3 * time.Second)
	e.drain()
	if !seqsEqual(e.publishedTo("CA"), 3) || !seqsEqual(e.publishedTo("CB"), 3) {
		t.Fatalf("calls: %s", strings.Join(e.chat.ops(), ", "))
	}
}

// deleteFailingStore fails the next DeleteOutbox once armed.
type deleteFailingStore struct {
	storage.Store
	mu   sync.Mutex
	fail bool
}

func (s *deleteFailingStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	return s.Store.Update(ctx, func(tx storage.Tx) error { return fn(deleteFailingTx{tx, s}) })
}

type deleteFailingTx struct {
	storage.Tx
	s *deleteFailingStore
}

var errDelete = errors.New("injected delete failure")

func (t deleteFailingTx) DeleteOutbox(id uint64) error {
	t.s.mu.Lock()
	fail := t.s.fail
	t.s.fail = false
	t.s.mu.Unlock()
	if fail {
		return errDelete
	}
	return t.Tx.DeleteOutbox(id)
}

// A checkpoint the witness took but whose completion failed is completed
// by the retry without posting it again, and the next one follows.
func TestPublishedCheckpointNotPostedTwice(t *testing.T) {
	st := &deleteFailingStore{Store: testenv.OpenStore(t)}
	e := newPublishEnv(t, st, "CA")
	for range 3 {
		e.create() // checkpoints at seq 3 and 5
	}
	st.mu.Lock()
	st.fail = true
	st.mu.Unlock()
	e.drain()
	if got := e.publishedTo("CA"); !seqsEqual(got, 3) {
		t.Fatalf("published %v before the retry", got)
	}
	e.clock.Advance(BackoffBase)
	e.drain()
	if got := e.publishedTo("CA"); !seqsEqual(got, 3, 5) {
		t.Fatalf("published %v, want 3 once, then 5", got)
	}
}

// An entry that holds no checkpoint record (not something any attempt
// could deliver) is removed and logged, and does not hold the witness up.
func TestUnreadablePublicationRemoved(t *testing.T) {
	st := testenv.OpenStore(t)
	e := newPublishEnv(t, st, "CA")
	kind := approvals.PublishKind("slack", "CA")
	for _, payload := range []string{"not a record", "{\"type\":\"checkpoint\"}\n", "`"} {
		if err := st.Update(context.Background(), func(tx storage.Tx) error {
			_, err := tx.Enqueue(storage.OutboxEntry{Kind: kind, Payload: []byte(payload), NextAttempt: t0, CreatedAt: t0})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	e.create()
	e.create() // checkpoint at seq 3
	e.drain()
	if got := e.publishedTo("CA"); !seqsEqual(got, 3) {
		t.Fatalf("published %v, want 3", got)
	}
	if n := strings.Count(e.logs.String(), "checkpoint publication is unreadable"); n != 3 {
		t.Errorf("%d unreadable entries logged, want 3", n)
	}
}
