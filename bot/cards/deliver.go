package cards

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/storage"
)

// Delivery tuning, the same for every platform.
const (
	// batch entries are claimed at a time and delivered one by one.
	batch = 5
	// lease is how long a claimed batch is ours. It exceeds batch × 2 ×
	// MaxCallTimeout (a post, and a delete when a race was lost), so a
	// claim cannot run out while its delivery is still in flight (which
	// could post a card twice).
	lease = 5 * time.Minute
	// MaxCallTimeout is the largest Config.CallTimeout.
	MaxCallTimeout = lease / (2 * batch)
	// forgetAfter: what the engine remembers about an entry (a blocker, a
	// delivery awaiting completion) is dropped when the entry has not come
	// back for this long; another replica has handled it.
	forgetAfter = 24 * time.Hour
	// BackoffBase doubles with every attempt up to BackoffMax.
	BackoffBase = 2 * time.Second
	BackoffMax  = 10 * time.Minute
	// waitForPost is how soon an update whose card is not posted yet is
	// tried again.
	waitForPost = 5 * time.Second
	// OrphanAfter: an update whose card was never posted posts the card
	// itself once it has waited this long.
	OrphanAfter = 15 * time.Minute
	// MinRateLimitWait is waited on a rate limit without a usable
	// Retry-After.
	MinRateLimitWait = time.Second
)

// Chat is what a Deliverer needs of a chat platform. A Deliverer calls it
// from one goroutine at a time, with a context bounded by
// Config.CallTimeout.
type Chat interface {
	// Post renders req as it stands and posts it to conversation target.
	// It returns where the card landed: Conversation (the platform may
	// name target differently), MessageID and, where the platform has
	// one, ServiceURL. The Deliverer sets Platform.
	Post(ctx context.Context, req storage.Request, target string) (storage.Card, error)
	// Update renders req as it stands onto its card.
	Update(ctx context.Context, req storage.Request, card storage.Card) error
	// Delete removes a card: one this replica posted after another had
	// posted the same card.
	Delete(ctx context.Context, card storage.Card) error
	// Reply posts text (plain; the adapter escapes it) in the thread of
	// card: a reminder (remind.go).
	Reply(ctx context.Context, card storage.Card, text string) error
	// Notify sends a notice privately to one chat account (a Slack
	// direct message, a Teams message in the conversation it names).
	Notify(ctx context.Context, n approvals.AccountNotice) error
	// Publish posts a signed checkpoint of the audit log to conversation
	// target, a witness (audit.publish): a message that shows record, the
	// checkpoint record line exactly as the log holds it (printable
	// ASCII), verbatim in a code block, escaped so that nothing in it is
	// read as markup. seq is the checkpoint's seq.
	Publish(ctx context.Context, target string, seq uint64, record string) error
	// Classify says what an error of Post, Update, Reply, Notify or
	// Publish means. conversation is where the card, notice or checkpoint was to
	// go.
	Classify(err error, conversation string) Failure
}

// FailureKind is what a failed Post or Update calls for.
type FailureKind int

// The kinds of failure.
const (
	// Retry: an ordinary failure (a platform error, a timeout). The entry
	// is retried after Backoff, or after Failure.Wait when that is longer.
	Retry FailureKind = iota
	// RateLimited: the platform asked to slow down. The entry, and the
	// rest of the batch with it, waits Failure.Wait (at least
	// MinRateLimitWait).
	RateLimited
	// Gone: the card no longer exists on the platform (deleted, or too old
	// to edit). An update of it is completed and logged, not retried; a
	// post classified Gone is retried like Retry.
	Gone
	// Unreachable: the platform was not called because the adapter does
	// not know how to reach the conversation yet (configuration is
	// missing). The entry is retried after Backoff and the failure logged
	// as an error.
	Unreachable
)

// Failure is the verdict on a failed Post or Update.
type Failure struct {
	Kind FailureKind
	// Wait is the delay the platform asked for (its Retry-After), or 0.
	Wait time.Duration
	// Err is what is recorded on the entry and logged: the call's error,
	// with a hint at the fix where the adapter knows one. Nil means the
	// call's error as it is.
	Err error
	// Severe marks a failure only an operator can end (wrong credentials,
	// a conversation the app is not in): it is logged as an error, not a
	// warning.
	Severe bool
}

