package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// defaultRevokeReason is audited when revoke gets no --reason.
const defaultRevokeReason = "revoked by an operator (signoff links revoke)"

// newLinksCommand is `signoff links`: the operator's view of which chat
// accounts are linked to which IdP identities, and revocation.
func newLinksCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "links",
		Short: "List and revoke approvers' chat-account links to IdP identities",
		Long: `An approver's click counts only through the IdP identity their chat account is
linked to. 'links list' shows the links in a signoff database; 'links revoke'
removes one (audited as identity.unlinked), so that person's clicks count again
only after they sign in anew.`,
	}
	cmd.AddCommand(newLinksListCommand(), newLinksRevokeCommand())
	return cmd
}

func newLinksListCommand() *cobra.Command {
	var db, platform, workspace string
	cmd := &cobra.Command{
		Use:   "list --db FILE [--platform P] [--workspace W]",
		Short: "Show linked chat accounts, their identity, groups and freshness",
		Long: `Show every chat account linked to an IdP identity: platform, workspace, chat
user, the IdP subject and email, the groups last confirmed by the IdP, how long
ago they were confirmed (verified), and whether the link is stale (the IdP
refused to confirm it; the person must link again).

The database is opened read-only; a running server holds it, so stop the
server first or copy the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db == "" {
				return usageErrorf("links list needs --db FILE (the server's storage.path)")
			}
			st, err := openLinksDB(db, true)
			if err != nil {
				return err
			}
			defer st.Close()
			var links []storage.IdentityLink
			err = st.View(cmd.Context(), func(tx storage.ReadTx) error {
				var err error
				links, err = tx.Links(storage.LinkFilter{Platform: platform, Workspace: workspace})
				return err
			})
			if err != nil {
				return fmt.Errorf("list links in %s: %w", db, err)
			}
			return writeLinksTable(cmd.OutOrStdout(), links, time.Now())
		},
	}
	f := cmd.Flags()
	f.StringVar(&db, "db", "", "bbolt database file (the server's storage.path)")
	f.StringVar(&platform, "platform", "", "only links of this chat platform (slack, teams, dev)")
	f.StringVar(&workspace, "workspace", "", "only links in this Slack team id or Teams tenant id")
	return cmd
}

// writeLinksTable prints links as an aligned table.
func writeLinksTable(w io.Writer, links []storage.IdentityLink, now time.Time) error {
	if len(links) == 0 {
		_, err := fmt.Fprintln(w, "no linked chat accounts")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLATFORM\tWORKSPACE\tUSER\tSUBJECT\tEMAIL\tGROUPS\tVERIFIED\tPROVED\tSTALE")
	for _, l := range links {
		groups := "-"
		if len(l.Groups) > 0 {
			groups = strings.Join(l.Groups, ",")
		}
		stale := "no"
		if l.Stale {
			stale = "yes"
			if l.StaleReason != "" {
				stale += ": " + l.StaleReason
			}
		}
		// PROVED: how the chat account was shown to be the identity's
		// ("email", "oid", "none"); "pending" for a link made before
		// signoff checked it, which is checked at its next click.
		proved := l.MatchedBy
		if proved == "" {
			proved = "pending"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			termSafe(l.Platform), termSafe(orDash(l.Workspace)), termSafe(l.PlatformUser), termSafe(l.Subject),
			termSafe(orDash(l.Email)), termSafe(groups), ageText(now, l.VerifiedAt), termSafe(proved), termSafe(stale))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write links: %w", err)
	}
	return nil
}

// ageText renders how long ago t was, coarsely: "45s ago", "3h12m ago",
// "4d2h ago".
func ageText(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in the future (" + t.UTC().Format(time.RFC3339) + ")"
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm ago", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh ago", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// termSafe keeps values from chat platforms and the IdP from moving the
// cursor or recolouring the terminal, and from breaking the table.
func termSafe(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == '\t' }) < 0 {
		return s
	}
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}

func newLinksRevokeCommand() *cobra.Command {
	var db, platform, workspace, user, reason string
	cmd := &cobra.Command{
		Use:   "revoke --db FILE --platform P --workspace W --user U [--reason TEXT]",
		Short: "Remove a chat account's link (audited as identity.unlinked)",
		Long: `Remove the link of one chat account, so that clicks from it count again only
after the person signs in at the IdP anew. The removal is written to the audit
log as identity.unlinked with --reason.

The database is opened for writing, which a running signoff server prevents:
stop the server first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var missing []string
			for _, f := range []struct{ name, v string }{{"--db", db}, {"--platform", platform}, {"--workspace", workspace}, {"--user", user}} {
				if f.v == "" {
					missing = append(missing, f.name)
				}
			}
			if len(missing) > 0 {
				return usageErrorf("links revoke needs %s (see 'signoff links list' for the values)", strings.Join(missing, ", "))
			}
			if reason == "" {
				reason = defaultRevokeReason
			}
			st, err := openLinksDB(db, false)
			if err != nil {
				return err
			}
			defer st.Close()
			return revokeLink(cmd.Context(), st, cmd.OutOrStdout(), platform, workspace, user, reason)
		},
	}
	f := cmd.Flags()
	f.StringVar(&db, "db", "", "bbolt database file (the server's storage.path)")
	f.StringVar(&platform, "platform", "", "chat platform of the account (slack, teams, dev)")
	f.StringVar(&workspace, "workspace", "", "Slack team id or Teams tenant id of the account")
	f.StringVar(&user, "user", "", "the Slack user id or Teams aadObjectId")
	f.StringVar(&reason, "reason", "", "why, for the audit log (default: \""+defaultRevokeReason+"\")")
	return cmd
}

// revokeLink unlinks one chat account through approvals, which writes the
// audit record in the same transaction.
func revokeLink(ctx context.Context, st storage.Store, w io.Writer, platform, workspace, user, reason string) error {
	svc := approvals.New(st, nil, approvals.Options{Logger: slog.New(slog.DiscardHandler)})
	l, err := svc.Link(ctx, platform, workspace, user)
	if errors.Is(err, approvals.ErrNotLinked) {
		return fmt.Errorf("%s user %s in %s is not linked; nothing to revoke (see 'signoff links list')", platform, user, workspace)
	}
	if err != nil {
		return err
	}
	if err := svc.Unlink(ctx, platform, workspace, user, reason); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	who := l.Subject
	if l.Email != "" {
		who += " (" + l.Email + ")"
	}
	fmt.Fprintf(w, "revoked the link of %s user %s in %s to %s; audited as identity.unlinked\n",
		termSafe(platform), termSafe(user), termSafe(workspace), termSafe(who))
	return nil
}

// openLinksDB opens an existing bbolt store (never creating one), with the
// message an operator needs when a running server holds it.
func openLinksDB(path string, readOnly bool) (*boltstore.Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("database %s: %w; pass the storage.path of your signoff server with --db", path, err))
	}
	st, err := boltstore.Open(path, boltstore.Options{ReadOnly: readOnly, LockTimeout: 2 * time.Second})
	if errors.Is(err, storage.ErrLocked) {
		return nil, withCode(exitFailure, fmt.Errorf("%w\n(a running signoff server holds the database; stop it, then run this command again)", err))
	}
	if err != nil {
		return nil, withCode(exitFailure, err)
	}
	return st, nil
}
