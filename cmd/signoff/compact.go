package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

func newCompactCommand() *cobra.Command {
	var cfgPath, db string
	cmd := &cobra.Command{
		Use:   "compact (--db FILE | --config FILE)",
		Short: "Rewrite a stopped server's bbolt file with full pages, giving back the space it no longer needs",
		Long: `Rewrite the bbolt database of a stopped signoff server so that its pages are
full, and give the space it no longer needs back to the file system. bbolt
never shrinks a file by itself: files written before signoff filled its
pages, or that once held a long outbox backlog, keep those pages.

The copy is written next to the file, compared with it key by key, synced, and
then renamed over it, so the file is always either the old one or a complete,
checked copy; nothing in it changes but its layout (the audit chain verifies
as before). Needs free space for the copy in the file's directory (at most
the file's size). The file must not be in use: stop the server first (a
running server's lock makes this command fail, exit 1, and leaves the file
alone). Take a backup first if you keep one.

With storage.driver postgres there is nothing to do: PostgreSQL reclaims
space itself (autovacuum).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (cfgPath == "") == (db == "") {
				return usageErrorf("compact needs either --db FILE (a stopped server's storage.path) or --config FILE, not both")
			}
			w := cmd.OutOrStdout()
			if cfgPath != "" {
				cfg, err := loadConfig(cfgPath)
				if err != nil {
					return err
				}
				if cfg.Storage.Driver != config.DriverBolt {
					fmt.Fprintf(w, "storage.driver is %q: nothing to compact (PostgreSQL reclaims space itself)\n", cfg.Storage.Driver)
					return nil
				}
				db = cfg.Storage.Path
			}
			if _, err := os.Stat(db); err != nil {
				return withCode(exitUsage, fmt.Errorf("database %s: %w; pass the storage.path of a stopped signoff server", db, err))
			}
			res, err := boltstore.Compact(cmd.Context(), db, boltstore.Options{LockTimeout: 2 * time.Second})
			if errors.Is(err, storage.ErrLocked) {
				return withCode(exitFailure, fmt.Errorf("%w\n(stop the signoff server that uses it, then run compact again)", err))
			}
			if err != nil {
				return withCode(exitFailure, fmt.Errorf("%w\n(the database was left as it was)", err))
			}
			fmt.Fprintf(w, "compacted %s: %s before, %s after (%d%%); %d keys copied and compared\n",
				db, megabytes(res.Before), megabytes(res.After), percent(res.After, res.Before), res.Keys)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&db, "db", "", "bbolt database file no server holds (a stopped server's storage.path)")
	f.StringVar(&cfgPath, "config", "", "config file (YAML): compact its storage.path")
	return cmd
}

// megabytes formats n bytes in MB with one decimal.
func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// percent is part as a whole percentage of whole (0 when whole is 0).
func percent(part, whole int64) int64 {
	if whole == 0 {
		return 0
	}
	return (part*100 + whole/2) / whole
}