// Config configures a Deliverer. Service, Platform and CallTimeout are
// required.
type Config struct {
	// Service claims, reschedules and completes the outbox entries and
	// reads the requests.
	Service *approvals.Service
	// Platform is the adapter's name ("slack"): its entries are those of
	// kind approvals.KindNotifyPrefix + Platform, its cards are stored
	// with this Platform, and log messages start with it.
	Platform string
	// Display is the platform's name in log messages about its cards
	// ("Slack"); default Platform.
	Display string
	// API names what the adapter calls, in the error recorded while a rate
	// limit is waited out ("Slack", "the Bot Connector"); default Display.
	API string
	// ConversationAttr is the log attribute that names a conversation
	// ("channel"); default "conversation".
	ConversationAttr string
	// CallTimeout bounds one Chat call; at most MaxCallTimeout.
	CallTimeout time.Duration
	// PollInterval is how often Run looks for work when idle; default
	// one second.
	PollInterval time.Duration
	// Clock drives leases, backoff and polling; default the wall clock.
	Clock clock.Clock
	// Logger receives the delivery logs; default slog.Default().
	Logger *slog.Logger
}

// Deliverer delivers one platform's cards from the outbox, as the package
// doc describes. It is safe for concurrent use; deliveries run one batch
// at a time.
type Deliverer struct {
	chat Chat
	cfg  Config
	kind string
	// noticeKind is the platform's notice entries ("notice.slack").
	noticeKind string
	// publishKind starts the kinds of the platform's witnesses
	// ("publish.slack(").
	publishKind string
	svc         *approvals.Service
	clock       clock.Clock
	log         *slog.Logger

	// mu serializes DeliverOnce: entries of one request and conversation
	// are delivered one at a time, in order.
	mu sync.Mutex
	// blocked holds, per request and conversation, the oldest entry that
	// could not be delivered yet and when it is due again; younger entries
	// for the same card wait behind it, so no update overtakes the post or
	// an earlier update.
	blocked map[string]blocker
	// delivered remembers entries whose platform call succeeded but whose
	// completion did not commit, so the next attempt completes them
	// without calling the platform again (no second post or update).
	delivered map[uint64]delivery
	// updated holds the card updates of the batch being delivered that
	// the platform took; deliverCards completes them together at the end
	// of the batch (one commit instead of one each).
	updated []completion
}

// completion is a delivered entry waiting to be completed.
type completion struct {
	e   storage.OutboxEntry
	key string
}

type blocker struct {
	id    uint64
	until time.Time
}

type delivery struct {
	post bool
	card storage.Card
	at   time.Time
}

// NewDeliverer returns a Deliverer of cfg.Platform's cards through chat. It
// panics when cfg lacks Service, Platform or a CallTimeout in (0,
// MaxCallTimeout]: those are the adapter's constants, not configuration.
func NewDeliverer(chat Chat, cfg Config) *Deliverer {
	if chat == nil || cfg.Service == nil || cfg.Platform == "" {
		panic("cards: NewDeliverer needs a Chat, a Service and a Platform")
	}
	if cfg.CallTimeout <= 0 || cfg.CallTimeout > MaxCallTimeout {
		panic(fmt.Sprintf("cards: CallTimeout %s is not in (0, %s]", cfg.CallTimeout, MaxCallTimeout))
	}
	if cfg.Display == "" {
		cfg.Display = cfg.Platform
	}
	if cfg.API == "" {
		cfg.API = cfg.Display
	}
	if cfg.ConversationAttr == "" {
		cfg.ConversationAttr = "conversation"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Deliverer{
		chat:        chat,
		cfg:         cfg,
		kind:        approvals.KindNotifyPrefix + cfg.Platform,
		noticeKind:  approvals.KindNoticePrefix + cfg.Platform,
		publishKind: approvals.PublishKindPrefix(cfg.Platform),
		svc:         cfg.Service,
		clock:       cfg.Clock,
		log:         cfg.Logger,
		blocked:     map[string]blocker{},
		delivered:   map[uint64]delivery{},
	}
}

// Run delivers until ctx ends: it claims due entries, posts or updates the
// cards, and sleeps PollInterval (on the configured clock) when there is
// nothing to do. Errors are logged and retried; it returns ctx's error.
func (d *Deliverer) Run(ctx context.Context) error {
	for {
		n, err := d.DeliverOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			d.log.Error(d.cfg.Platform+" outbox pass failed; retrying", "err", err)
		}
		if n == batch && err == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.clock.After(d.cfg.PollInterval):
		}
	}
}

