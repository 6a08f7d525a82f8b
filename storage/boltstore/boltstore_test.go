package boltstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
	"github.com/signoff-dev/signoff/storage/storagetest"
)

func open(t *testing.T, path string, opts boltstore.Options) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// openTemp opens a fresh store and closes it when the test ends.
func openTemp(t *testing.T, opts boltstore.Options) *boltstore.Store {
	t.Helper()
	s := open(t, filepath.Join(t.TempDir(), "signoff.db"), opts)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return open(t, filepath.Join(t.TempDir(), "signoff.db"), boltstore.Options{})
	})
}

// TestConformanceUnbatched runs the suite with group commit off, so that the
// one-caller path is proven on its own too.
func TestConformanceUnbatched(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return open(t, filepath.Join(t.TempDir(), "signoff.db"), boltstore.Options{MaxBatch: 1})
	})
}

func TestReopen(t *testing.T) {
	storagetest.RunReopen(t, func(t *testing.T, dir string) storage.Store {
		return open(t, filepath.Join(dir, "signoff.db"), boltstore.Options{})
	})
}

func TestOpenCreatesParentDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "signoff")
	path := filepath.Join(dir, "signoff.db")
	s := open(t, path, boltstore.Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700 | fs.ModeDir, path: 0o600} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode(); got&^0o077 != want || got&0o077 != 0 {
			t.Errorf("%s has mode %v, want %v", p, got, want)
		}
	}
}

func TestOpenLockedFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signoff.db")
	s := open(t, path, boltstore.Options{})
	defer s.Close()

	for _, readOnly := range []bool{false, true} {
		second, err := boltstore.Open(path, boltstore.Options{LockTimeout: 100 * time.Millisecond, ReadOnly: readOnly})
		if err == nil {
			second.Close()
			t.Fatalf("second Open (read-only %v) of a held file succeeded", readOnly)
		}
		if !errors.Is(err, storage.ErrLocked) {
			t.Errorf("second Open (read-only %v): err = %v, want storage.ErrLocked", readOnly, err)
		}
		if !errors.Is(err, bbolt.ErrTimeout) {
			t.Errorf("second Open: err = %v, want it to keep bbolt.ErrTimeout in the chain", err)
		}
		msg := err.Error()
		want := fmt.Sprintf("open store %s: database %s is locked by another signoff process; stop it, or point this command at another file", path, path)
		if msg != want {
			t.Errorf("second Open: message\n%s\nwant\n%s", msg, want)
		}
	}
	// The first store is unaffected.
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping of the first store: %v", err)
	}
}

