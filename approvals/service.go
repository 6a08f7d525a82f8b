// Package approvals owns the request lifecycle: create, vote, decide,
// cancel, expire, and the queueing of executions and notifications. Every
// state change commits in one storage transaction together with its audit
// records and outbox entries (or none of them do), so a crash at any instant
// loses nothing acknowledged and duplicates nothing.
//
// The package knows nothing about Slack, Teams or HTTP: adapters verify who
// is calling and hand the service a verified identity.
package approvals

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// Defaults for Options.
const (
	DefaultGroupsMaxAge    = 24 * time.Hour
	DefaultCheckpointEvery = 1000
	// DefaultReplicaPoll is Options.ReplicaPoll's default.
	DefaultReplicaPoll = 2 * time.Second
	// maxCASRetries bounds how often an update that lost a compare-and-swap
	// race (possible with several replicas) is retried.
	maxCASRetries = 8
)

// Options configure a Service. Zero values get sensible defaults.
type Options struct {
	// Clock drives expiry and timestamps; default the wall clock.
	Clock clock.Clock
	// Logger receives operational logs; never secrets. Default slog.Default().
	Logger *slog.Logger
	// GroupsMaxAge is how long after the IdP last verified an approver their
	// groups still count (docs/architecture.md, invariant 2). Default 24h.
	GroupsMaxAge time.Duration
	// Platforms names the chat adapters running (of platform.Chat: "slack",
	// "teams"). For each one an action notifies, every state change queues
	// an outbox entry of kind "notify.<platform>".
	Platforms []string
	// SigningKey, when set, signs a checkpoint record every CheckpointEvery
	// records and on Close.
	SigningKey      ed25519.PrivateKey
	CheckpointEvery int
	// Witnesses, with a SigningKey, receive every signed checkpoint: its
	// transaction queues one outbox entry per witness (publish.go).
	Witnesses Witnesses
	// NewID returns a fresh request id; default 128 random bits.
	NewID func() string
	// PendingPerRequester caps the requests one requester (issuer and
	// subject) may have pending at once; Create refuses one more with
	// ErrTooManyPending. 0 means no cap.
	PendingPerRequester int
	// ReplicaPoll bounds how long Wait can miss a change another replica
	// committed when no change notice reached this one (RelayChanges);
	// default DefaultReplicaPoll.
	ReplicaPoll time.Duration
	// Attester, when set, signs an attestation of every approval in the
	// transaction that approves it (attestation.go); nil: none.
	Attester Attester
}

// Service runs the request lifecycle over a Store under a Policy.
type Service struct {
	store    storage.Store
	policy   *policy.Policy
	clock    clock.Clock
	log      *slog.Logger
	opts     Options
	watchers *hub
	wake     chan struct{}
	metrics  counters // see metrics.go
	// rejected samples the audit records anyone can cause by clicking
	// (callback.rejected, vote.rejected of unlinked accounts); see
	// callbacks.go.
	rejected callbackSampler
	// witnessKinds are the outbox kinds every signed checkpoint is queued
	// under (Options.Witnesses; publish.go).
	witnessKinds []string
}

// New returns a Service. It does not start the expiry loop; call RunExpiry.
func New(store storage.Store, pol *policy.Policy, opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	opts.Logger = cmp.Or(opts.Logger, slog.Default())
	if opts.GroupsMaxAge <= 0 {
		opts.GroupsMaxAge = DefaultGroupsMaxAge
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = DefaultCheckpointEvery
	}
	if opts.NewID == nil {
		clk := opts.Clock
		opts.NewID = func() string { return NewRequestID(clk.Now()) }
	}
	if opts.ReplicaPoll <= 0 {
		opts.ReplicaPoll = DefaultReplicaPoll
	}
	return &Service{
		store:        store,
		policy:       pol,
		clock:        opts.Clock,
		log:          opts.Logger,
		opts:         opts,
		watchers:     newHub(),
		wake:         make(chan struct{}, 1),
		witnessKinds: opts.Witnesses.kinds(),
	}
}

// Policy returns the policy the service enforces.
func (s *Service) Policy() *policy.Policy { return s.policy }