// DeliverOnce claims up to one batch of due card entries and delivers them
// in order, rescheduling those that fail, then one batch of due notices to
// chat accounts, then one batch of signed checkpoints for the witnesses
// (publish.go), then one batch of due reminders (remind.go). It returns the largest of the batches it claimed; an error
// only when nothing could be claimed or ctx ended (the entries not reached
// stay claimed until their lease ends).
func (d *Deliverer) DeliverOnce(ctx context.Context) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.prune(d.clock.Now())
	n, err := d.deliverCards(ctx)
	if ctx.Err() != nil {
		return n, err
	}
	m, nerr := d.deliverNotices(ctx)
	if ctx.Err() != nil {
		return max(n, m), errors.Join(err, nerr)
	}
	p, perr := d.deliverPublications(ctx)
	if ctx.Err() != nil {
		return max(n, m, p), errors.Join(err, nerr, perr)
	}
	q, rerr := d.deliverReminders(ctx)
	return max(n, m, p, q), errors.Join(err, nerr, perr, rerr)
}

// deliverCards claims up to one batch of due card entries and delivers
// them in order.
func (d *Deliverer) deliverCards(ctx context.Context) (int, error) {
	entries, err := d.svc.Claim(ctx, d.kind, batch, lease)
	if err != nil {
		return 0, err
	}
	defer d.completeUpdated(ctx)
	return d.inOrder(ctx, entries, entryKey, func(e storage.OutboxEntry, pauseUntil *time.Time) {
		if err := d.deliver(ctx, e, pauseUntil); err != nil {
			d.log.Error(d.cfg.Platform+" outbox entry failed", "entry", e.ID, "request", e.RequestID, "err", err)
		}
	})
}

// completeUpdated completes the batch's delivered card updates in one
// transaction and settles each. Until then they stay in d.delivered, so
// an entry whose completion fails is completed at its next attempt without
// updating the card again; and the deliverer renders a card from the
// request as it is when it sends, so an update delivered again after a
// crash never shows an older state than one sent since.
func (d *Deliverer) completeUpdated(ctx context.Context) {
	if len(d.updated) == 0 {
		return
	}
	batch := d.updated
	d.updated = nil
	ids := make([]uint64, len(batch))
	for i, c := range batch {
		ids[i] = c.e.ID
	}
	// Shutdown may have ended ctx: the platform has these updates, so
	// completing them is still worth a bounded moment.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.CallTimeout)
	defer cancel()
	results, err := d.svc.CompleteAll(cctx, ids)
	for i, c := range batch {
		cerr := err
		if err == nil {
			cerr = results[i]
		}
		if serr := d.settle(cctx, c.e, c.key, cerr); serr != nil {
			d.log.Error(d.cfg.Platform+" outbox entry failed", "entry", c.e.ID, "request", c.e.RequestID, "err", serr)
		}
	}
}

// inOrder hands the claimed entries, in order, to deliver, which sets
// *pauseUntil when the platform rate-limits it: the rest of the batch is
// then rescheduled to that time rather than tried, each holding back the
// entries behind it under key(e) ("" holds back none). When ctx ends, the remaining entries stay claimed until
// their lease ends. It returns how many entries were claimed.
func (d *Deliverer) inOrder(ctx context.Context, entries []storage.OutboxEntry, key func(storage.OutboxEntry) string, deliver func(e storage.OutboxEntry, pauseUntil *time.Time)) (int, error) {
	var pauseUntil time.Time
	for _, e := range entries {
		if ctx.Err() != nil {
			return len(entries), ctx.Err()
		}
		if d.clock.Now().Before(pauseUntil) {
			d.reschedule(ctx, e, key(e), pauseUntil, fmt.Errorf("waiting out %s's rate limit", d.cfg.API))
			continue
		}
		deliver(e, &pauseUntil)
	}
	return len(entries), nil
}