func TestOpenGarbage(t *testing.T) {
	for name, content := range map[string][]byte{
		"text":  []byte("this is not a database\n"),
		"zeros": make([]byte, 16384),
		"noise": bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x01}, 8000),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "signoff.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := boltstore.Open(path, boltstore.Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open of a garbage file succeeded")
			}
			msg := err.Error()
			for _, want := range []string{"open store " + path + ":", "not a readable signoff database", "restore it from a backup", "bbolt check " + path} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if errors.Is(err, storage.ErrLocked) {
				t.Errorf("garbage file reported as locked: %v", err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
				t.Errorf("Open changed the garbage file")
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "signoff.db")

	_, err := boltstore.Open(path, boltstore.Options{ReadOnly: true})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("read-only Open of a missing file: err = %v, want one naming the file and wrapping fs.ErrNotExist", err)
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, fs.ErrNotExist) {
		t.Errorf("read-only Open created the file")
	}

	s := open(t, path, boltstore.Options{})
	if err := s.Update(t.Context(), func(tx storage.Tx) error {
		return tx.AppendAudit(1, "h1", []byte("r1"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Two readers share the file.
	r1 := open(t, path, boltstore.Options{ReadOnly: true})
	defer r1.Close()
	r2 := open(t, path, boltstore.Options{ReadOnly: true})
	defer r2.Close()
	for _, r := range []*boltstore.Store{r1, r2} {
		if err := r.View(t.Context(), func(tx storage.ReadTx) error {
			seq, _, err := tx.AuditHead()
			if seq != 1 {
				return fmt.Errorf("AuditHead = %d, want 1", seq)
			}
			return err
		}); err != nil {
			t.Error(err)
		}
	}
	err = r1.Update(t.Context(), func(tx storage.Tx) error { return tx.AppendAudit(2, "h2", nil) })
	if !errors.Is(err, bbolt.ErrDatabaseReadOnly) {
		t.Errorf("Update of a read-only store: err = %v, want bbolt.ErrDatabaseReadOnly", err)
	}

	// A bolt file that signoff never wrote is refused, not misread.
	other := filepath.Join(dir, "other.db")
	db, err := bbolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = boltstore.Open(other, boltstore.Options{ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "not a signoff database") {
		t.Errorf("read-only Open of a foreign bolt file: err = %v", err)
	}
}

// gate holds the committer inside one Update so that the test can queue
// others behind it and know, without timing, what the next batch holds.
type gate struct {
	started chan struct{}
	release chan struct{}
	done    chan error
}

func holdCommitter(t *testing.T, s *boltstore.Store) *gate {
	t.Helper()
	g := &gate{started: make(chan struct{}), release: make(chan struct{}), done: make(chan error, 1)}
	var once sync.Once
	go func() {
		g.done <- s.Update(context.Background(), func(storage.Tx) error {
			once.Do(func() { close(g.started) })
			<-g.release
			return nil
		})
	}()
	<-g.started
	return g
}

func (g *gate) open(t *testing.T) {
	t.Helper()
	close(g.release)
	if err := <-g.done; err != nil {
		t.Fatalf("gate Update: %v", err)
	}
}

// waitQueued waits until n Update calls wait for the committer. It polls,
// with a deadline that only guards against a hang.
func waitQueued(t *testing.T, s *boltstore.Store, n int) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for boltstore.Queued(s) < n {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("only %d of %d Update calls queued", boltstore.Queued(s), n)
		}
	}
}

func createAndLog(id string) func(storage.Tx) error {
	return func(tx storage.Tx) error {
		if err := tx.CreateRequest(storage.Request{ID: id, State: storage.StatePending}); err != nil {
			return err
		}
		seq, _, err := tx.AuditHead()
		if err != nil {
			return err
		}
		if err := tx.AppendAudit(seq+1, id, []byte(id)); err != nil {
			return err
		}
		_, err = tx.Enqueue(storage.OutboxEntry{RequestID: id, Kind: "slack.post"})
		return err
	}
}

func TestGroupCommitBatches(t *testing.T) {
	for _, tc := range []struct {
		maxBatch, callers int
		wantCommits       uint64
	}{
		{maxBatch: 0, callers: 64, wantCommits: 1},    // default 128: one batch
		{maxBatch: 8, callers: 20, wantCommits: 3},    // 8 + 8 + 4
		{maxBatch: 1, callers: 10, wantCommits: 10},   // batching off
		{maxBatch: 64, callers: 64, wantCommits: 1},   // exactly full
		{maxBatch: 63, callers: 64, wantCommits: 2},   // one left over
		{maxBatch: 200, callers: 150, wantCommits: 1}, // more than one default batch
	} {
		t.Run(fmt.Sprintf("maxBatch=%d,callers=%d", tc.maxBatch, tc.callers), func(t *testing.T) {
			s := openTemp(t, boltstore.Options{MaxBatch: tc.maxBatch})
			g := holdCommitter(t, s)
			before := boltstore.Commits(s)

			errs := make([]error, tc.callers)
			var wg sync.WaitGroup
			for i := range tc.callers {
				wg.Go(func() { errs[i] = s.Update(t.Context(), createAndLog(fmt.Sprintf("r%03d", i))) })
			}
			waitQueued(t, s, tc.callers)
			g.open(t)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("caller %d: %v", i, err)
				}
			}
			if got := boltstore.Commits(s) - before; got != tc.wantCommits {
				t.Errorf("%d concurrent Updates took %d commits, want %d", tc.callers, got, tc.wantCommits)
			}
			checkCreated(t, s, tc.callers)
		})
	}
}

