package executor_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/executor"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

var checkpointKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, ed25519.SeedSize))

// witness is a service that signs a checkpoint after every second record
// and publishes it to a webhook, and the Publisher that sends them.
type witness struct {
	t     *testing.T
	clock *clock.Fake
	store storage.Store
	svc   *approvals.Service
	pub   *executor.Publisher
	logs  *testenv.LogBuffer
}

func newWitness(t *testing.T, c *clock.Fake, url string, opts executor.Options) *witness {
	t.Helper()
	w := &witness{t: t, clock: c, store: testenv.OpenStore(t), logs: &testenv.LogBuffer{}}
	w.svc = approvals.New(w.store, &policy.Policy{}, approvals.Options{
		Clock: c, Logger: testenv.DiscardLogger(), SigningKey: checkpointKey, CheckpointEvery: 2,
		Witnesses: approvals.Witnesses{Webhook: true},
	})
	opts.Clock = c
	opts.Logger = slog.New(slog.NewTextHandler(w.logs, nil))
	w.pub = executor.NewPublisher(w.svc, policy.Webhook{URL: url, Secret: secret, Timeout: 5 * time.Second}, opts)
	return w
}

// audited writes n audit records (admin backups).
func (w *witness) audited(n int) {
	w.t.Helper()
	for range n {
		if err := w.svc.RecordBackup(context.Background(), audit.Actor{Issuer: "https://idp.example", Subject: "sub-admin"}, nil); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *witness) runOnce(want int) {
	w.t.Helper()
	wantAttempts(w.t, w.pub.RunOnce, want)
}

func (w *witness) left() []storage.OutboxEntry {
	w.t.Helper()
	return testenv.DueOutbox(w.t, w.store, approvals.KindPublishWebhook)
}

// keep is what a witness does with what it receives: it checks the
// signature and keeps the first line of each seq.
func keep(t *testing.T, ds []delivery) (file []byte, seqs []uint64) {
	t.Helper()
	seen := map[uint64]bool{}
	for _, d := range ds {
		if d.status != http.StatusOK {
			continue
		}
		if d.sigErr != nil {
			t.Fatalf("signature of %s: %v", d.body, d.sigErr)
		}
		a, err := audit.ParseAnchor(d.body)
		if err != nil {
			t.Fatalf("a delivery is not a checkpoint: %v", err)
		}
		if !seen[a.Seq] {
			seen[a.Seq] = true
			seqs = append(seqs, a.Seq)
			file = append(append(file, d.body...), '\n')
		}
	}
	return file, seqs
}

// Checkpoints reach the webhook in order, signed as on_approve webhooks
// are: a failing receiver gets retries (after its Retry-After), the later
// checkpoint waits behind the earlier one, and the lines the receiver
// keeps anchor the log.
func TestCheckpointsReachWebhookInOrder(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c,
		reply{status: http.StatusServiceUnavailable, header: map[string]string{"Retry-After": "7"}, body: "down for " + secret},
		reply{status: http.StatusOK})
	w := newWitness(t, c, rc.srv.URL+"/checkpoints", executor.Options{})
	w.audited(2) // checkpoint at seq 3
	w.runOnce(1)
	left := w.left()
	if len(left) != 1 || !strings.Contains(left[0].LastError, "503") || strings.Contains(left[0].LastError, secret) ||
		!left[0].NextAttempt.Equal(t0.Add(7*time.Second)) {
		t.Fatalf("after a 503: %+v", left)
	}
	w.audited(1) // checkpoint at seq 5, behind the one that failed
	w.runOnce(0)
	c.Advance(7 * time.Second)
	w.runOnce(2)
	w.runOnce(0)

	ds := rc.deliveries()
	lines := testenv.AuditLines(t, w.store)
	for i, want := range []int{3, 3, 5} {
		d := ds[i]
		if !bytes.Equal(d.body, lines[want-1]) {
			t.Fatalf("delivery %d: %s, want the log's line %d", i, d.body, want)
		}
		if d.header.Get("Content-Type") != "application/json" || d.header.Get(executor.HeaderIdempotencyKey) != "checkpoint-"+map[int]string{3: "3", 5: "5"}[want] ||
			d.header.Get("User-Agent") != executor.DefaultUserAgent {
			t.Errorf("delivery %d headers: %v", i, d.header)
		}
		if d.sigErr != nil || !errors.Is(d.wrongErr, executor.ErrSignatureMismatch) {
			t.Errorf("delivery %d: signature %v, with a wrong secret %v", i, d.sigErr, d.wrongErr)
		}
	}
	if len(ds) != 3 {
		t.Fatalf("%d deliveries, want 3", len(ds))
	}
	if len(w.left()) != 0 {
		t.Fatal("publications left")
	}

	file, seqs := keep(t, ds)
	if len(seqs) != 2 || seqs[0] != 3 || seqs[1] != 5 {
		t.Fatalf("the receiver keeps seqs %v", seqs)
	}
	pub := checkpointKey.Public().(ed25519.PublicKey)
	anchors, err := audit.ReadAnchors(bytes.NewReader(file), pub)
	if err != nil {
		t.Fatal(err)
	}
	opts := audit.VerifyOptions{PublicKey: pub, Anchors: anchors}
	if sum, err := testenv.VerifyLines(t, lines, opts); err != nil || sum.Anchors != 2 {
		t.Fatalf("the receiver's lines do not anchor the log: %+v %v", sum, err)
	}
	// A log cut after the first checkpoint fails against them.
	if _, err := testenv.VerifyLines(t, lines[:4], opts); !errors.Is(err, audit.ErrTruncated) {
		t.Fatalf("a truncated log against the anchors: %v", err)
	}
}