// deliver delivers one claimed entry or reschedules it.
func (d *Deliverer) deliver(ctx context.Context, e storage.OutboxEntry, pauseUntil *time.Time) error {
	n, ok := notification(e)
	if !ok {
		// Not something any attempt could deliver: our own queue holds it.
		d.log.Error(d.cfg.Platform+" outbox entry has an unreadable payload; removing it", "entry", e.ID, "request", e.RequestID)
		return d.complete(ctx, e, "")
	}
	key := cardKey(e.RequestID, n.Target)
	now := d.clock.Now()

	if bl, ok := d.blocked[key]; ok && bl.id != e.ID {
		switch {
		case bl.id > e.ID:
			// A younger entry is waiting (e.g. for this post): go first.
		case now.After(bl.until.Add(lease)):
			// The blocker was not seen again here: another replica
			// delivered it, or it is gone.
			delete(d.blocked, key)
		default:
			d.reschedule(ctx, e, key, maxTime(bl.until, now), fmt.Errorf("waiting for outbox entry %d of the same card", bl.id))
			return nil
		}
	}

	// Replicas sharing the store take turns on a card, so that an update
	// rendered from an older state never lands after a newer one.
	unlock, err := d.svc.LockCard(ctx, d.cfg.Platform, e.RequestID, n.Target)
	if err != nil {
		d.reschedule(ctx, e, key, now.Add(Backoff(e.Attempts)), err)
		return err
	}
	defer unlock()

	if dl, ok := d.delivered[e.ID]; ok {
		// The platform already has it; only the completion is missing.
		return d.finish(ctx, e, key, n.Target, dl)
	}

	r, err := d.svc.Get(ctx, e.RequestID)
	if err != nil {
		if errors.Is(err, approvals.ErrUnknownRequest) {
			d.log.Error(d.cfg.Platform+" outbox entry names an unknown request; removing it", "entry", e.ID, "request", e.RequestID)
			return d.complete(ctx, e, key)
		}
		d.reschedule(ctx, e, key, now.Add(Backoff(e.Attempts)), err)
		return err
	}
	card, hasCard := Find(r, d.cfg.Platform, n.Target)

	if n.Event == approvals.EventEscalated && !hasCard && r.State != storage.StatePending &&
		!d.svc.EscalationDue(r.Action, r.CreatedAt, r.DecidedAt) {
		// Decided before it was due to be escalated: nothing to post.
		return d.complete(ctx, e, key)
	}
	post := n.Event == approvals.EventCreated || n.Event == approvals.EventEscalated
	if !post && !hasCard {
		if now.Sub(e.CreatedAt) < OrphanAfter {
			d.reschedule(ctx, e, key, now.Add(waitForPost), errors.New("the card is not posted yet"))
			return nil
		}
		post = true // the card was never posted: post it now
	}
	if post && hasCard {
		// Posted already (a race with another replica, or an update that
		// posted an orphaned card): nothing left to do.
		return d.complete(ctx, e, key)
	}

	callCtx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	var dl delivery
	if post {
		posted, err := d.chat.Post(callCtx, r, n.Target)
		if err != nil {
			return d.failed(ctx, e, key, n.Target, true, err, pauseUntil)
		}
		posted.Platform = d.cfg.Platform
		dl = delivery{post: true, card: posted, at: now}
	} else {
		if err := d.chat.Update(callCtx, r, card); err != nil {
			return d.failed(ctx, e, key, card.Conversation, false, err, pauseUntil)
		}
		dl = delivery{card: card, at: now}
	}
	d.delivered[e.ID] = dl
	return d.finish(ctx, e, key, n.Target, dl)
}

// finish completes a delivered entry: a post at once, storing its card in
// the same transaction; an update with the rest of its batch
// (completeUpdated).
func (d *Deliverer) finish(ctx context.Context, e storage.OutboxEntry, key, target string, dl delivery) error {
	if !dl.post {
		d.updated = append(d.updated, completion{e: e, key: key})
		return nil
	}
	duplicate, err := d.svc.RecordCardPosted(ctx, e.ID, e.RequestID, target, dl.card)
	err = d.settle(ctx, e, key, err)
	if err == nil && duplicate {
		// Someone else posted this card first: take ours back.
		callCtx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
		defer cancel()
		if derr := d.chat.Delete(callCtx, dl.card); derr != nil {
			d.log.Warn("could not delete a duplicate "+d.cfg.Display+" card", "request", e.RequestID, d.cfg.ConversationAttr, dl.card.Conversation, "err", derr)
		}
	}
	return err
}

// complete removes a handled entry and settles it.
func (d *Deliverer) complete(ctx context.Context, e storage.OutboxEntry, key string) error {
	return d.settle(ctx, e, key, d.svc.Complete(ctx, e.ID))
}

