package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a configuration file",
	}
	var (
		path string
		dev  bool
	)
	check := &cobra.Command{
		Use:   "check --config FILE [--dev]",
		Short: "Report every problem in a config file at once, or summarise it",
		Long: `Load FILE (with SIGNOFF_* environment overrides) and report every problem at
once, each naming its key; exit 2 when there is any. Otherwise print a summary:
actions, who may request them, who may approve them, where they are announced.
It checks FILE for a production start ('signoff serve --config FILE'), which
refuses a requester whose issuer is dev mode's built-in issuer; with --dev it
checks FILE for 'signoff serve --dev' instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return usageErrorf("config check needs --config FILE")
			}
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			if _, err := cfg.Policy(); err != nil {
				return withCode(exitUsage, err)
			}
			if err := checkStartMode(cfg, dev); err != nil {
				return withCode(exitUsage, fmt.Errorf("config %s has problems:\n%w", path, err))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is valid.\n\n%s", path, cfg.Summary())
			return nil
		},
	}
	check.Flags().StringVar(&path, "config", "", "config file to check")
	check.Flags().BoolVar(&dev, "dev", false, "check the file for 'signoff serve --dev' rather than for a production start")
	cmd.AddCommand(check)
	return cmd
}