// TestGroupCommitUnderLoad lets 64 goroutines update freely: however they
// interleave, the first Update's commit is in flight while the others queue,
// so fewer commits than callers must have run.
func TestGroupCommitUnderLoad(t *testing.T) {
	const callers = 64
	s := openTemp(t, boltstore.Options{})
	g := holdCommitter(t, s)
	before := boltstore.Commits(s)
	var wg sync.WaitGroup
	var failed atomic.Int32
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			if err := s.Update(t.Context(), createAndLog(fmt.Sprintf("r%03d", i))); err != nil {
				t.Error(err)
				failed.Add(1)
			}
		})
	}
	close(start)
	// At least one caller must be waiting behind the held commit before it
	// is released; the rest race freely with the committer.
	waitQueued(t, s, 2)
	g.open(t)
	wg.Wait()
	if got := boltstore.Commits(s) - before; got >= callers {
		t.Errorf("%d concurrent Updates took %d commits, want fewer", callers, got)
	} else {
		t.Logf("%d concurrent Updates took %d commits", callers, got)
	}
	checkCreated(t, s, callers)
}

// createInOrder commits the requests r000 … r(n-1), each with its audit
// record and outbox entry, one Update after the other.
func createInOrder(t *testing.T, s *boltstore.Store, n int) {
	t.Helper()
	for i := range n {
		if err := s.Update(t.Context(), createAndLog(fmt.Sprintf("r%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
}

// checkMissing fails the test with complaint if s holds request id.
func checkMissing(t *testing.T, s *boltstore.Store, id, complaint string) {
	t.Helper()
	err := s.View(t.Context(), func(tx storage.ReadTx) error {
		if _, err := tx.Request(id); !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("%s: %v", complaint, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkCreated(t *testing.T, s *boltstore.Store, n int) {
	t.Helper()
	err := s.View(t.Context(), func(tx storage.ReadTx) error {
		for i := range n {
			if _, err := tx.Request(fmt.Sprintf("r%03d", i)); err != nil {
				return err
			}
		}
		seq, _, err := tx.AuditHead()
		if err != nil {
			return err
		}
		if seq != uint64(n) {
			return fmt.Errorf("AuditHead = %d, want %d", seq, n)
		}
		due, err := tx.DueOutbox(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), "", 0)
		if err != nil {
			return err
		}
		if len(due) != n {
			return fmt.Errorf("%d outbox entries, want %d", len(due), n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGroupCommitFailingNeighbour queues callers in a known order behind a
// held commit, one of which fails: it must get its own error, every other
// caller success, and nothing of the failing one may land.
func TestGroupCommitFailingNeighbour(t *testing.T) {
	const callers, bad = 10, 5
	errBad := errors.New("bad caller")
	for _, mode := range []string{"error", "panic", "conflict"} {
		t.Run(mode, func(t *testing.T) {
			s := openTemp(t, boltstore.Options{})
			g := holdCommitter(t, s)
			before := boltstore.Commits(s)

			var runs [callers]atomic.Int32
			errs := make([]error, callers)
			var wg sync.WaitGroup
			for i := range callers {
				fn := createAndLog(fmt.Sprintf("r%03d", i))
				if i == bad {
					fn = func(tx storage.Tx) error {
						// Write all three kinds of record, then fail.
						if err := createAndLog("bad")(tx); err != nil {
							return err
						}
						switch mode {
						case "panic":
							panic("bad caller panics")
						case "conflict":
							// Taken by caller 0 in the same batch.
							return tx.CreateRequest(storage.Request{ID: "r000"})
						}
						return errBad
					}
				}
				wg.Go(func() {
					errs[i] = s.Update(t.Context(), func(tx storage.Tx) error {
						runs[i].Add(1)
						return fn(tx)
					})
				})
				// Queue one at a time so that the batch order is known.
				waitQueued(t, s, i+1)
			}
			g.open(t)
			wg.Wait()

			for i, err := range errs {
				switch {
				case i != bad && err != nil:
					t.Errorf("caller %d: %v, want success", i, err)
				case i == bad && mode == "error" && !errors.Is(err, errBad):
					t.Errorf("failing caller: err = %v, want its own error", err)
				case i == bad && mode == "panic" && (err == nil || !strings.Contains(err.Error(), "panicked: bad caller panics")):
					t.Errorf("panicking caller: err = %v, want the panic as an error", err)
				case i == bad && mode == "conflict" && !errors.Is(err, storage.ErrAlreadyExists):
					t.Errorf("conflicting caller: err = %v, want ErrAlreadyExists", err)
				}
			}
			// Callers before the failing one ran in the batch and again on
			// their own; it ran twice; those after it only on their own.
			for i := range callers {
				want := int32(1)
				if i <= bad {
					want = 2
				}
				if got := runs[i].Load(); got != want {
					t.Errorf("caller %d's fn ran %d times, want %d", i, got, want)
				}
			}
			if got := boltstore.Commits(s) - before; got != 1+callers {
				t.Errorf("%d transactions, want 1 failed batch + %d on their own", got, callers)
			}
			err := s.View(t.Context(), func(tx storage.ReadTx) error {
				if _, err := tx.Request("bad"); !errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("the failing caller's request: err = %v, want ErrNotFound", err)
				}
				for i := range callers {
					if _, err := tx.Request(fmt.Sprintf("r%03d", i)); err != nil && i != bad {
						return err
					}
				}
				seq, _, err := tx.AuditHead()
				if err != nil {
					return err
				}
				if seq != callers-1 {
					return fmt.Errorf("AuditHead = %d, want %d", seq, callers-1)
				}
				due, err := tx.DueOutbox(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), "", 0)
				if err != nil {
					return err
				}
				for _, e := range due {
					if e.RequestID == "bad" {
						return errors.New("the failing caller's outbox entry landed")
					}
				}
				if len(due) != callers-1 {
					return fmt.Errorf("%d outbox entries, want %d", len(due), callers-1)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestUpdateWaitsOnceQueued: cancelling ctx after the call is queued does
// not abandon it; the caller learns the real outcome.
func TestUpdateWaitsOnceQueued(t *testing.T) {
	s := openTemp(t, boltstore.Options{})
	g := holdCommitter(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Update(ctx, createAndLog("r000")) }()
	waitQueued(t, s, 1)
	cancel()
	g.open(t)
	if err := <-done; err != nil {
		t.Fatalf("Update cancelled after queueing: %v, want the commit's result (nil)", err)
	}
	checkCreated(t, s, 1)
}

func TestUpdateGoexit(t *testing.T) {
	s := openTemp(t, boltstore.Options{})
	g := holdCommitter(t, s)
	done := make(chan error, 2)
	go func() {
		done <- s.Update(t.Context(), func(tx storage.Tx) error {
			if err := createAndLog("gone")(tx); err != nil {
				return err
			}
			runtime.Goexit()
			return nil
		})
	}()
	waitQueued(t, s, 1)
	go func() { done <- s.Update(t.Context(), createAndLog("r000")) }()
	waitQueued(t, s, 2)
	g.open(t)
	var errs []error
	for range 2 {
		errs = append(errs, <-done)
	}
	var failures int
	for _, err := range errs {
		if err != nil {
			failures++
			if !strings.Contains(err.Error(), "Goexit") {
				t.Errorf("Goexit caller: err = %v", err)
			}
		}
	}
	if failures != 1 {
		t.Fatalf("results %v, want exactly the Goexit caller to fail", errs)
	}
	// The store keeps working.
	if err := s.Update(t.Context(), createAndLog("r001")); err != nil {
		t.Fatal(err)
	}
	err := s.View(t.Context(), func(tx storage.ReadTx) error {
		if _, err := tx.Request("gone"); !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("the Goexit caller's request: err = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCreated(t, s, 2)
}

// TestCloseFinishesQueuedWork: Close refuses new calls at once but commits
// every call queued before it.
func TestCloseFinishesQueuedWork(t *testing.T) {
	const callers = 10
	path := filepath.Join(t.TempDir(), "signoff.db")
	// One commit per call, so that the queued work takes several commits.
	s := open(t, path, boltstore.Options{MaxBatch: 1})
	g := holdCommitter(t, s)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { errs[i] = s.Update(t.Context(), createAndLog(fmt.Sprintf("r%03d", i))) })
	}
	waitQueued(t, s, callers)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !boltstore.Closing(s) {
		<-tick.C
	}
	if err := s.Update(t.Context(), createAndLog("late")); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Update while closing: err = %v, want ErrClosed", err)
	}
	g.open(t)
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d queued before Close: %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	s = open(t, path, boltstore.Options{})
	defer s.Close()
	checkCreated(t, s, callers)
}

// TestAuditRecordsShortTransactions: the walk reads in chunks of 1000, one
// read transaction each, and calls fn with no transaction open.
func TestAuditRecordsShortTransactions(t *testing.T) {
	const n = 2500
	s := openTemp(t, boltstore.Options{})
	err := s.Update(t.Context(), func(tx storage.Tx) error {
		for seq := uint64(1); seq <= n; seq++ {
			if err := tx.AppendAudit(seq, "h", fmt.Appendf(nil, "record %d", seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db := boltstore.DB(s)
	before := db.Stats()
	count := 0
	err = s.AuditRecords(t.Context(), 1, func(seq uint64, rec []byte) error {
		count++
		if open := db.Stats().OpenTxN; open != 0 {
			return fmt.Errorf("fn called with %d read transactions open", open)
		}
		if want := fmt.Sprintf("record %d", seq); string(rec) != want {
			return fmt.Errorf("record %d = %q", seq, rec)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("%d records, want %d", count, n)
	}
	if got := db.Stats().TxN - before.TxN; got != 3 {
		t.Errorf("walk of %d records took %d read transactions, want 3", n, got)
	}
}

func TestBackup(t *testing.T) {
	dir := t.TempDir()
	s := openTemp(t, boltstore.Options{})
	createInOrder(t, s, 3)
	f, err := os.Create(filepath.Join(dir, "backup.db"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Backup(t.Context(), f)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(f.Name()); err != nil || info.Size() != n {
		t.Errorf("Backup reported %d bytes; file: %v, %v", n, info.Size(), err)
	}
	// The original keeps working after the backup.
	if err := s.Update(t.Context(), createAndLog("r003")); err != nil {
		t.Fatal(err)
	}

	b := open(t, f.Name(), boltstore.Options{})
	defer b.Close()
	checkCreated(t, b, 3)
	checkMissing(t, b, "r003", "backup has a request written after it")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Backup(ctx, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Backup with a cancelled ctx: err = %v", err)
	}
}

func TestClosedStoreOperations(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "signoff.db"), boltstore.Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(t.Context(), &bytes.Buffer{}); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Backup after Close: err = %v, want ErrClosed", err)
	}
	if err := s.Update(t.Context(), createAndLog("x")); !errors.Is(err, storage.ErrClosed) || !strings.Contains(err.Error(), s.Path()) {
		t.Errorf("Update after Close: err = %v, want ErrClosed naming the file", err)
	}
}