// settle acts on err, what completing e returned (Complete, or
// RecordCardPosted for a post): on success it forgets what was remembered
// about e; on failure it releases e for a prompt retry, which will complete
// it without calling the platform again.
func (d *Deliverer) settle(ctx context.Context, e storage.OutboxEntry, key string, err error) error {
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		d.reschedule(ctx, e, key, d.clock.Now().Add(BackoffBase), err)
		return err
	}
	// ErrNotFound: another worker completed it after our lease ran out.
	delete(d.delivered, e.ID)
	if bl, ok := d.blocked[key]; ok && bl.id == e.ID {
		delete(d.blocked, key)
	}
	return nil
}

// failed handles a failed Post or Update as the Chat classifies it: it
// gives up on the update of a card that is gone, else reschedules the
// entry (after a rate limit's wait, pausing the rest of the batch too, or
// with backoff).
func (d *Deliverer) failed(ctx context.Context, e storage.OutboxEntry, key, conversation string, post bool, err error, pauseUntil *time.Time) error {
	f := d.chat.Classify(err, conversation)
	if f.Err == nil {
		f.Err = err
	}
	if f.Kind == Gone && !post {
		d.log.Error("the "+d.cfg.Display+" card of a request cannot be updated any more (deleted?); giving up on this update",
			"request", e.RequestID, d.cfg.ConversationAttr, conversation, "err", f.Err)
		return d.complete(ctx, e, key)
	}
	now := d.clock.Now()
	next := now.Add(Backoff(e.Attempts))
	level, msg := d.log.Warn, d.cfg.Platform+" card delivery failed; will retry"
	switch f.Kind {
	case RateLimited:
		next = now.Add(max(f.Wait, MinRateLimitWait))
		*pauseUntil = next
	case Unreachable:
		level, msg = d.log.Error, d.cfg.Platform+" card cannot be delivered yet; will retry"
	default:
		next = maxTime(next, now.Add(f.Wait))
	}
	if f.Severe {
		level = d.log.Error
	}
	d.reschedule(ctx, e, key, next, f.Err)
	level(msg, "entry", e.ID, "request", e.RequestID, d.cfg.ConversationAttr, conversation, "attempt", e.Attempts, "retry_at", next, "err", f.Err)
	return nil
}

// reschedule releases a claimed entry for another attempt at next and,
// when key is set, makes younger entries of the same card wait behind it.
func (d *Deliverer) reschedule(ctx context.Context, e storage.OutboxEntry, key string, next time.Time, cause error) {
	if key != "" {
		if bl, ok := d.blocked[key]; !ok || bl.id >= e.ID {
			d.blocked[key] = blocker{id: e.ID, until: next}
		}
	}
	if err := d.svc.Retry(context.WithoutCancel(ctx), e.ID, next, cause); err != nil {
		// The lease runs out on its own; the entry is retried then.
		d.log.Error("could not reschedule a "+d.cfg.Platform+" outbox entry", "entry", e.ID, "err", err)
	}
}

// prune forgets what no longer matters: blockers long past due and
// deliveries whose entries never came back.
func (d *Deliverer) prune(now time.Time) {
	for k, bl := range d.blocked {
		if now.Sub(bl.until) > forgetAfter {
			delete(d.blocked, k)
		}
	}
	for id, dl := range d.delivered {
		if now.Sub(dl.at) > forgetAfter {
			delete(d.delivered, id)
		}
	}
}

// notification reads an entry's payload; false when it is unreadable or
// names no conversation.
func notification(e storage.OutboxEntry) (approvals.Notification, bool) {
	var n approvals.Notification
	if json.Unmarshal(e.Payload, &n) != nil || n.Target == "" {
		return approvals.Notification{}, false
	}
	return n, true
}

// entryKey names the card an entry is for (request and conversation); ""
// when the payload is unreadable.
func entryKey(e storage.OutboxEntry) string {
	n, ok := notification(e)
	if !ok {
		return ""
	}
	return cardKey(e.RequestID, n.Target)
}

func cardKey(requestID, conversation string) string {
	return requestID + "\x00" + conversation
}

// Backoff is the wait after the given attempt: BackoffBase doubling, at
// most BackoffMax.
func Backoff(attempts int) time.Duration {
	b := BackoffBase
	for i := 1; i < attempts && b < BackoffMax; i++ {
		b *= 2
	}
	return min(b, BackoffMax)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
