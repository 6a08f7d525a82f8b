package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/internal/testpg"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/pgstore"
)

func createPending(t *testing.T, s storage.Store, ids ...string) {
	t.Helper()
	err := s.Update(t.Context(), func(tx storage.Tx) error {
		for _, id := range ids {
			if err := tx.CreateRequest(storage.Request{ID: id, Action: "deploy", State: storage.StatePending}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func approve(s storage.Store, id string) error {
	return s.Update(context.Background(), func(tx storage.Tx) error {
		r, err := tx.Request(id)
		if err != nil {
			return err
		}
		r.State = storage.StateApproved
		return tx.UpdateRequest(r)
	})
}

// TestChangeFeedAcrossStores: a request changed through one store is
// announced to a watcher on another store of the same database, after the
// commit; a change rolled back is not announced; another schema hears
// nothing.
func TestChangeFeedAcrossStores(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	a, b := open(t, dsn, pgstore.Options{}), open(t, dsn, pgstore.Options{})
	defer a.Close()
	defer b.Close()
	otherDSN, _ := testpg.Schema(t)
	other := open(t, otherDSN, pgstore.Options{})
	defer other.Close()
	createPending(t, b, "req-rolled-back", "req-1")
	createPending(t, other, "req-1")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	heard, otherHeard := make(chan string, 16), make(chan string, 16)
	go a.WatchRequests(ctx, func(id string) { heard <- id })
	go other.WatchRequests(ctx, func(id string) { otherHeard <- id })
	// The LISTEN is in place once a change made now is heard: probe until
	// one is, then forget the probes' notices.
	for i := 0; ; i++ {
		probe := fmt.Sprintf("probe-%d", i)
		createPending(t, b, probe)
		if err := approve(b, probe); err != nil {
			t.Fatal(err)
		}
		select {
		case <-heard:
		case <-time.After(100 * time.Millisecond):
			continue
		}
		break
	}

	refused := errors.New("changed my mind")
	err := b.Update(t.Context(), func(tx storage.Tx) error {
		r, err := tx.Request("req-rolled-back")
		if err != nil {
			return err
		}
		r.State = storage.StateDenied
		if err := tx.UpdateRequest(r); err != nil {
			return err
		}
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("Update: %v", err)
	}
	if err := approve(b, "req-1"); err != nil {
		t.Fatal(err)
	}
	for {
		var id string
		select {
		case id = <-heard:
		case <-time.After(30 * time.Second):
			t.Fatal("a change committed through one store was not announced to the other")
		}
		if strings.HasPrefix(id, "probe-") {
			continue // a late notice of a probe
		}
		if id != "req-1" {
			t.Errorf("first notice after the rollback names %q, want req-1 (a rolled-back change must not be announced)", id)
		}
		break
	}
	select {
	case id := <-otherHeard:
		t.Errorf("an installation in another schema heard %q", id)
	default:
	}
}

// TestLockAcrossStores: a named lock held through one store keeps another
// store waiting until it is released; other names do not wait.
func TestLockAcrossStores(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	a, b := open(t, dsn, pgstore.Options{}), open(t, dsn, pgstore.Options{})
	defer a.Close()
	defer b.Close()

	unlock, err := a.Lock(t.Context(), "link slack\x00T1\x00U1")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(short, "link slack\x00T1\x00U1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second Lock of a held name: %v, want to wait until its ctx ends", err)
	}
	unlockOther, err := b.Lock(t.Context(), "link slack\x00T1\x00U2")
	if err != nil {
		t.Fatalf("Lock of another name: %v", err)
	}
	unlockOther()

	got := make(chan func(), 1)
	go func() {
		u, err := b.Lock(t.Context(), "link slack\x00T1\x00U1")
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("the lock was taken while held")
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	unlock() // a second unlock is harmless
	select {
	case u := <-got:
		if u != nil {
			u()
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the lock was not handed over after unlock")
	}
}

// TestLockHoldersDoNotStarveCommits: with a pool of two connections, six
// named locks held at once and a listener running, a commit and a read
// still get a connection (locks and the listener have their own).
func TestLockHoldersDoNotStarveCommits(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	s := open(t, dsn+"&pool_max_conns=2", pgstore.Options{})
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go s.WatchRequests(ctx, func(string) {})
	for i := range 6 {
		unlock, err := s.Lock(t.Context(), fmt.Sprintf("card %d", i))
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
	}
	short, stop := context.WithTimeout(t.Context(), 20*time.Second)
	defer stop()
	createPending(t, s, "while-locked")
	if err := s.View(short, func(tx storage.ReadTx) error { _, err := tx.Request("while-locked"); return err }); err != nil {
		t.Fatalf("a read while locks are held: %v", err)
	}
}