// requestIDEncoding is base32 with the "extended hex" alphabet in lower
// case (0-9 then a-v): its byte order is the order of the encoded bits.
var requestIDEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// NewRequestID returns "req_" followed by 128 bits in order-preserving
// base32: the first 48 are the milliseconds since 1970 at now, the other 80
// are random. Ids made later sort later, so a store keyed by id appends
// instead of inserting at random places (its pages fill, see
// docs/performance.md); 80 random bits keep ids unguessable, and ids are
// never a credential (every read is authorized by who asks).
func NewRequestID(now time.Time) string {
	var b [16]byte
	ms := uint64(max(now.UnixMilli(), 0))
	binary.BigEndian.PutUint64(b[:8], ms<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	return "req_" + requestIDEncoding.EncodeToString(b[:])
}

// viewValue runs read in one read transaction of st and returns what it
// returned, or the store's error when the transaction could not start.
func viewValue[T any](ctx context.Context, st storage.Store, read func(storage.ReadTx) (T, error)) (T, error) {
	var v T
	err := st.View(ctx, func(tx storage.ReadTx) error {
		var err error
		v, err = read(tx)
		return err
	})
	return v, err
}

// Get returns the request with that id, or a refusal wrapping
// ErrUnknownRequest.
func (s *Service) Get(ctx context.Context, id string) (storage.Request, error) {
	r, err := viewValue(ctx, s.store, func(tx storage.ReadTx) (storage.Request, error) {
		return tx.Request(id)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Request{}, refusal(ErrUnknownRequest, ReasonUnknownRequest, "no request has id %q", id)
	}
	if err != nil {
		return storage.Request{}, fmt.Errorf("get request %s: %w", id, err)
	}
	return r, nil
}

// List returns requests matching f, newest first.
func (s *Service) List(ctx context.Context, f storage.RequestFilter) ([]storage.Request, error) {
	out, err := viewValue(ctx, s.store, func(tx storage.ReadTx) ([]storage.Request, error) {
		return tx.Requests(f)
	})
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	return out, nil
}

// Close appends a final signed checkpoint when a signing key is set, so the
// log's end is covered by a signature (a checkpoint right after another is
// harmless and verifies). Its publications to the witnesses commit with it;
// the delivery loops have stopped by then, so the next start delivers
// them. It does not close the store.
func (s *Service) Close(ctx context.Context) error {
	if s.opts.SigningKey == nil {
		return nil
	}
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		seq, hash, err := tx.AuditHead()
		if err != nil || seq == 0 {
			return err
		}
		return s.appendCheckpoint(tx, seq, hash)
	})
	if err != nil {
		return fmt.Errorf("write closing checkpoint: %w", err)
	}
	return nil
}

// update runs fn in a store transaction, retrying a lost compare-and-swap.
func (s *Service) update(ctx context.Context, fn func(tx storage.Tx) error) error {
	var err error
	for range maxCASRetries {
		err = s.store.Update(ctx, fn)
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
	return err
}

// appendAudit seals rec after the current head and appends it; with a
// signing key, every CheckpointEvery records a signed checkpoint follows.
func (s *Service) appendAudit(tx storage.Tx, rec audit.Record) error {
	seq, hash, err := tx.AuditHead()
	if err != nil {
		return fmt.Errorf("read audit head: %w", err)
	}
	if rec.Time == "" {
		rec.Time = audit.FormatTime(s.clock.Now())
	}
	sealed, line, err := audit.Seal(rec, seq, hash)
	if err != nil {
		return err
	}
	return s.appendSealed(tx, sealed, line)
}

// appendPrepared is appendAudit for a record canonicalized before the
// transaction (audit.Prepare), which keeps the serialized commit path
// short on hot paths.
func (s *Service) appendPrepared(tx storage.Tx, p *audit.Prepared) error {
	seq, hash, err := tx.AuditHead()
	if err != nil {
		return fmt.Errorf("read audit head: %w", err)
	}
	sealed, line, err := audit.SealPrepared(p, seq, hash)
	if err != nil {
		return err
	}
	return s.appendSealed(tx, sealed, line)
}

func (s *Service) appendSealed(tx storage.Tx, sealed audit.Record, line []byte) error {
	if len(line) > audit.MaxLineBytes {
		// A record the verifier would refuse would make the whole log
		// unverifiable; refuse the change instead.
		return fmt.Errorf("audit record %s would be %d bytes, over the %d-byte limit: %w", sealed.Type, len(line), audit.MaxLineBytes, ErrInvalid)
	}
	if err := tx.AppendAudit(sealed.Seq, sealed.Hash, line); err != nil {
		return fmt.Errorf("append audit record %d (%s): %w", sealed.Seq, sealed.Type, err)
	}
	if s.opts.SigningKey != nil && sealed.Seq%uint64(s.opts.CheckpointEvery) == 0 {
		return s.appendCheckpoint(tx, sealed.Seq, sealed.Hash)
	}
	return nil
}

func (s *Service) appendCheckpoint(tx storage.Tx, seq uint64, hash string) error {
	cp := audit.NewCheckpoint(s.opts.SigningKey, seq, hash)
	cp.Time = audit.FormatTime(s.clock.Now())
	sealed, line, err := audit.Seal(cp, seq, hash)
	if err != nil {
		return err
	}
	if err := tx.AppendAudit(sealed.Seq, sealed.Hash, line); err != nil {
		return fmt.Errorf("append checkpoint %d: %w", sealed.Seq, err)
	}
	return s.queuePublications(tx, sealed.Seq, line)
}
