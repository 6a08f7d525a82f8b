package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.etcd.io/bbolt"

	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/internal/testpg"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
	"github.com/signoff-dev/signoff/storage/pgstore"
)

// onPostgres points a test config at dsn.
func onPostgres(dsn string) func(*config.Config) {
	return func(cfg *config.Config) {
		cfg.Storage.Driver = config.DriverPostgres
		cfg.Storage.DSN = config.Secret(dsn)
	}
}

// writeDSNFile writes dsn to a 0600 file, as an operator keeps it.
func writeDSNFile(t *testing.T, dsn string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(path, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeOnPostgres runs the whole request → vote → outcome path of a
// dev-mode server on PostgreSQL, then reads its audit log while it serves:
// export and verify work online on PostgreSQL, unlike on bbolt.
func TestServeOnPostgres(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	clearCIEnv(t)
	ts := startServeConfig(t, writeConfig(t, requestTestConfig), true, onPostgres(dsn))
	ts.logOnFailure(t)
	tok := devToken(t, ts)

	r, _, res := startWaiting(t, ts, tok, "--timeout", "60s")
	vote(t, ts, r.ID, storage.DecisionApprove)
	if got := <-res; got.code != 0 || !strings.Contains(got.stdout, "approved: request "+r.ID) {
		t.Fatalf("request --wait: exit %d\n%s\n%s", got.code, got.stdout, got.stderr)
	}

	dsnFile := writeDSNFile(t, dsn)
	code, out, errOut := runCmd(t, "audit", "verify", "--dsn-file", dsnFile)
	if code != 0 || !strings.Contains(out, "audit log intact") {
		t.Fatalf("audit verify --dsn-file while serving: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "audit", "export", "--dsn", dsn, "--request", r.ID)
	if code != 0 || !strings.Contains(out, `"request.approved"`) {
		t.Fatalf("audit export --dsn while serving: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(errOut, dsn) {
		t.Error("a command echoed the DSN")
	}
}

func TestMigrateCommand(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	cfgPath := writeConfig(t, strings.Replace(requestTestConfig,
		"storage: {driver: bolt, path: ./unused/signoff.db}",
		"storage: {driver: postgres, dsn_file: "+writeDSNFile(t, dsn)+"}", 1))
	code, out, errOut := runCmd(t, "migrate", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "migrated the schema from version 0 to") {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCmd(t, "migrate", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "already at version") {
		t.Fatalf("migrate again: exit %d\n%s", code, out)
	}

	// A database a newer signoff migrated: migrate and serve refuse it.
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `UPDATE signoff_schema SET version = $1`, pgstore.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd(t, "migrate", "--config", cfgPath)
	if code != exitFailure || !strings.Contains(errOut, "a newer signoff migrated it") {
		t.Errorf("migrate of a newer schema: exit %d\n%s", code, errOut)
	}
	code, errOut = runServeBriefly(t, "--dev", "--config", cfgPath)
	if code != exitFailure || !strings.Contains(errOut, "a newer signoff migrated it") {
		t.Errorf("serve on a newer schema: exit %d\n%s", code, errOut)
	}

	// bbolt has nothing to migrate.
	code, out, _ = runCmd(t, "migrate", "--config", writeConfig(t, requestTestConfig))
	if code != 0 || !strings.Contains(out, "nothing to migrate") {
		t.Errorf("migrate on bolt: exit %d\n%s", code, out)
	}
}

// TestStorageCopyBoltToPostgres moves an installation: a server on bbolt
// decides a request, stops, its file is copied into PostgreSQL, and a
// server on PostgreSQL serves the same request and the same audit chain. A
// copy into a database that is not empty, or from a file whose chain is
// broken, is refused before anything is written.
func TestStorageCopyBoltToPostgres(t *testing.T) {
	clearCIEnv(t)
	ts, db := startDevServerWithDB(t)
	tok := devToken(t, ts)
	if code, out, errOut := runCmd(t, requestArgs(ts, tok, "--idempotency-key", "moved")...); code != 0 {
		t.Fatalf("request: exit %d\n%s\n%s", code, out, errOut)
	}
	r := pendingRequest(t, ts.svc)
	vote(t, ts, r.ID, storage.DecisionApprove)
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	_, srcOut, _ := runCmd(t, "audit", "verify", "--db", db)

	dsn, _ := testpg.Schema(t)
	dsnFile := writeDSNFile(t, dsn)
	code, out, errOut := runCmd(t, "storage", "copy", "--from", "bolt:"+db, "--to", "postgres-file:"+dsnFile)
	if code != 0 || !strings.Contains(out, "copied 1 requests") {
		t.Fatalf("storage copy: exit %d\n%s\n%s", code, out, errOut)
	}
	_, dstOut, _ := runCmd(t, "audit", "verify", "--dsn-file", dsnFile)
	if dstOut == "" || dstOut != srcOut {
		t.Errorf("audit verify after the copy says\n%s\nbefore it said\n%s", dstOut, srcOut)
	}

	// A server on the copy knows the request, decided, under its key.
	ts2 := startServeConfig(t, writeConfig(t, requestTestConfig), true, onPostgres(dsn))
	got, err := ts2.svc.Get(t.Context(), r.ID)
	if err != nil || got.State != storage.StateApproved || got.IdempotencyScope != r.IdempotencyScope {
		t.Fatalf("the copied request: %+v, %v", got, err)
	}
	if err := ts2.stop(); err != nil {
		t.Fatal(err)
	}

	// The destination is not empty now: a second copy is refused.
	code, _, errOut = runCmd(t, "storage", "copy", "--from", "bolt:"+db, "--to", "postgres-file:"+dsnFile)
	if code != exitFailure || !strings.Contains(errOut, "not empty") {
		t.Errorf("copy into a non-empty database: exit %d\n%s", code, errOut)
	}

	// A source whose chain is broken is refused, and nothing is written.
	tamperFirstAuditRecord(t, db)
	empty, emptySchema := testpg.Schema(t)
	code, _, errOut = runCmd(t, "storage", "copy", "--from", "bolt:"+db, "--to", "postgres:"+empty)
	if code != exitFailure || !strings.Contains(errOut, "does not verify") {
		t.Errorf("copy of a broken chain: exit %d\n%s", code, errOut)
	}
	if strings.Contains(errOut, empty) {
		t.Error("the error shows the DSN")
	}
	// Not even signoff's tables: the source is verified before the
	// destination is opened (and migrated).
	conn, err := pgx.Connect(t.Context(), empty)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var tables int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, emptySchema).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("after a refused copy the destination schema holds %d tables, want none", tables)
	}
}

// TestStorageCopyUsageHidesDSN: a database named wrongly (a DSN without
// its postgres: prefix, a backend misspelt) is a usage error that does not
// repeat what was given, since that may hold a password.
func TestStorageCopyUsageHidesDSN(t *testing.T) {
	clearCIEnv(t)
	const secret = "hunter2secret"
	src := filepath.Join(t.TempDir(), "signoff.db")
	st, err := boltstore.Open(src, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	dst := "bolt:" + filepath.Join(t.TempDir(), "copy.db")
	for _, spec := range []string{
		"host=db user=signoff password=" + secret,
		"host=db password=" + secret + ":x",
		"postgresql://signoff:" + secret + "@db/signoff",
		"Postgres:postgres://signoff:" + secret + "@db/signoff",
	} {
		for _, args := range [][]string{{"--from", spec, "--to", dst}, {"--from", "bolt:" + src, "--to", spec}} {
			code, out, errOut := runCmd(t, append([]string{"storage", "copy"}, args...)...)
			if code != exitUsage || !strings.Contains(errOut, "name a database as") || strings.Contains(out+errOut, secret) {
				t.Errorf("%q: exit %d (want %d), and the password must not show:\n%s%s", args, code, exitUsage, out, errOut)
			}
		}
	}
}

// tamperFirstAuditRecord changes one byte of the first audit record in a
// bbolt file, as someone editing the file behind signoff's back would: it
// reads the record as signoff does (values are stored packed), changes it,
// and writes the changed line back in place, plain, which the store reads
// as it is.
func tamperFirstAuditRecord(t *testing.T, path string) {
	t.Helper()
	st, err := boltstore.Open(path, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var first []byte
	err = st.AuditRecords(context.Background(), 1, func(seq uint64, rec []byte) error {
		if seq == 1 {
			first = rec
		}
		return nil
	})
	st.Close()
	if err != nil || first == nil {
		t.Fatalf("read the first audit record: %v", err)
	}
	changed := bytes.Replace(first, []byte(`"deploy"`), []byte(`"deplox"`), 1)
	if bytes.Equal(changed, first) {
		t.Fatal("the first record does not name the deploy action")
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		k, _ := b.Cursor().First()
		if k == nil {
			return errors.New("no audit record")
		}
		return b.Put(k, changed)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLongPollWokenByAnotherReplica: a `signoff request --wait` on one
// replica returns when another replica decides. The waiting replica's
// periodic re-read is set to an hour, and the client re-asks only every
// 30 s (pollWait), so only the change feed (LISTEN / NOTIFY) can wake it
// within the 25 s the test allows.
func TestLongPollWokenByAnotherReplica(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	clearCIEnv(t)
	cfgPath := writeConfig(t, requestTestConfig)
	waiting := startServeWith(t, cfgPath, serveOptions{dev: true, replicaPoll: time.Hour}, onPostgres(dsn))
	deciding := startServeWith(t, cfgPath, serveOptions{dev: true, replicaPoll: time.Hour}, onPostgres(dsn))
	waiting.logOnFailure(t)
	tok := devToken(t, waiting)

	r, _, res := startWaiting(t, waiting, tok, "--timeout", "5m")
	vote(t, deciding, r.ID, storage.DecisionApprove)
	select {
	case got := <-res:
		if got.code != 0 || !strings.Contains(got.stdout, "approved: request "+r.ID) {
			t.Fatalf("request --wait: exit %d\n%s\n%s", got.code, got.stdout, got.stderr)
		}
	case <-time.After(pollWait - 5*time.Second):
		t.Fatal("a decision on another replica did not wake the long-poll")
	}
}

// TestStorageCopyRefusedLeavesNoBoltFile: a copy into a new bbolt file that
// is refused (here: the source's chain is broken) removes the file it
// created, so that the next run gives the same reason instead of "exists
// already", and nothing half made is left where a server could be pointed.
func TestStorageCopyRefusedLeavesNoBoltFile(t *testing.T) {
	clearCIEnv(t)
	ts, db := startDevServerWithDB(t)
	tok := devToken(t, ts)
	if code, out, errOut := runCmd(t, requestArgs(ts, tok)...); code != 0 {
		t.Fatalf("request: exit %d\n%s\n%s", code, out, errOut)
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	tamperFirstAuditRecord(t, db)
	dst := filepath.Join(t.TempDir(), "copy.db")
	for attempt := 1; attempt <= 2; attempt++ {
		code, _, errOut := runCmd(t, "storage", "copy", "--from", "bolt:"+db, "--to", "bolt:"+dst)
		if code != exitFailure || !strings.Contains(errOut, "does not verify") {
			t.Fatalf("copy %d of a broken chain: exit %d\n%s", attempt, code, errOut)
		}
		if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("after refused copy %d the destination file is there (%v)", attempt, err)
		}
	}
}
