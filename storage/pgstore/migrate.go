package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// migrationFS holds the schema migrations, one file each, named
// NNNN_what.sql and numbered from 0001 without gaps. A released migration is
// never edited: a change to the schema is a new file.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one step of the schema: Version is the schema version it
// produces.
type migration struct {
	Version int
	Name    string
	SQL     string
}

// migrations are the steps in order; migrations[i].Version == i+1.
var migrations = mustLoadMigrations(migrationFS)

// SchemaVersion is the schema version this build migrates a database to
// and expects to find.
func SchemaVersion() int { return len(migrations) }

// ErrSchemaNewer means the database was migrated by a newer signoff than
// this one: this build must not write to it.
var ErrSchemaNewer = errors.New("database schema is newer than this signoff")

// ErrSchemaOlder means a read-only open found a database that is not yet
// migrated to this build's schema.
var ErrSchemaOlder = errors.New("database schema is older than this signoff")

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic(err)
	}
	return ms
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for i, name := range names { // fs.Glob returns names sorted
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("migration %s: want the name %04d_<what>.sql", name, i+1)
		}
		sql, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{Version: v, Name: base, SQL: string(sql)})
	}
	if len(ms) == 0 {
		return nil, errors.New("no schema migrations embedded")
	}
	return ms, nil
}

// Migrate brings the database named by dsn to this build's schema version
// and returns the versions before and after. It is what `signoff migrate`
// runs; Open does the same on its own. Several processes may call it at once:
// they take turns on an advisory lock, and only the first applies anything.
func Migrate(ctx context.Context, dsn string) (from, to int, err error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", dsnError(err))
	}
	desc := fmt.Sprintf("PostgreSQL %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, 0, &unreachableError{desc: desc, err: err}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	from, err = migrate(ctx, conn, desc, migrations, len(migrations))
	if err != nil {
		return from, from, err
	}
	return from, len(migrations), nil
}

// lockKeySQL derives an advisory lock key from the current schema, so that
// installations in different schemas of one database never wait on each
// other.
const lockKeySQL = `hashtextextended('signoff.migrate.' || current_schema(), 0)`

// migrate applies the migrations of ms after the database's version up to
// version upTo, each in its own transaction, holding the migration lock
// throughout. It refuses a database whose version is above every migration
// of ms.
func migrate(ctx context.Context, conn *pgx.Conn, desc string, ms []migration, upTo int) (from int, err error) {
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+lockKeySQL+`)`); err != nil {
		return 0, fmt.Errorf("migrate %s: take the migration lock: %w", desc, err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+lockKeySQL+`)`)
	}()
	from, err = schemaVersion(ctx, conn, desc)
	if err != nil {
		return 0, err
	}
	if from > len(ms) {
		return from, newerError(desc, from, len(ms))
	}
	for _, m := range ms[from:max(from, upTo)] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO signoff_schema (version) VALUES ($1)
				ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version`, m.Version)
			return err
		})
		if err != nil {
			return from, fmt.Errorf("migrate %s to schema version %d (%s): %w; nothing of this step was applied", desc, m.Version, m.Name, err)
		}
	}
	return from, nil
}

// checkVersion refuses a database that is not at this build's version.
func checkVersion(ctx context.Context, conn *pgx.Conn, desc string) error {
	v, err := schemaVersion(ctx, conn, desc)
	if err != nil {
		return err
	}
	switch {
	case v > len(migrations):
		return newerError(desc, v, len(migrations))
	case v == 0:
		return fmt.Errorf("%s holds no signoff schema: check the DSN (and its search_path), or run `signoff migrate` to create one", desc)
	case v < len(migrations):
		return fmt.Errorf("%s: %w: it is at version %d, this signoff needs %d; run `signoff migrate --config FILE` (or start `signoff serve`, which migrates)", desc, ErrSchemaOlder, v, len(migrations))
	}
	return nil
}

func newerError(desc string, v, known int) error {
	return fmt.Errorf("%s: %w: it is at version %d, this signoff knows up to %d; a newer signoff migrated it, so run that version or a later one (an older one must never write to it)",
		desc, ErrSchemaNewer, v, known)
}

// schemaVersion reads the database's schema version; 0 when it has no
// signoff schema yet.
func schemaVersion(ctx context.Context, conn *pgx.Conn, desc string) (int, error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('signoff_schema') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("read the schema version of %s: %w", desc, err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	err := conn.QueryRow(ctx, `SELECT version FROM signoff_schema`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the schema version of %s: %w", desc, err)
	}
	return v, nil
}

// dsnError says that a DSN cannot be parsed without quoting it: pgx's
// parse error carries the connection string, whose password it masks only
// where it can tell one (not "password = x" with spaces, which pgx
// accepts, nor a file holding just the password). What the parser
// objected to is kept when it quotes nothing of the DSN.
func dsnError(err error) error {
	why := ""
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		if inner := errors.Unwrap(pe); inner != nil && !quotesDSN(inner.Error(), pe.ConnString) {
			why = ": " + inner.Error()
		}
	}
	return fmt.Errorf("the DSN is not a PostgreSQL connection string pgx can read (a postgres:// URL, or keyword=value pairs)%s; it is not shown, as it may hold the password", why)
}

// quotesDSN reports whether msg holds a part of dsn (split at white
// space, "=" and quotes) four characters or longer.
func quotesDSN(msg, dsn string) bool {
	for _, f := range strings.FieldsFunc(dsn, func(r rune) bool { return r == ' ' || r == '=' || r == '\t' || r == '\'' }) {
		if len(f) >= 4 && strings.Contains(msg, f) {
			return true
		}
	}
	return false
}
