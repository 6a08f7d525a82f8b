package pgstore_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testpg"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/pgstore"
	"github.com/signoff-dev/signoff/storage/storagetest"
)

// TestGroupCommitShares: callers waiting behind a commit in flight share
// the next transaction, each still gets its own result (one of them is
// refused and only it), and everything the others wrote is stored.
func TestGroupCommitShares(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	s := open(t, dsn, pgstore.Options{})
	defer s.Close()
	createPending(t, s, "taken")

	hold, holding := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = s.Update(t.Context(), func(storage.Tx) error {
			select {
			case <-holding:
			default:
				close(holding)
			}
			<-hold
			return nil
		})
	})
	<-holding
	before := pgstore.Commits(s)
	const callers = 20
	errs := make([]error, callers)
	for i := range callers {
		id := fmt.Sprintf("grouped-%02d", i)
		if i == 7 {
			id = "taken" // refused: the id exists
		}
		wg.Go(func() {
			errs[i] = s.Update(t.Context(), func(tx storage.Tx) error {
				return tx.CreateRequest(storage.Request{ID: id, Action: "deploy", State: storage.StatePending})
			})
		})
	}
	testenv.Eventually(t, "the callers to queue", func() bool { return pgstore.Queued(s) == callers })
	close(hold)
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 7) {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	// The grouped transaction failed because of caller 7, so each ran
	// again alone: 1 group + 20 alone. Without the refusal it would be 1.
	if got := pgstore.Commits(s) - before; got != 1+callers {
		t.Errorf("%d transactions for a refused group of %d, want %d (the group, then each alone)", got, callers, 1+callers)
	}
	err := s.View(t.Context(), func(tx storage.ReadTx) error {
		rs, err := tx.Requests(storage.RequestFilter{})
		if err == nil && len(rs) != callers {
			t.Errorf("%d requests stored, want %d (taken + 19 created)", len(rs), callers)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Without a refusal, a queued group is one transaction.
	hold, holding = make(chan struct{}), make(chan struct{})
	wg.Go(func() {
		_ = s.Update(t.Context(), func(storage.Tx) error { close(holding); <-hold; return nil })
	})
	<-holding
	before = pgstore.Commits(s)
	for i := range callers {
		wg.Go(func() {
			errs[i] = s.Update(t.Context(), func(tx storage.Tx) error {
				return tx.CreateRequest(storage.Request{ID: fmt.Sprintf("second-%02d", i), Action: "deploy", State: storage.StatePending})
			})
		})
	}
	testenv.Eventually(t, "the callers to queue", func() bool { return pgstore.Queued(s) == callers })
	close(hold)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if got := pgstore.Commits(s) - before; got != 1 {
		t.Errorf("%d transactions for a queued group of %d, want 1", got, callers)
	}
}

// TestConformanceUnbatched runs the suite with grouping off, so that the
// one-caller path is proven on its own too.
func TestConformanceUnbatched(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storagetest.Run(t, func(t *testing.T) storage.Store {
		dsn, _ := testpg.Schema(t)
		return open(t, dsn, pgstore.Options{MaxBatch: 1})
	})
}
