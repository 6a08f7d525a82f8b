package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
)

func newAuditCommand() *cobra.Command {
	return commandGroup("audit", "Export, verify and sign the tamper-evident audit log",
		newAuditExportCommand(), newAuditVerifyCommand(), newAuditKeygenCommand())
}

// auditLockedHint is what to do when a running server holds the bbolt
// file an audit command was pointed at.
const auditLockedHint = "a running signoff server holds the database; stop it for an offline export, or read the log over the API with GET /v1/audit"

func newAuditExportCommand() *cobra.Command {
	var (
		server, token, format, out, since, until, request string
		db                                                dbFlags
	)
	cmd := &cobra.Command{
		Use:   "export (--db FILE | --dsn-file FILE | --server URL) [--format jsonl|csv] [--since T] [--until T] [--request ID] [-o FILE]",
		Short: "Write the audit log as JSON lines or CSV",
		Long: `Write the audit log, oldest first, as JSON lines (one canonical record a line,
exactly as hashed, so the output verifies with 'signoff audit verify') or CSV.
--since (inclusive) and --until (exclusive) take RFC 3339 times; --request keeps
one request's records. A filtered export has gaps, so verify unfiltered ones.

--db reads a database file directly (the server must be stopped: bbolt lets one
process hold it). --dsn-file (or --dsn) reads a PostgreSQL database directly,
also while replicas serve it. --server reads a running server's GET /v1/audit with an
auditor's token (--token, else $SIGNOFF_TOKEN, else the sign-in of 'signoff
login --server URL'; its groups must include one of auditors.groups).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db.isSet() == (server != "") {
				return usageErrorf("audit export needs either --db FILE (the server's storage.path), --dsn-file FILE (its storage.dsn_file) or --server URL")
			}
			if format != "jsonl" && format != "csv" {
				return usageErrorf("--format %q: use jsonl or csv", format)
			}
			filter, err := parseFilter(since, until, request)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			var file *os.File
			if out != "" && out != "-" {
				file, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					return fmt.Errorf("create %s: %w", out, err)
				}
				defer file.Close()
				w = file
			}
			var n int
			if server != "" {
				// --token, $SIGNOFF_TOKEN, or the signoff login sign-in.
				token, terr := personToken(cmd, server)
				if terr != nil {
					return terr
				}
				n, err = exportAuditFromServer(cmd.Context(), server, token, w, format, filter)
			} else {
				st, oerr := db.openReadOnly(cmd.Context(), auditLockedHint)
				if oerr != nil {
					return oerr
				}
				defer st.Close()
				n, err = exportAudit(cmd.Context(), st, w, format, filter)
			}
			if err != nil {
				return err
			}
			if file != nil {
				if err := file.Sync(); err != nil {
					return fmt.Errorf("write %s: %w", out, err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d records to %s\n", n, out)
			}
			return nil
		},
	}
	f := cmd.Flags()
	db.add(f, "bbolt database file (the server's storage.path)")
	f.StringVar(&server, "server", "", "base URL of a running signoff server (reads GET /v1/audit)")
	f.StringVar(&token, "token", "", "with --server: an auditor's OIDC token (default $SIGNOFF_TOKEN, then the signoff login sign-in)")
	f.StringVar(&format, "format", "jsonl", "jsonl or csv")
	f.StringVarP(&out, "output", "o", "", "write to FILE instead of standard output")
	f.StringVar(&since, "since", "", "only records at or after this RFC 3339 time")
	f.StringVar(&until, "until", "", "only records before this RFC 3339 time")
	f.StringVar(&request, "request", "", "only records of this request id")
	return cmd
}

func parseFilter(since, until, request string) (audit.Filter, error) {
	f := audit.Filter{RequestID: request}
	var err error
	if since != "" {
		if f.Since, err = time.Parse(time.RFC3339, since); err != nil {
			return f, usageErrorf("--since %q is not an RFC 3339 time (e.g. 2026-01-31T00:00:00Z)", since)
		}
	}
	if until != "" {
		if f.Until, err = time.Parse(time.RFC3339, until); err != nil {
			return f, usageErrorf("--until %q is not an RFC 3339 time (e.g. 2026-01-31T00:00:00Z)", until)
		}
	}
	return f, nil
}

// exportAudit streams the log in constant memory.
func exportAudit(ctx context.Context, st storage.Store, w io.Writer, format string, filter audit.Filter) (int, error) {
	return writeAudit(w, format, filter, func(emit func(seq uint64, line []byte) error) error {
		return st.AuditRecords(ctx, 1, emit)
	})
}

// exportAuditFromServer streams GET /v1/audit (the server applies the
// filter) in constant memory.
func exportAuditFromServer(ctx context.Context, server, token string, w io.Writer, format string, filter audit.Filter) (int, error) {
	c, err := newAPIClient(server, api.StaticToken(token), newHTTPClient())
	if err != nil {
		return 0, err
	}
	body, err := c.Audit(ctx, api.AuditQuery{Since: filter.Since, Until: filter.Until, Request: filter.RequestID})
	var answer *api.Error
	switch {
	case errors.As(err, &answer):
		code := exitFailure
		if answer.Status == http.StatusUnauthorized || answer.Status == http.StatusForbidden {
			code = exitRefused
		}
		return 0, withCode(code, fmt.Errorf("GET /v1/audit: %s", apiErrorText(answer)))
	case err != nil:
		return 0, fmt.Errorf("cannot reach signoff at %s: %w", server, err)
	}
	defer body.Close()
	return writeAudit(w, format, audit.Filter{}, func(emit func(seq uint64, line []byte) error) error {
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 64<<10), audit.MaxLineBytes)
		var n uint64
		for sc.Scan() {
			if len(sc.Bytes()) == 0 {
				continue
			}
			n++
			if err := emit(n, sc.Bytes()); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read the audit stream (it may have been cut off): %w", err)
		}
		return nil
	})
}

// writeAudit writes the records walk yields that match filter, as JSON
// lines or CSV.
func writeAudit(w io.Writer, format string, filter audit.Filter, walk func(emit func(seq uint64, line []byte) error) error) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var csvw *audit.CSVWriter
	if format == "csv" {
		csvw = audit.NewCSVWriter(bw)
	}
	n := 0
	err := walk(func(seq uint64, line []byte) error {
		ok, err := filter.Match(line)
		if err != nil {
			return fmt.Errorf("audit record %d: %w", seq, err)
		}
		if !ok {
			return nil
		}
		n++
		if csvw != nil {
			return csvw.Write(line)
		}
		return audit.ExportJSONL(bw, line)
	})
	if err != nil {
		return n, fmt.Errorf("export audit log: %w", err)
	}
	if csvw != nil {
		if err := csvw.Flush(); err != nil {
			return n, fmt.Errorf("export audit log: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("export audit log: %w", err)
	}
	return n, nil
}

func newAuditVerifyCommand() *cobra.Command {
	var (
		pubkey, anchor, output string
		db                     dbFlags
		strict                 bool
	)
	cmd := &cobra.Command{
		Use:   "verify (--db FILE | --dsn-file FILE | FILE.jsonl) [--pubkey FILE [--strict]] [--anchor FILE] [--output text|json]",
		Short: "Check the audit log's hash chain (and signed checkpoints)",
		Long: `Check every record's hash and its link to the record before. Exit 0 when the
chain is intact; exit 1 naming the first bad record's seq when a record was
changed, removed, inserted or reordered. With --pubkey, every signed checkpoint
must verify too, so a log rewritten end to end without the key fails.

Two things a plain check lets through: records written after the last signed
checkpoint are chained but no signature covers them (so a record forged and
appended there passes), and a log cut right after an earlier checkpoint is still
intact and signed. These options catch them:

  --strict        (needs --pubkey) exit 1, naming the first unsigned record's
                  seq, when any record follows the last signed checkpoint. A
                  server that shuts down cleanly ends its log with a closing
                  checkpoint, so verify a backup or --db file taken after the
                  shutdown; a running server's log usually has an unsigned tail.
  --anchor FILE   checkpoint records published elsewhere as they were made
                  (one exported record a line, e.g. the "checkpoint" lines of
                  earlier exports): exit 1 unless the log holds each of them
                  unchanged, so a log cut after an earlier checkpoint, or
                  rewritten from one, fails. With --pubkey their signatures are
                  checked too. This is how to check a running server's export.

--db FILE reads a bbolt database file (of a stopped server, or a backup);
--dsn-file FILE (or --dsn) reads a PostgreSQL database, also while it serves.

Exit 2 for a usage error or an anchor file that cannot be read (naming the line).

--output json prints the outcome as one JSON document on standard output, for
an intact log (exit 0) and for one that is not (exit 1; the message goes to
standard error as well). Usage errors and a log that cannot be read at all
print no document. Its shape, every member always present:

  {
    "intact": true,
    "records": 1204,                 // records verified (checkpoints included);
    "last_seq": 1204,                //   when not intact: up to the bad one
    "last_hash": "9f86…",
    "signatures_checked": true,      // --pubkey was given
    "checkpoints_verified": 2,       // checkpoint signatures that verified
    "checkpoints_unchecked": 0,      // checkpoints seen without --pubkey
    "signed_through": 1203,          // records 1…N are covered by a signature
    "last_checkpoint": 1204,         // seq of the last verified checkpoint, or 0
    "unsigned_tail": 0,              // records after it (last_seq - last_checkpoint)
    "strict": false,
    "anchors_checked": 0,            // --anchor records found unchanged
    "recanonicalized": 0,            // lines re-serialized by another tool
    "problem": null                  // or {"kind", "seq", "line", "message"}
  }

problem.kind is "record" (a record changed, removed, inserted, reordered or
unreadable, or a checkpoint signature that does not verify), "unsigned_tail"
(--strict), "anchor_mismatch", "truncated" (--anchor) or "no_checkpoint"
(--pubkey, but the log holds none); seq and line are 0 for a problem with the
log as a whole.

  signoff audit verify --db backup.db --pubkey audit.key.pub --strict --anchor checkpoints.jsonl
  signoff audit verify audit.jsonl --pubkey audit.key.pub --anchor checkpoints.jsonl`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if db.isSet() == (len(args) == 1) {
				return usageErrorf("audit verify takes either --db FILE, --dsn-file FILE (PostgreSQL) or one exported FILE.jsonl")
			}
			if output != "text" && output != "json" {
				return usageErrorf("--output %q: use text or json", output)
			}
			if strict && pubkey == "" {
				return usageErrorf("--strict needs --pubkey FILE: it requires the log to end with a checkpoint whose signature verifies, and without the public key no signature can be checked")
			}
			opts := audit.VerifyOptions{Strict: strict}
			if pubkey != "" {
				pub, err := audit.ReadPublicKeyFile(pubkey)
				if err != nil {
					return withCode(exitUsage, fmt.Errorf("--pubkey: %w", err))
				}
				opts.PublicKey = pub
			}
			if anchor != "" {
				anchors, err := readAnchorFile(anchor, opts.PublicKey)
				if err != nil {
					return err
				}
				opts.Anchors = anchors
			}
			var (
				sum audit.Summary
				err error
			)
			if db.isSet() {
				sum, err = verifyDB(cmd.Context(), &db, opts)
			} else {
				sum, err = verifyFile(args[0], opts)
			}
			var chainErr *audit.ChainError
			if errors.As(err, &chainErr) {
				if output == "json" {
					if werr := writeIndentedJSON(cmd.OutOrStdout(), newVerifyReport(sum, opts, chainErr)); werr != nil {
						return werr
					}
				}
				err = fmt.Errorf("audit log is NOT intact: %w", err)
				if errors.Is(err, audit.ErrUnsignedTail) && opts.PublicKey != nil {
					err = fmt.Errorf("%w\n(a running server's log usually ends with records written since its last checkpoint: for --strict, verify a backup or --db file taken after the server shut down cleanly, which ends with its closing checkpoint; to check a running server's export, verify it with --anchor FILE holding the checkpoints published so far, without --strict)", err)
				}
				return withCode(exitBadChain, err)
			}
			if err != nil {
				return err
			}
			if output == "json" {
				return writeIndentedJSON(cmd.OutOrStdout(), newVerifyReport(sum, opts, nil))
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "audit log intact: %d records, last seq %d, last hash %s", sum.Records, sum.LastSeq, sum.LastHash)
			if pubkey != "" {
				fmt.Fprintf(w, ", %d signed checkpoints verified, signed through seq %d", sum.Checkpoints, sum.SignedThrough)
				switch tail := sum.LastSeq - sum.LastCheckpoint; {
				case tail == 1:
					fmt.Fprintf(w, " (the record after the last checkpoint, seq %d, is chained but not yet covered by a signature)", sum.LastCheckpoint)
				case tail > 1:
					fmt.Fprintf(w, " (the %d records after the last checkpoint, seq %d, are chained but not yet covered by a signature)", tail, sum.LastCheckpoint)
				default:
					fmt.Fprintf(w, ", the log ends with a signed checkpoint")
				}
			}
			if anchor != "" {
				fmt.Fprintf(w, ", %d anchors found unchanged", sum.Anchors)
			}
			fmt.Fprintln(w)
			return nil
		},
	}
	f := cmd.Flags()
	db.add(f, "bbolt database file (the server's storage.path)")
	f.StringVar(&pubkey, "pubkey", "", "PEM public key whose checkpoint signatures must verify")
	f.BoolVar(&strict, "strict", false, "with --pubkey: fail when records follow the last signed checkpoint")
	f.StringVar(&anchor, "anchor", "", "checkpoint records published elsewhere (JSON lines) the log must hold unchanged")
	addOutputFlag(cmd, &output)
	return cmd
}

// verifyReport is the JSON document of `audit verify --output json`; the
// command's help shows its shape. Members are never left out.
type verifyReport struct {
	Intact               bool           `json:"intact"`
	Records              int            `json:"records"`
	LastSeq              uint64         `json:"last_seq"`
	LastHash             string         `json:"last_hash"`
	SignaturesChecked    bool           `json:"signatures_checked"`
	CheckpointsVerified  int            `json:"checkpoints_verified"`
	CheckpointsUnchecked int            `json:"checkpoints_unchecked"`
	SignedThrough        uint64         `json:"signed_through"`
	LastCheckpoint       uint64         `json:"last_checkpoint"`
	UnsignedTail         uint64         `json:"unsigned_tail"`
	Strict               bool           `json:"strict"`
	AnchorsChecked       int            `json:"anchors_checked"`
	Recanonicalized      int            `json:"recanonicalized"`
	Problem              *verifyProblem `json:"problem"`
}

// verifyProblem is why a log is not intact.
type verifyProblem struct {
	// Kind is "record", "unsigned_tail", "anchor_mismatch", "truncated" or
	// "no_checkpoint".
	Kind    string `json:"kind"`
	Seq     uint64 `json:"seq"`
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// newVerifyReport describes a verification that ran: sum as far as it
// got, and the reason it stopped (nil when the log is intact).
func newVerifyReport(sum audit.Summary, opts audit.VerifyOptions, bad *audit.ChainError) verifyReport {
	r := verifyReport{
		Intact:               bad == nil,
		Records:              sum.Records,
		LastSeq:              sum.LastSeq,
		LastHash:             sum.LastHash,
		SignaturesChecked:    opts.PublicKey != nil,
		CheckpointsVerified:  sum.Checkpoints,
		CheckpointsUnchecked: sum.CheckpointsUnchecked,
		SignedThrough:        sum.SignedThrough,
		LastCheckpoint:       sum.LastCheckpoint,
		Strict:               opts.Strict,
		AnchorsChecked:       sum.Anchors,
		Recanonicalized:      sum.Recanonicalized,
	}
	if sum.LastSeq > sum.LastCheckpoint {
		r.UnsignedTail = sum.LastSeq - sum.LastCheckpoint
	}
	if bad != nil {
		kind := "record"
		switch {
		case errors.Is(bad, audit.ErrUnsignedTail):
			kind = "unsigned_tail"
		case errors.Is(bad, audit.ErrAnchorMismatch):
			kind = "anchor_mismatch"
		case errors.Is(bad, audit.ErrTruncated):
			kind = "truncated"
		case errors.Is(bad, audit.ErrNoCheckpoint):
			kind = "no_checkpoint"
		}
		r.Problem = &verifyProblem{Kind: kind, Seq: bad.Seq, Line: bad.Line, Message: bad.Error()}
	}
	return r
}

// readAnchorFile reads --anchor FILE (see audit.ReadAnchors); any problem
// is a usage error naming the file and line.
func readAnchorFile(path string, pub ed25519.PublicKey) ([]audit.Anchor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("--anchor: %w", err))
	}
	defer f.Close()
	anchors, err := audit.ReadAnchors(f, pub)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("--anchor %s: %w", path, err))
	}
	return anchors, nil
}

func verifyFile(path string, opts audit.VerifyOptions) (audit.Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return audit.Summary{}, withCode(exitUsage, fmt.Errorf("open export: %w", err))
	}
	defer f.Close()
	return audit.VerifyJSONL(f, opts)
}

func verifyDB(ctx context.Context, db *dbFlags, opts audit.VerifyOptions) (audit.Summary, error) {
	st, err := db.openReadOnly(ctx, auditLockedHint)
	if err != nil {
		return audit.Summary{}, err
	}
	defer st.Close()
	v := audit.NewVerifier(opts)
	if err := st.AuditRecords(ctx, 1, func(_ uint64, line []byte) error { return v.Add(line) }); err != nil {
		return v.Summary(), err
	}
	return v.Finish()
}

func newAuditKeygenCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen -o FILE",
		Short: "Make an Ed25519 key for signed audit checkpoints",
		Long: `Write a new Ed25519 private key to FILE (PEM, mode 0600) for audit.signing_key_file,
and its public key to FILE.pub for auditors ('signoff audit verify --pubkey FILE.pub').
An existing FILE is never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErrorf("audit keygen needs -o FILE")
			}
			priv, err := audit.GenerateKey()
			if err != nil {
				return err
			}
			if err := writeNewFile(out, 0o600, func(w io.Writer) error { return audit.WritePrivateKeyPEM(w, priv) }); err != nil {
				return err
			}
			pub := priv.Public().(ed25519.PublicKey)
			if err := writeNewFile(out+".pub", 0o644, func(w io.Writer) error { return audit.WritePublicKeyPEM(w, pub) }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote private key %s (set audit.signing_key_file to it) and public key %s.pub (key id %s)\n", out, out, audit.KeyID(pub))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "private key file to create")
	return cmd
}

// writeNewFile creates path (refusing to overwrite) and fills it.
func writeNewFile(path string, mode os.FileMode, fill func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("create %s: %w (keygen never overwrites a key)", path, err))
	}
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
