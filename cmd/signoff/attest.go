package main

// Approval attestations on the command line (docs/attestations.md):
//
//	signoff attest keygen -o FILE [--rsa]
//	signoff attest verify (--server URL | --jwks FILE) [--audience A] [--issuer URL]
//	                      [--action NAME] [--param k=v]... [--exact-params] [--leeway DUR] FILE
//
// and what serve and `signoff request` do with them: the signer serve
// hands the approvals service and the front door (attestSigner), dev
// mode's key (attest-key.pem beside the database), and the attestation
// `signoff request --wait` reads once the request is approved
// (deliverAttestation).

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/attest"
	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/internal/keyfile"
)

// devAttestKeyName is dev mode's attestation key, next to its database.
const devAttestKeyName = "attest-key.pem"

// maxKeyFile bounds a key file read at start.
const maxKeyFile = 1 << 20

// maxAttestation bounds the attestation `attest verify` reads.
const maxAttestation = 64 << 10

// attestFetchTimeout bounds `attest verify --server`'s fetch of the keys.
const attestFetchTimeout = 30 * time.Second

func newAttestCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attest",
		Short: "Make attestation keys and verify approval attestations",
		Long: `An approval attestation is the JWT signoff signs when a request is approved:
who approved which action with which params, for the action's
attestation.audience, valid for attest.ttl (docs/attestations.md).`,
	}
	cmd.AddCommand(newAttestKeygenCommand(), newAttestVerifyCommand())
	return cmd
}

func newAttestKeygenCommand() *cobra.Command {
	var (
		out    string
		useRSA bool
	)
	cmd := &cobra.Command{
		Use:   "keygen -o FILE [--rsa]",
		Short: "Make a key that signs approval attestations",
		Long: `Write a new signing key to FILE (PEM, PKCS#8, mode 0600) for
attest.signing_key_file, and its public key to FILE.pub (for
attest.previous_key_files once it is retired). The key is ECDSA P-256 and
signs ES256; with --rsa it is RSA (3072 bits) and signs RS256. An existing
FILE is never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErrorf("attest keygen needs -o FILE")
			}
			key, err := attest.GenerateKey(useRSA)
			if err != nil {
				return err
			}
			if err := writeNewFile(out, 0o600, func(w io.Writer) error { return attest.WritePrivateKeyPEM(w, key) }); err != nil {
				return err
			}
			if err := writeNewFile(out+".pub", 0o644, func(w io.Writer) error { return attest.WritePublicKeyPEM(w, key.Public()) }); err != nil {
				return err
			}
			alg, _ := attest.Algorithm(key.Public())
			kid, err := attest.KeyID(key.Public())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote signing key %s (%s, key id %s; set attest.signing_key_file to it) and public key %s.pub\n", out, alg, kid, out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "private key file to create")
	cmd.Flags().BoolVar(&useRSA, "rsa", false, "make an RSA key (RS256) instead of ECDSA P-256 (ES256)")
	return cmd
}

type attestVerifyOptions struct {
	server, jwks string
	want         attest.Expected
	params       []string
	leeway       time.Duration
}

func newAttestVerifyCommand() *cobra.Command {
	var o attestVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify (--server URL | --jwks FILE) [--audience A] [--action NAME] [--param k=v]... FILE",
		Short: "Check an approval attestation and print its claims",
		Long: `Check the approval attestation in FILE ("-": standard input) as a receiver
would: its signature against signoff's published keys, its type, issuer,
audience and lifetime, and, when given, the action and params that must have
been approved. On success print its claims as JSON and exit 0; otherwise
exit 1 naming the check that failed (malformed, algorithm, type,
unknown_key, signature, issuer, audience, expired, not_yet_valid, action,
params).

The keys: --server URL reads the server's discovery document
(URL/.well-known/openid-configuration) and the key set it names, and expects
its issuer unless --issuer says otherwise; --jwks FILE reads a saved key set
(URL/.well-known/jwks.json) and works offline, checking the issuer only with
--issuer.

--param NAME=VALUE (repeatable) pins a param: the attestation must have
been approved with exactly that value. --exact-params also refuses one that
approved more params than those given.`,
		Example: `  signoff attest verify --server https://signoff.example.com --audience deploy.example.com \
    --action deploy-prod --param service=api --param version=1.4.2 attestation.jwt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAttestVerify(cmd.Context(), o, args[0], cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "the signoff server (its public_url) whose published keys to use")
	f.StringVar(&o.jwks, "jwks", "", "a saved key set (JWKS) `FILE` to use instead of --server")
	f.StringVar(&o.want.Audience, "audience", attest.DefaultAudience, "the audience the attestation must be for")
	f.StringVar(&o.want.Issuer, "issuer", "", "the issuer the attestation must name (default with --server: the server's)")
	f.StringVar(&o.want.Action, "action", "", "the action that must have been approved")
	f.StringArrayVar(&o.params, "param", nil, "a param NAME=VALUE that must have been approved (repeatable)")
	f.BoolVar(&o.want.ExactParams, "exact-params", false, "refuse an attestation that approved params beyond those given")
	f.DurationVar(&o.leeway, "leeway", attest.DefaultLeeway, "how far this machine's clock may be from the server's")
	return cmd
}

func runAttestVerify(ctx context.Context, o attestVerifyOptions, file string, stdin io.Reader, stdout, stderr io.Writer) error {
	if (o.server == "") == (o.jwks == "") {
		return usageErrorf("give exactly one of --server URL (the server's published keys) and --jwks FILE (a saved key set)")
	}
	if strings.TrimSpace(o.want.Audience) == "" {
		return usageErrorf("--audience must not be empty: an attestation is checked for its audience")
	}
	if o.leeway < 0 {
		return usageErrorf("--leeway must not be negative")
	}
	var err error
	if o.want.Params, err = parseParams(o.params); err != nil {
		return err
	}
	if o.want.ExactParams && o.want.Params == nil {
		o.want.Params = map[string]string{}
	}
	token, err := readAttestation(file, stdin)
	if err != nil {
		return err
	}
	var keys *attest.KeySet
	if o.server != "" {
		server, err := parseServerURL(o.server)
		if err != nil {
			return err
		}
		fctx, cancel := context.WithTimeout(ctx, attestFetchTimeout)
		defer cancel()
		ks, d, err := attest.FetchKeySet(fctx, newHTTPClient(), server)
		if err != nil {
			return withCode(exitFailure, fmt.Errorf("cannot read the published keys of %s: %w", server, err))
		}
		keys = ks
		if o.want.Issuer == "" {
			o.want.Issuer = d.Issuer
		}
	} else {
		data, err := readLimited(o.jwks, maxKeyFile)
		if err != nil {
			return usageErrorf("--jwks: %v", err)
		}
		if keys, err = attest.ParseKeySet(data); err != nil {
			return usageErrorf("--jwks %s: %v", o.jwks, err)
		}
	}
	claims, err := attest.Verify(token, keys, o.want, attest.VerifyOptions{Leeway: o.leeway})
	var refused *attest.VerifyError
	if errors.As(err, &refused) {
		return withCode(exitFailure, fmt.Errorf("attestation refused: %w", refused))
	}
	if err != nil {
		return withCode(exitFailure, err)
	}
	var approvers []string
	for _, a := range claims.Approvers {
		name := a.Email
		if name == "" {
			name = a.Subject
		}
		approvers = append(approvers, oneLine(name))
	}
	fmt.Fprintf(stderr, "valid: request %s (%s) approved by %s at %s, for %s, until %s\n",
		oneLine(claims.Subject), oneLine(claims.Action), strings.Join(approvers, ", "),
		claims.DecidedAt.UTC().Format(time.RFC3339), oneLine(claims.Audience), claims.Expiry.UTC().Format(time.RFC3339))
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(claims)
}

// readAttestation reads the compact JWT in file, or standard input for "-".
func readAttestation(file string, stdin io.Reader) (string, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, maxAttestation+1))
	} else {
		data, err = readLimited(file, maxAttestation)
	}
	if err != nil {
		return "", usageErrorf("reading the attestation: %v", err)
	}
	if len(data) > maxAttestation {
		return "", usageErrorf("the attestation is over %d bytes: is %s an attestation?", maxAttestation, file)
	}
	return strings.TrimSpace(string(data)), nil
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes; is that the right file?", path, limit)
	}
	return data, nil
}

