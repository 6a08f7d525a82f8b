// Package groupcommit turns many callers' Store.Update functions into few
// durable commits, the same way for every backend.
//
// One committer goroutine takes the first waiting call, then whatever else
// is already queued (without waiting for more, up to a batch size), and runs
// all their functions in a single transaction: one durable commit for the
// whole group. While a commit is in flight the next callers queue up, so the
// group grows with the load and a lone caller pays no delay. If any function
// of a group fails (returns an error or panics), or the commit fails, nothing
// of the group is kept and every function of the group is run again on its
// own, each in its own transaction, so that each caller gets exactly its own
// result. This is why an Update function may run more than once (see package
// storage).
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/internal/txfn"
)

// queueLen is how many calls may wait for the committer before further
// callers block on handing theirs over. It is independent of the batch size.
const queueLen = 1024

// RunFunc runs body in one read-write transaction of the backend and makes
// it durable if body returns nil. It returns body's error (nothing written)
// or the commit's. It may run body again itself (a backend retrying a
// transient failure), since the functions body runs may run more than once.
type RunFunc[T any] func(body func(tx T) error) error

// Committer queues Update calls and commits them in groups. Create it with
// New; it is safe for concurrent use.
type Committer[T any] struct {
	name     string
	maxBatch int
	run      RunFunc[T]

	// mu guards closing: Update holds it for reading while it hands a call
	// over, Close for writing while it closes calls, so that nobody ever
	// sends on a closed channel.
	mu       sync.RWMutex
	closed   atomic.Bool
	calls    chan *call[T]
	loopDone chan struct{}

	// commits counts the transactions the committer started.
	commits atomic.Uint64
	// running is the call whose function runs now; only the committer
	// goroutine touches it.
	running *call[T]
}

// call is one Update waiting for the committer.
type call[T any] struct {
	fn   func(T) error
	done chan error // buffered: the committer never blocks on a reply
	// answered is set by the committer once it has replied.
	answered bool
}

func (c *call[T]) answer(err error) {
	c.answered = true
	c.done <- err
}

// New starts a committer that runs groups of at most maxBatch calls (1
// disables grouping) through run; name says which store in errors.
func New[T any](name string, maxBatch int, run RunFunc[T]) *Committer[T] {
	c := &Committer[T]{
		name:     name,
		maxBatch: max(1, maxBatch),
		run:      run,
		calls:    make(chan *call[T], queueLen),
		loopDone: make(chan struct{}),
	}
	go c.loop(nil)
	return c
}

// Update hands fn to the committer and waits for its outcome. ctx is checked
// before the call is queued and while it waits to be queued; once queued,
// Update waits for the outcome, since the commit may land regardless. A
// panic in fn is returned as an error and nothing fn wrote is kept.
func (c *Committer[T]) Update(ctx context.Context, fn func(T) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("update %s: %w", c.name, err)
	}
	cl := &call[T]{fn: fn, done: make(chan error, 1)}
	c.mu.RLock()
	if c.closed.Load() {
		c.mu.RUnlock()
		return fmt.Errorf("update %s: %w", c.name, storage.ErrClosed)
	}
	select {
	case c.calls <- cl:
	case <-ctx.Done():
		c.mu.RUnlock()
		return fmt.Errorf("update %s: %w", c.name, ctx.Err())
	}
	c.mu.RUnlock()
	return <-cl.done
}

// Commits returns how many transactions the committer has started.
func (c *Committer[T]) Commits() uint64 { return c.commits.Load() }

// Queued returns how many calls wait for the committer.
func (c *Committer[T]) Queued() int { return len(c.calls) }

// Closed reports whether Close has begun.
func (c *Committer[T]) Closed() bool { return c.closed.Load() }

// Close stops accepting calls and waits until every call already queued has
// its outcome. Calls after Close fail with storage.ErrClosed.
func (c *Committer[T]) Close() {
	c.mu.Lock()
	if !c.closed.Swap(true) {
		close(c.calls)
	}
	c.mu.Unlock()
	<-c.loopDone
}

// loop is the single committer: it runs until Close closes calls and
// everything queued before has been committed. It first runs retry, calls
// left over by a previous loop, each on its own.
func (c *Committer[T]) loop(retry []*call[T]) {
	batch := retry
	clean := false
	defer func() {
		if clean {
			close(c.loopDone)
			return
		}
		// An update function called runtime.Goexit (t.FailNow in a
		// test, say). The backend has rolled its transaction back. Fail
		// that caller, run the rest of its batch again, and keep serving.
		var again []*call[T]
		for _, cl := range batch {
			switch {
			case cl.answered:
			case cl == c.running:
				cl.answer(fmt.Errorf("update %s: update function called runtime.Goexit; nothing was written", c.name))
			default:
				again = append(again, cl)
			}
		}
		c.running = nil
		go c.loop(again)
	}()

	for _, cl := range batch {
		cl.answer(c.runOne(cl))
	}
	for first := range c.calls {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < c.maxBatch {
			select {
			case cl, ok := <-c.calls:
				if !ok {
					break drain
				}
				batch = append(batch, cl)
			default:
				break drain
			}
		}
		c.runBatch(batch)
		clear(batch) // let the finished calls be collected
	}
	clean = true
}

// errBatchFailed aborts a group's transaction when one of its functions
// fails.
var errBatchFailed = errors.New("a function of the batch failed")

// runBatch commits batch in one transaction, or, if anything fails, runs
// each of its functions alone.
func (c *Committer[T]) runBatch(batch []*call[T]) {
	if len(batch) == 1 {
		batch[0].answer(c.runOne(batch[0]))
		return
	}
	c.commits.Add(1)
	err := c.run(func(tx T) error {
		for _, cl := range batch {
			c.running = cl
			if err := txfn.Call(cl.fn, tx); err != nil {
				return errBatchFailed
			}
		}
		return nil
	})
	c.running = nil
	if err == nil {
		for _, cl := range batch {
			cl.answer(nil)
		}
		return
	}
	// Either a function failed or the commit did: nothing of the group
	// landed. Give every caller the result of its own function alone.
	for _, cl := range batch {
		cl.answer(c.runOne(cl))
	}
}

// runOne runs one function in its own transaction.
func (c *Committer[T]) runOne(cl *call[T]) error {
	var fnErr error
	c.commits.Add(1)
	c.running = cl
	err := c.run(func(tx T) error {
		fnErr = txfn.Call(cl.fn, tx)
		return fnErr
	})
	c.running = nil
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("commit to %s: %w", c.name, err)
	}
	return nil
}
