// Command signoff is the approval bot: the server (serve), the CI client
// (request), dev mode's token minter (dev token), and the operator's and
// auditor's tools (audit, config).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes shared by every command (README.md lists them with each command).
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitRefused  = 3
	exitBadChain = 1
)

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
	// quiet means the command already told the user; run prints nothing.
	quiet bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func usageErrorf(format string, args ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, args...))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit code. Tests
// call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !ee.quiet {
			fmt.Fprintf(stderr, "signoff: %v\n", err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "signoff: %v\n", err)
	var failed *commandFailed
	if errors.As(err, &failed) {
		return exitFailure
	}
	// cobra refused the command line itself: an unknown command or flag,
	// the wrong number of arguments.
	return exitUsage
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "signoff",
		Short:         "Approval bot for CI: Slack and Teams approvals checked against your identity provider",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withCode(exitUsage, err) })
	root.AddCommand(newServeCommand(), newLinksCommand(), newTeamsCommand(), newRequestCommand(), newDevCommand(), newAuditCommand(), newConfigCommand(), newVersionCommand())
	root.AddCommand(newLoginCommand())
	root.AddCommand(newRequestsCommand(), newBackupCommand()) // admin.go
	root.AddCommand(newMigrateCommand(), newStorageCommand(), newCompactCommand())
	root.AddCommand(newPolicyCommand()) // policyexplain.go
	root.AddCommand(newAttestCommand()) // attest.go
	markFailures(root)
	return root
}

// commandFailed is an error a command's RunE returned: cobra accepted the
// command line and the command failed. Every other error cobra returns is
// about the command line (an unknown command or flag, the wrong number of
// arguments), a usage error.
type commandFailed struct{ err error }

func (e *commandFailed) Error() string { return e.err.Error() }
func (e *commandFailed) Unwrap() error { return e.err }

// markFailures makes the errors of c's RunE, and of every command below
// it, a commandFailed. Call it once the command tree is complete.
func markFailures(c *cobra.Command) {
	if runE := c.RunE; runE != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if err := runE(cmd, args); err != nil {
				return &commandFailed{err: err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		markFailures(sub)
	}
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print signoff's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "signoff %s\n", version)
			return nil
		},
	}
}
