package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/storage/pgstore"
)

func newMigrateCommand() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "migrate --config FILE",
		Short: "Bring the PostgreSQL database's schema to this signoff's version",
		Long: `Apply the schema migrations this signoff carries to the PostgreSQL database
of FILE's storage.dsn_file (or storage.dsn), then exit. Every 'signoff serve' on
PostgreSQL does the same when it starts, so this is for operators who migrate
before a rolling deploy, or who run serve with a role that may not change the
schema. Replicas starting at once take turns on an advisory lock: only one
applies anything. A database migrated by a newer signoff is refused (exit 1).

With storage.driver bolt there is nothing to run: serve upgrades its file when
it opens it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgPath == "" {
				return usageErrorf("migrate needs --config FILE")
			}
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if cfg.Storage.Driver != config.DriverPostgres {
				fmt.Fprintf(w, "storage.driver is %q: nothing to migrate (serve upgrades a bbolt file when it opens it)\n", cfg.Storage.Driver)
				return nil
			}
			from, to, err := pgstore.Migrate(cmd.Context(), cfg.Storage.DSN.Reveal())
			if err != nil {
				return withCode(exitFailure, fmt.Errorf("storage: %w", err))
			}
			if from == to {
				fmt.Fprintf(w, "schema already at version %d; nothing to do\n", to)
				return nil
			}
			fmt.Fprintf(w, "migrated the schema from version %d to %d\n", from, to)
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "config file (YAML) naming storage.driver: postgres")
	return cmd
}