// A receiver that refuses (4xx, a redirect) is retried with backoff past
// MaxAttempts, logged as an error: a checkpoint is never given up.
func TestCheckpointRefusedIsRetriedForever(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c,
		reply{status: http.StatusUnauthorized}, reply{status: http.StatusFound, header: map[string]string{"Location": "https://elsewhere.example/"}},
		reply{status: http.StatusBadRequest}, reply{status: http.StatusOK})
	w := newWitness(t, c, rc.srv.URL, executor.Options{MaxAttempts: 2, BaseBackoff: time.Second, MaxBackoff: time.Second})
	w.audited(2)
	for range 3 {
		w.runOnce(1)
		if len(w.left()) != 1 {
			t.Fatal("the checkpoint was dropped")
		}
		c.Advance(time.Second)
	}
	w.runOnce(1)
	if len(w.left()) != 0 || len(rc.deliveries()) != 4 {
		t.Fatalf("%d deliveries, %d entries left", len(rc.deliveries()), len(w.left()))
	}
	if n := strings.Count(w.logs.String(), "the webhook witness refuses checkpoints"); n != 3 {
		t.Errorf("%d refusals logged as errors, want 3:\n%s", n, w.logs)
	}
}

// A delivery cut short by shutdown is due again at once, and the next
// start delivers it.
func TestCheckpointInterruptedByShutdownIsDueAtOnce(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c, reply{hang: true}, reply{status: http.StatusOK})
	w := newWitness(t, c, rc.srv.URL, executor.Options{})
	w.audited(2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := w.pub.RunOnce(ctx); done <- err }()
	testenv.Eventually(t, "the receiver to be called", func() bool { return len(rc.deliveries()) == 1 })
	cancel()
	if err := testenv.Receive(t, done, "RunOnce to return"); !errors.Is(err, context.Canceled) {
		t.Fatalf("RunOnce: %v", err)
	}
	left := w.left()
	if len(left) != 1 || !left[0].NextAttempt.Equal(t0) || !left[0].LeaseUntil.IsZero() || !strings.Contains(left[0].LastError, "shutting down") {
		t.Fatalf("after shutdown: %+v", left)
	}
	w.runOnce(1)
	if len(w.left()) != 0 {
		t.Fatal("not delivered after the restart")
	}
}

// An entry that holds no checkpoint record is removed, not sent.
func TestUnreadableCheckpointPublicationRemoved(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c)
	w := newWitness(t, c, rc.srv.URL, executor.Options{})
	if err := w.store.Update(context.Background(), func(tx storage.Tx) error {
		_, err := tx.Enqueue(storage.OutboxEntry{Kind: approvals.KindPublishWebhook, Payload: []byte(`{"seq":1}`), NextAttempt: t0, CreatedAt: t0})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	w.runOnce(1)
	if len(w.left()) != 0 || len(rc.deliveries()) != 0 || !strings.Contains(w.logs.String(), "unreadable") {
		t.Fatalf("left %d, delivered %d, logs:\n%s", len(w.left()), len(rc.deliveries()), w.logs)
	}
}