// attestSigner returns the signer of approval attestations, or nil when
// the server signs none: the key of attest.signing_key_file, with the keys
// of attest.previous_key_files published beside it, and public_url as the
// issuer. In dev mode without a configured key it uses (making it the
// first time) attest-key.pem next to the database, and names
// http://<addr> as the issuer unless public_url is set.
func attestSigner(cfg *config.Config, dev bool, addr string, logger *slog.Logger) (*attest.Signer, error) {
	var key crypto.Signer
	issuer := strings.TrimSuffix(cfg.PublicURL, "/")
	switch {
	case cfg.Attest.SigningKey.IsSet():
		// Load already read attest.signing_key_file into SigningKey.
		k, err := attest.ParsePrivateKeyPEM([]byte(cfg.Attest.SigningKey.Reveal()))
		if err != nil {
			return nil, withCode(exitUsage, fmt.Errorf("attest.signing_key: %w", err))
		}
		key = k
	case dev:
		path := filepath.Join(filepath.Dir(cfg.Storage.Path), devAttestKeyName)
		k, err := loadOrCreateDevAttestKey(path)
		if err != nil {
			return nil, withCode(exitUsage, fmt.Errorf("dev mode's attestation key: %w", err))
		}
		key = k
		if issuer == "" {
			issuer = "http://" + addr
		}
	default:
		logger.Info("approval attestations are off: set attest.signing_key_file to sign them")
		return nil, nil
	}
	var previous []crypto.PublicKey
	for i, file := range cfg.Attest.PreviousKeyFiles {
		data, err := readLimited(file, maxKeyFile)
		if err == nil {
			var pub crypto.PublicKey
			if pub, err = attest.ParsePublicKeyPEM(data); err == nil {
				previous = append(previous, pub)
				continue
			}
			err = fmt.Errorf("%s %w", file, err)
		}
		return nil, withCode(exitUsage, fmt.Errorf("attest.previous_key_files[%d]: %w", i, err))
	}
	s, err := attest.NewSigner(attest.SignerOptions{Issuer: issuer, Key: key, Previous: previous, TTL: cfg.Attest.TTL})
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("attest: %w", err))
	}
	alg, _ := attest.Algorithm(key.Public())
	logger.Info("approval attestations are signed", "issuer", s.Issuer(), "alg", alg, "kid", s.KeyID(), "published_keys", len(s.Keys().KeyIDs()), "ttl", s.TTL())
	return s, nil
}

