package pgstore_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testpg"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/pgstore"
)

// exec runs SQL in the test schema behind dsn.
func exec(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	var wg sync.WaitGroup
	froms := make(chan int, 4)
	for range 4 {
		wg.Go(func() {
			from, to, err := pgstore.Migrate(t.Context(), dsn)
			if err != nil || to != pgstore.SchemaVersion() {
				t.Errorf("Migrate = %d, %d, %v; want to %d", from, to, err, pgstore.SchemaVersion())
			}
			froms <- from
		})
	}
	wg.Wait()
	close(froms)
	fresh := 0
	for from := range froms {
		if from == 0 {
			fresh++
		} else if from != pgstore.SchemaVersion() {
			t.Errorf("a concurrent Migrate started from version %d", from)
		}
	}
	if fresh != 1 {
		t.Errorf("%d of 4 concurrent Migrate calls found an empty schema, want exactly 1 (the others wait on the lock)", fresh)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	if _, _, err := pgstore.Migrate(t.Context(), dsn); err != nil {
		t.Fatal(err)
	}
	exec(t, dsn, `UPDATE signoff_schema SET version = $1`, pgstore.SchemaVersion()+1)

	for _, opts := range []pgstore.Options{{}, {ReadOnly: true}, {Retry: true}} {
		s, err := pgstore.Open(t.Context(), dsn, opts)
		if err == nil {
			s.Close()
			t.Fatalf("Open(%+v) of a database at a newer schema succeeded", opts)
		}
		if !errors.Is(err, pgstore.ErrSchemaNewer) || !strings.Contains(err.Error(), "a newer signoff migrated it") {
			t.Errorf("Open(%+v): %v; want ErrSchemaNewer saying what to do", opts, err)
		}
	}
	if _, _, err := pgstore.Migrate(t.Context(), dsn); !errors.Is(err, pgstore.ErrSchemaNewer) {
		t.Errorf("Migrate of a newer schema: %v, want ErrSchemaNewer", err)
	}
}

func TestReadOnlyNeedsAMigratedDatabase(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	if s, err := pgstore.Open(t.Context(), dsn, pgstore.Options{ReadOnly: true}); err == nil {
		s.Close()
		t.Fatal("a read-only Open of an empty schema succeeded")
	} else if !strings.Contains(err.Error(), "signoff migrate") {
		t.Errorf("read-only Open of an empty schema: %v; want advice naming signoff migrate", err)
	}
	if _, _, err := pgstore.Migrate(t.Context(), dsn); err != nil {
		t.Fatal(err)
	}
	s := open(t, dsn, pgstore.Options{ReadOnly: true})
	defer s.Close()
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping on a read-only store: %v", err)
	}
	if err := s.Update(t.Context(), func(storage.Tx) error { return nil }); err == nil {
		t.Error("Update on a read-only store succeeded")
	}
}

func TestReadOnlyRefusesAnOlderSchema(t *testing.T) {
	if pgstore.SchemaVersion() < 2 {
		t.Skip("one schema version so far: there is no older one to refuse")
	}
	dsn, _ := testpg.Schema(t)
	if _, err := pgstore.MigrateTo(t.Context(), dsn, pgstore.SchemaVersion()-1); err != nil {
		t.Fatal(err)
	}
	if s, err := pgstore.Open(t.Context(), dsn, pgstore.Options{ReadOnly: true}); err == nil {
		s.Close()
		t.Fatal("a read-only Open of an older schema succeeded")
	} else if !errors.Is(err, pgstore.ErrSchemaOlder) || !strings.Contains(err.Error(), "signoff migrate") {
		t.Errorf("read-only Open of an older schema: %v; want ErrSchemaOlder naming signoff migrate", err)
	}
}

func TestBadDSNDoesNotLeakThePassword(t *testing.T) {
	_, err := pgstore.Open(t.Context(), "postgres://signoff:hunter2-secret@127.0.0.1:1/x?sslmode=bogus", pgstore.Options{})
	if err == nil {
		t.Fatal("Open with an invalid sslmode succeeded")
	}
	if strings.Contains(err.Error(), "hunter2-secret") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestRetryUntilTheDatabaseAnswers opens a store on a loopback port nobody
// listens on, then puts a proxy to the test server there: the store is
// unavailable (and says so on Ping) until the database answers, then ready
// and migrated, without being reopened.
func TestRetryUntilTheDatabaseAnswers(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	real := net.JoinHostPort(cfg.Host, itoa(cfg.Port))

	// A free port: listen, note it, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	proxied := strings.Replace(dsn, real, net.JoinHostPort("127.0.0.1", itoa(uint16(port))), 1)

	if _, err := pgstore.Open(t.Context(), proxied, pgstore.Options{}); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Open without Retry of an unreachable database: %v, want ErrUnavailable", err)
	}
	s := open(t, proxied, pgstore.Options{Retry: true, Logger: testenv.DiscardLogger()})
	defer s.Close()
	if err := s.Ping(t.Context()); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Ping before the database answers: %v, want ErrUnavailable", err)
	}
	called := false
	if err := s.Update(t.Context(), func(storage.Tx) error { called = true; return nil }); !errors.Is(err, storage.ErrUnavailable) || called {
		t.Fatalf("Update before the database answers: %v (fn ran: %v), want ErrUnavailable without running fn", err, called)
	}

	l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(uint16(port))))
	if err != nil {
		t.Skipf("the free port was taken meanwhile: %v", err)
	}
	defer l.Close()
	go proxy(l, real)

	testenv.Eventually(t, "the store becomes ready", func() bool { return s.Ping(t.Context()) == nil })
	if err := s.Update(t.Context(), func(tx storage.Tx) error {
		return tx.CreateRequest(storage.Request{ID: "after-retry", Action: "deploy", State: storage.StatePending})
	}); err != nil {
		t.Fatalf("Update once ready: %v", err)
	}
}

func itoa(p uint16) string {
	return strconv.Itoa(int(p))
}

// proxy forwards every connection l accepts to addr.
func proxy(l net.Listener, addr string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer up.Close()
			go io.Copy(up, c)
			io.Copy(c, up)
		}()
	}
}
