package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
	"github.com/signoff-dev/signoff/storage/pgstore"
)

// openServeStore opens the store serve runs on, as storage.driver says.
// bbolt fails at once when another process holds the file. PostgreSQL is
// migrated under an advisory lock; a database that cannot be reached yet is
// retried in the background while the server starts (/readyz answers 503
// until it is ready), but one migrated by a newer signoff is refused.
func openServeStore(ctx context.Context, cfg *config.Config, logger *slog.Logger) (storage.Store, string, error) {
	switch cfg.Storage.Driver {
	case config.DriverPostgres:
		st, err := pgstore.Open(ctx, cfg.Storage.DSN.Reveal(), pgstore.Options{Retry: true, Logger: logger})
		if err != nil {
			return nil, "", withCode(exitFailure, fmt.Errorf("storage: %w", err))
		}
		return st, st.String(), nil
	default:
		st, err := boltstore.Open(cfg.Storage.Path, boltstore.Options{LockTimeout: time.Second})
		if err != nil {
			return nil, "", err
		}
		return st, cfg.Storage.Path, nil
	}
}

// dbFlags name the database an offline command opens: --db FILE (bbolt)
// or --dsn / --dsn-file (PostgreSQL).
type dbFlags struct {
	db, dsn, dsnFile string
}

// add registers the flags; dbHelp describes --db.
func (f *dbFlags) add(fs *pflag.FlagSet, dbHelp string) {
	fs.StringVar(&f.db, "db", "", dbHelp)
	fs.StringVar(&f.dsn, "dsn", "", "PostgreSQL DSN of the server's database (storage.dsn); prefer --dsn-file, which keeps the password off the command line")
	fs.StringVar(&f.dsnFile, "dsn-file", "", "file holding the PostgreSQL DSN (storage.dsn_file)")
}

// given reports how many of the three ways to name a database were used.
func (f *dbFlags) given() int {
	n := 0
	for _, v := range []string{f.db, f.dsn, f.dsnFile} {
		if v != "" {
			n++
		}
	}
	return n
}

// isSet reports whether a database was named.
func (f *dbFlags) isSet() bool { return f.given() > 0 }

// postgres reports whether the database named is PostgreSQL.
func (f *dbFlags) postgres() bool { return f.dsn != "" || f.dsnFile != "" }

// resolveDSN returns the DSN from --dsn or --dsn-file.
func (f *dbFlags) resolveDSN() (string, error) {
	if f.dsn != "" {
		return f.dsn, nil
	}
	b, err := os.ReadFile(f.dsnFile)
	if err != nil {
		return "", withCode(exitUsage, fmt.Errorf("--dsn-file: %w", err))
	}
	dsn := strings.TrimSpace(string(b))
	if dsn == "" {
		return "", withCode(exitUsage, fmt.Errorf("--dsn-file: %s is empty; it should hold the PostgreSQL DSN (storage.dsn_file)", f.dsnFile))
	}
	return dsn, nil
}

// openReadOnly opens the named database for reading. A bbolt file must not
// be held by a running server (lockedHint says what to do instead);
// PostgreSQL may be read while replicas serve.
func (f *dbFlags) openReadOnly(ctx context.Context, lockedHint string) (storage.Store, error) {
	if f.given() > 1 {
		return nil, usageErrorf("name one database: --db FILE, --dsn DSN or --dsn-file FILE")
	}
	if !f.postgres() {
		return openBoltReadOnly(f.db, lockedHint)
	}
	dsn, err := f.resolveDSN()
	if err != nil {
		return nil, err
	}
	st, err := pgstore.Open(ctx, dsn, pgstore.Options{ReadOnly: true})
	if err != nil {
		return nil, withCode(exitFailure, err)
	}
	return st, nil
}

// openBoltReadOnly opens an existing bbolt store for reading, with the
// message an operator needs when a server holds it.
func openBoltReadOnly(path, lockedHint string) (*boltstore.Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("database %s: %w; pass the storage.path of your signoff server with --db", path, err))
	}
	st, err := boltstore.Open(path, boltstore.Options{ReadOnly: true, LockTimeout: 2 * time.Second})
	if errors.Is(err, storage.ErrLocked) {
		return nil, fmt.Errorf("%w\n(%s)", err, lockedHint)
	}
	return st, err
}