// loadOrCreateDevAttestKey reads dev mode's attestation key at path, or
// creates an ECDSA P-256 key there (mode 0600, its directory 0700) when
// there is none, so attestations keep verifying across restarts. Another
// process creating it at the same moment wins (O_EXCL), and its key is
// used. A key file other users may read is refused.
func loadOrCreateDevAttestKey(path string) (crypto.Signer, error) {
	for range 2 {
		data, err := readLimited(path, maxKeyFile)
		if err == nil {
			if runtime.GOOS != "windows" {
				if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
					return nil, fmt.Errorf("%s has mode %04o, so other users can read the signing key; run chmod 600 %s", path, fi.Mode().Perm(), path)
				}
			}
			k, err := attest.ParsePrivateKeyPEM(data)
			if err != nil {
				return nil, fmt.Errorf("%s %w (delete it to have a new key made; attestations signed with the old one then stop verifying)", path, err)
			}
			return k, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		key, err := attest.GenerateKey(false)
		if err != nil {
			return nil, err
		}
		err = keyfile.CreateNew(path, func(w io.Writer) error { return attest.WritePrivateKeyPEM(w, key) })
		if errors.Is(err, fs.ErrExist) {
			continue // made meanwhile by another process: use its key
		}
		if err != nil {
			return nil, err
		}
		return key, nil
	}
	return nil, fmt.Errorf("%s appeared and vanished while it was being made; start again", path)
}

// attestationAttempts bounds the reads of an approved request's
// attestation by `signoff request` when the server fails for a moment.
const attestationAttempts = 5

// deliverAttestation reads approved request v's attestation when
// --attestation-out or the step output asks for it, writes the file and
// hands the token to the step output. A failure is the command's only
// when --attestation-out asked for the file; for the step output alone it
// is a warning (the server may sign none).
func (c *requestClient) deliverAttestation(ctx context.Context, v api.Request, o requestOptions) error {
	if v.State != api.StateApproved || (o.attestationOut == "" && o.attestation == nil) {
		return nil
	}
	token, err := c.readAttestation(ctx, v.ID)
	if err == nil && o.attestationOut != "" {
		err = writeAttestationFile(o.attestationOut, token)
		if err == nil {
			fmt.Fprintf(c.stderr, "wrote the attestation of request %s to %s\n", v.ID, o.attestationOut)
		}
	}
	if err != nil {
		if o.attestationOut == "" {
			fmt.Fprintf(c.stderr, "warning: request %s is approved, but its attestation is not available: %v\n", v.ID, err)
			return nil
		}
		return withCode(exitFailure, fmt.Errorf("request %s is approved, but its attestation is not available: %w", v.ID, err))
	}
	if o.attestation != nil {
		*o.attestation = token
	}
	return nil
}

// readAttestation GETs the attestation, renewing the token once on 401
// and retrying what may pass (network errors, 5xx, 429) a few times.
func (c *requestClient) readAttestation(ctx context.Context, id string) (string, error) {
	bo := newBackoff()
	refreshed := false
	for attempt := 1; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, callTimeout)
		token, err := c.api.Attestation(callCtx, id)
		cancel()
		if err == nil {
			return token, nil
		}
		var answer *api.Error
		var header http.Header
		switch {
		case errors.As(err, &answer) && answer.Status == http.StatusUnauthorized && c.tok.refresh != nil && !refreshed:
			refreshed = true
			if err := c.tok.renew(ctx); err != nil {
				return "", err
			}
			continue
		case errors.As(err, &answer) && transientStatus(answer.Status):
			header = answer.Header
		case errors.As(err, &answer):
			return "", fmt.Errorf("the server at %s answered %s", c.base, apiErrorText(answer))
		case ctx.Err() != nil:
			return "", ctx.Err()
		default:
			var bad *api.AnswerError
			if errors.As(err, &bad) || permanentTransportError(err) {
				return "", err
			}
			err = redactURLError(err)
		}
		if attempt >= attestationAttempts {
			return "", fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		if err := sleep(ctx, bo.next(header)); err != nil {
			return "", err
		}
	}
}

// writeAttestationFile writes token to path, mode 0600, whole or not at
// all: a file next to it is renamed over path.
func writeAttestationFile(path, token string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".signoff-attestation-*")
	if err != nil {
		return fmt.Errorf("--attestation-out: %w", err)
	}
	tmp := f.Name()
	werr := f.Chmod(0o600)
	if werr == nil {
		_, werr = io.WriteString(f, token+"\n")
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("--attestation-out: writing %s: %w", path, werr)
	}
	return nil
}
