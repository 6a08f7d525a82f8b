package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
	"github.com/signoff-dev/signoff/storage/pgstore"
)

func newStorageCommand() *cobra.Command {
	return commandGroup("storage", "Move an installation between storage backends", newStorageCopyCommand())
}

func newStorageCopyCommand() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "copy --from bolt:FILE --to postgres-file:FILE",
		Short: "Copy everything signoff keeps from one database to an empty one",
		Long: `Copy an installation's database to another backend, e.g. from the bbolt file of
a single server to the PostgreSQL database several replicas will share:

  signoff storage copy --from bolt:/data/signoff.db --to postgres-file:/run/secrets/dsn

A database is named BACKEND:WHERE: bolt:FILE, postgres:DSN, or
postgres-file:FILE (a file holding the DSN, which keeps the password off the
command line). Either direction works.

Stop every server of the installation first: the copy is of the moment it
starts, and anything a server writes afterwards would be left behind. The
source's audit chain is verified before anything is written; the destination
must be empty (a new bbolt file, or a PostgreSQL schema without signoff's
tables or with them empty), and is not touched when the source does not
verify; after the copy the destination's chain is
verified and must end with the source's last record. Then point the servers'
storage at the destination and start them.

Copied: requests (with their votes, cards and idempotency keys), the whole
audit chain record for record, queued outbox work, identity links and Teams
conversation references. Not copied: sign-in links still open (single-use,
minutes long: people click the card again) and the replay memory of
Shared Signals event ids (events older than the receiver's max age are
refused anyway). If the copy fails, a new bbolt file is removed again; a
PostgreSQL destination may hold a partial copy: empty it (DROP SCHEMA …
CASCADE) and run again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return usageErrorf("storage copy needs --from BACKEND:WHERE and --to BACKEND:WHERE")
			}
			src, err := openCopyEnd(cmd.Context(), "--from", from, true)
			if err != nil {
				return err
			}
			defer src.Close()
			// The source's chain is verified before the destination is
			// even opened: a refused copy creates no file and migrates no
			// schema.
			srcSum, err := verifyStore(cmd.Context(), src)
			if err != nil {
				return withCode(exitFailure, fmt.Errorf("the source's audit chain does not verify, so nothing was copied: %w", err))
			}
			dst, err := openCopyEnd(cmd.Context(), "--to", to, false)
			if err != nil {
				return err
			}
			sum, err := copyStore(cmd.Context(), src, srcSum, dst, cmd.ErrOrStderr())
			cerr := dst.Close()
			if err != nil {
				// A bbolt destination is a file this run created (an existing
				// one is refused above): remove it, so that a run after the
				// cause is fixed finds the path free and a refused copy
				// leaves nothing half made behind.
				if backend, file, _ := strings.Cut(to, ":"); backend == "bolt" {
					if rerr := os.Remove(file); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
						err = fmt.Errorf("%w (and removing the new file %s failed: %v)", err, file, rerr)
					}
				}
				return withCode(exitFailure, err)
			}
			if cerr != nil {
				return withCode(exitFailure, fmt.Errorf("--to: close the destination: %w", cerr))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %d requests, %d audit records (chain verified on both sides, last seq %d, last hash %s), %d outbox entries, %d identity links, %d conversations\n",
				sum.requests, sum.audit.Records, sum.audit.LastSeq, sum.audit.LastHash, sum.outbox, sum.links, sum.conversations)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the database to copy: bolt:FILE, postgres:DSN or postgres-file:FILE")
	f.StringVar(&to, "to", "", "the empty database to copy into: bolt:FILE, postgres:DSN or postgres-file:FILE")
	return cmd
}

// openCopyEnd opens one end of a copy: the source read-only, the
// destination for writing (creating a bbolt file or migrating a
// PostgreSQL schema).
func openCopyEnd(ctx context.Context, flag, spec string, source bool) (storage.Store, error) {
	backend, where, ok := strings.Cut(spec, ":")
	if !ok || where == "" || !knownCopyBackend(backend) {
		// What was given is not repeated: it may be a DSN, password and
		// all, without its postgres: prefix ("host=… password=…").
		return nil, usageErrorf("%s: name a database as bolt:FILE, postgres:DSN or postgres-file:FILE", flag)
	}
	switch backend {
	case "bolt":
		if source {
			return openBoltReadOnly(where, "a running signoff server holds the database; stop every server of the installation before copying it")
		}
		if _, err := os.Stat(where); err == nil {
			return nil, usageErrorf("%s: %s exists already; the copy goes into a new file (move the old one away, or name another)", flag, where)
		}
		st, err := boltstore.Open(where, boltstore.Options{LockTimeout: 2 * time.Second})
		if err != nil {
			return nil, withCode(exitFailure, fmt.Errorf("%s: %w", flag, err))
		}
		return st, nil
	case "postgres", "postgres-file":
		db := dbFlags{}
		if backend == "postgres" {
			db.dsn = where
		} else {
			db.dsnFile = where
		}
		dsn, err := db.resolveDSN()
		if err != nil {
			return nil, err
		}
		st, err := pgstore.Open(ctx, dsn, pgstore.Options{ReadOnly: source})
		if err != nil {
			return nil, withCode(exitFailure, fmt.Errorf("%s: %w", flag, err))
		}
		return st, nil
	default:
		return nil, usageErrorf("%s: name a database as bolt:FILE, postgres:DSN or postgres-file:FILE", flag)
	}
}

// knownCopyBackend reports whether backend names one storage copy knows.
func knownCopyBackend(backend string) bool {
	switch backend {
	case "bolt", "postgres", "postgres-file":
		return true
	}
	return false
}

// copySummary is what copyStore copied.
type copySummary struct {
	requests, outbox, links, conversations int
	audit                                  audit.Summary
}

// copyChunk is how many audit records one destination transaction takes.
const copyChunk = 500

// copyStore copies src, whose audit chain verified as srcSum, into the
// empty dst, then verifies dst's chain and checks that it ends where src's
// does.
func copyStore(ctx context.Context, src storage.Store, srcSum audit.Summary, dst storage.Store, progress io.Writer) (copySummary, error) {
	var sum copySummary
	if err := checkEmpty(ctx, dst); err != nil {
		return sum, err
	}

	// Everything but the audit chain, read in one snapshot.
	var (
		reqs  []storage.Request
		out   []storage.OutboxEntry
		links []storage.IdentityLink
		convs []storage.Conversation
	)
	err := src.View(ctx, func(tx storage.ReadTx) error {
		var err error
		if reqs, err = tx.Requests(storage.RequestFilter{}); err != nil {
			return err
		}
		// Every entry, whenever due and however leased.
		if out, err = tx.DueOutbox(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "", 0); err != nil {
			return err
		}
		if links, err = tx.Links(storage.LinkFilter{}); err != nil {
			return err
		}
		convs, err = tx.Conversations("")
		return err
	})
	if err != nil {
		return sum, fmt.Errorf("read the source: %w", err)
	}

	// The audit chain, record for record, in chunks.
	batch := make([]audit.Record, 0, copyChunk)
	var raw [][]byte
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := dst.Update(ctx, func(tx storage.Tx) error {
			for i, rec := range batch {
				if err := tx.AppendAudit(rec.Seq, rec.Hash, raw[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("write audit records %d to %d: %w", batch[0].Seq, batch[len(batch)-1].Seq, err)
		}
		fmt.Fprintf(progress, "copied audit records through seq %d of %d\n", batch[len(batch)-1].Seq, srcSum.LastSeq)
		batch, raw = batch[:0], raw[:0]
		return nil
	}
	err = src.AuditRecords(ctx, 1, func(_ uint64, line []byte) error {
		rec, err := audit.ParseRecord(line)
		if err != nil {
			return err
		}
		batch = append(batch, rec)
		raw = append(raw, line)
		if len(batch) == copyChunk {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return sum, fmt.Errorf("copy the audit chain: %w (the destination holds a partial copy: empty it and run again)", err)
	}

	// The rest in one transaction: oldest request first, outbox entries in
	// their order (they get new ids, in the same order).
	err = dst.Update(ctx, func(tx storage.Tx) error {
		for i := len(reqs) - 1; i >= 0; i-- {
			// Stored at version 1: the version is a compare-and-swap
			// token, and no reader of the old database holds one.
			if err := tx.CreateRequest(reqs[i]); err != nil {
				return err
			}
		}
		for _, e := range out {
			e.LeaseUntil = time.Time{} // the lease holder is gone
			if _, err := tx.Enqueue(e); err != nil {
				return err
			}
		}
		for _, l := range links {
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		for _, c := range convs {
			if err := tx.PutConversation(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return sum, fmt.Errorf("copy requests, outbox, links and conversations: %w (the destination holds a partial copy: empty it and run again)", err)
	}

	dstSum, err := verifyStore(ctx, dst)
	if err != nil {
		return sum, fmt.Errorf("the copy's audit chain does not verify: %w", err)
	}
	if dstSum.Records != srcSum.Records || dstSum.LastSeq != srcSum.LastSeq || dstSum.LastHash != srcSum.LastHash {
		return sum, fmt.Errorf("the copy's audit chain ends at seq %d (%s), the source's at seq %d (%s)", dstSum.LastSeq, dstSum.LastHash, srcSum.LastSeq, srcSum.LastHash)
	}
	return copySummary{requests: len(reqs), outbox: len(out), links: len(links), conversations: len(convs), audit: dstSum}, nil
}

// verifyStore verifies a store's whole audit chain.
func verifyStore(ctx context.Context, st storage.Store) (audit.Summary, error) {
	v := audit.NewVerifier(audit.VerifyOptions{})
	if err := st.AuditRecords(ctx, 1, func(_ uint64, line []byte) error { return v.Add(line) }); err != nil {
		return audit.Summary{}, err
	}
	return v.Finish()
}

// errNotEmpty refuses a destination that already holds something.
var errNotEmpty = errors.New("the destination is not empty")

// checkEmpty refuses a destination holding any request, audit record,
// outbox entry, link or conversation.
func checkEmpty(ctx context.Context, st storage.Store) error {
	return st.View(ctx, func(tx storage.ReadTx) error {
		seq, _, err := tx.AuditHead()
		if err != nil {
			return err
		}
		reqs, err := tx.Requests(storage.RequestFilter{Limit: 1})
		if err != nil {
			return err
		}
		out, err := tx.DueOutbox(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "", 1)
		if err != nil {
			return err
		}
		links, err := tx.Links(storage.LinkFilter{})
		if err != nil {
			return err
		}
		convs, err := tx.Conversations("")
		if err != nil {
			return err
		}
		if seq > 0 || len(reqs)+len(out)+len(links)+len(convs) > 0 {
			return fmt.Errorf("%w (it holds %d audit records, and requests, outbox entries, links or conversations); copy into a new file or an empty schema", errNotEmpty, seq)
		}
		return nil
	})
}
