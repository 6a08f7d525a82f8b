package pgstore

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/signoff-dev/signoff/internal/testpg"
)

// twoVersions is a schema history of two steps: the first creates a table
// with a row, the second reshapes the row's table, as a later signoff's
// migration would.
var twoVersions = fstest.MapFS{
	"migrations/0001_first.sql": {Data: []byte(`
		CREATE TABLE signoff_schema (singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), version integer NOT NULL);
		CREATE TABLE things (id text PRIMARY KEY, size integer NOT NULL);
		INSERT INTO things VALUES ('kept', 3);`)},
	"migrations/0002_second.sql": {Data: []byte(`
		ALTER TABLE things ADD COLUMN doubled integer;
		UPDATE things SET doubled = 2 * size;
		ALTER TABLE things ALTER COLUMN doubled SET NOT NULL;`)},
}

// connectSchema connects to a fresh test schema.
func connectSchema(t *testing.T) *pgx.Conn {
	t.Helper()
	dsn, _ := testpg.Schema(t)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestMigrateFromThePreviousVersion upgrades a database an older signoff
// left at version 1 to version 2: the data survives and is reshaped, the
// version is recorded, and a second run applies nothing.
func TestMigrateFromThePreviousVersion(t *testing.T) {
	ms, err := loadMigrations(twoVersions)
	if err != nil {
		t.Fatal(err)
	}
	conn := connectSchema(t)

	if from, err := migrate(t.Context(), conn, "test", ms, 1); err != nil || from != 0 {
		t.Fatalf("migrate to version 1: from %d, %v", from, err)
	}
	if from, err := migrate(t.Context(), conn, "test", ms, 2); err != nil || from != 1 {
		t.Fatalf("migrate from version 1 to 2: from %d, %v", from, err)
	}
	var doubled int
	if err := conn.QueryRow(t.Context(), `SELECT doubled FROM things WHERE id = 'kept'`).Scan(&doubled); err != nil || doubled != 6 {
		t.Fatalf("the row after the upgrade: doubled = %d, %v; want 6", doubled, err)
	}
	if v, err := schemaVersion(t.Context(), conn, "test"); err != nil || v != 2 {
		t.Fatalf("schema version after the upgrade: %d, %v", v, err)
	}
	if from, err := migrate(t.Context(), conn, "test", ms, 2); err != nil || from != 2 {
		t.Fatalf("migrate again: from %d, %v; want nothing to do", from, err)
	}
	// The older build (one migration) refuses what the newer one made.
	if _, err := migrate(t.Context(), conn, "test", ms[:1], 1); err == nil || !strings.Contains(err.Error(), "newer signoff") {
		t.Fatalf("the older build on the newer schema: %v, want a refusal", err)
	}
}

// TestMigrationFailureAppliesNothingOfItsStep: a step that fails leaves the
// database at the version before it, with nothing of the step applied.
func TestMigrationFailureAppliesNothingOfItsStep(t *testing.T) {
	broken := fstest.MapFS{
		"migrations/0001_first.sql": twoVersions["migrations/0001_first.sql"],
		"migrations/0002_broken.sql": {Data: []byte(`
			ALTER TABLE things ADD COLUMN extra integer;
			SELECT no_such_function();`)},
	}
	ms, err := loadMigrations(broken)
	if err != nil {
		t.Fatal(err)
	}
	conn := connectSchema(t)
	if _, err := migrate(t.Context(), conn, "test", ms, 2); err == nil || !strings.Contains(err.Error(), "0002_broken.sql") {
		t.Fatalf("a failing step: %v, want an error naming it", err)
	}
	if v, _ := schemaVersion(t.Context(), conn, "test"); v != 1 {
		t.Errorf("version after a failed step: %d, want 1", v)
	}
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'things' AND column_name = 'extra'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the failed step's column exists (%d, %v)", n, err)
	}
}

func TestMigrationNamesMustBeNumberedWithoutGaps(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"gap":      {"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}},
		"unnamed":  {"migrations/first.sql": {}},
		"none":     {},
		"not zero": {"migrations/0000_a.sql": {}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: loadMigrations accepted %v", name, fsys)
		}
	}
	if _, err := loadMigrations(migrationFS); err != nil {
		t.Errorf("the embedded migrations: %v", err)
	}
}
