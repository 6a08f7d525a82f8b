package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// A checkpoint is a record of type "checkpoint" whose data is
//
//	{"hash": H, "key_id": K, "seq": S, "signature": SIG}
//
// where S and H are the seq and hash of the record just before the
// checkpoint (so the checkpoint at seq S+1 has prev H), SIG is the standard
// base64 encoding of the Ed25519 signature over CheckpointMessage(S, H), and
// K is KeyID of the signing key's public half. Because every record's hash
// covers its prev, a verified signature over H vouches for records 1…S.

// checkpointDomain starts every signed checkpoint message, so the signature
// cannot be mistaken for one over anything else.
const checkpointDomain = "signoff-checkpoint/v1\n"

// CheckpointMessage returns the bytes a checkpoint signs:
// "signoff-checkpoint/v1\n{seq}\n{hash}" (seq in decimal, no trailing newline).
func CheckpointMessage(seq uint64, hash string) []byte {
	b := make([]byte, 0, len(checkpointDomain)+20+1+len(hash))
	b = append(b, checkpointDomain...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '\n')
	return append(b, hash...)
}

// NewCheckpoint returns an unsealed checkpoint record that signs (seq, hash),
// the seq and hash of the last record in the log. Seal it right after that
// record: Seal(NewCheckpoint(priv, seq, hash), seq, hash). Time is set to the
// current wall-clock time; callers with their own clock overwrite it before
// sealing. priv must be a valid Ed25519 private key (ed25519.Sign panics
// otherwise).
func NewCheckpoint(priv ed25519.PrivateKey, seq uint64, hash string) Record {
	sig := ed25519.Sign(priv, CheckpointMessage(seq, hash))
	return Record{
		Time: FormatTime(time.Now()),
		Type: TypeCheckpoint,
		Data: map[string]any{
			"seq":       seq, // an integer in JSON; read it back as json.Number
			"hash":      hash,
			"signature": base64.StdEncoding.EncodeToString(sig),
			"key_id":    KeyID(priv.Public().(ed25519.PublicKey)),
		},
	}
}

// KeyID names a public key: the first 16 hex digits of the SHA-256 of its
// 32 raw bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateKey makes a new Ed25519 signing key for checkpoints.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate checkpoint signing key: %w", err)
	}
	return priv, nil
}

const (
	pemPrivate = "PRIVATE KEY"
	pemPublic  = "PUBLIC KEY"
)

// WritePrivateKeyPEM writes priv to w as a PKCS #8 "PRIVATE KEY" PEM block.
func WritePrivateKeyPEM(w io.Writer, priv ed25519.PrivateKey) error {
	return writeKeyPEM(w, priv, ed25519.PrivateKeySize, pemPrivate, "checkpoint signing key", x509.MarshalPKCS8PrivateKey)
}

// writeKeyPEM writes key, which must be size bytes long, to w as a typ PEM
// block of the DER marshal makes of it; what names the key in errors.
func writeKeyPEM[K ~[]byte](w io.Writer, key K, size int, typ, what string, marshal func(any) ([]byte, error)) error {
	if len(key) != size {
		return fmt.Errorf("write %s: not an Ed25519 %s (%d bytes)", what, strings.ToLower(typ), len(key))
	}
	der, err := marshal(key)
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	if err := pem.Encode(w, &pem.Block{Type: typ, Bytes: der}); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	return nil
}

// WritePrivateKeyFile writes priv as PEM (see WritePrivateKeyPEM) to a new
// file at path, readable by its owner only. It refuses to overwrite an
// existing file, so a key cannot be lost by accident.
func WritePrivateKeyFile(path string, priv ed25519.PrivateKey) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write key file %s: %w", path, cerr)
		}
	}()
	if err := WritePrivateKeyPEM(f, priv); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// ParsePrivateKeyPEM reads an Ed25519 private key from a PKCS #8
// "PRIVATE KEY" PEM block.
func ParsePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	return parseKeyPEM[ed25519.PrivateKey](data, pemPrivate, "PKCS #8", x509.ParsePKCS8PrivateKey,
		" as written by `signoff audit keygen`", "checkpoints need an Ed25519 key (make one with `signoff audit keygen`)")
}

// parseKeyPEM reads a K from data's first PEM block, which must be a want
// block in the named form (its bytes read by parse); hint tells where such
// a block comes from, and wrong ends the error for a key of another type.
// A private key where a public one is wanted is refused with advice: the
// private key stays on the server.
func parseKeyPEM[K any](data []byte, want, form string, parse func([]byte) (any, error), hint, wrong string) (K, error) {
	var zero K
	block, _ := pem.Decode(data)
	if block == nil {
		return zero, fmt.Errorf("no PEM block found; expected a %s %q block%s", form, want, hint)
	}
	if block.Type != want {
		if block.Type == pemPrivate {
			return zero, errors.New("this is a private key; give the verifier the public key (PKIX \"PUBLIC KEY\" PEM) and keep the private key on the server")
		}
		return zero, fmt.Errorf("PEM block is %q; expected a %s %q block%s", block.Type, form, want, hint)
	}
	key, err := parse(block.Bytes)
	if err != nil {
		return zero, fmt.Errorf("parse %s %s: %w", form, strings.ToLower(want), err)
	}
	k, ok := key.(K)
	if !ok {
		return zero, fmt.Errorf("the key is a %T; %s", key, wrong)
	}
	return k, nil
}

// ReadPrivateKeyFile reads the checkpoint signing key from a PEM file (see
// ParsePrivateKeyPEM).
func ReadPrivateKeyFile(path string) (ed25519.PrivateKey, error) {
	return readKeyFile(path, "checkpoint signing key", ParsePrivateKeyPEM)
}

// readKeyFile reads the PEM file at path and parses it with parse; what
// names the key in errors.
func readKeyFile[K any](path, what string, parse func([]byte) (K, error)) (K, error) {
	var zero K
	data, err := os.ReadFile(path)
	if err != nil {
		return zero, fmt.Errorf("read %s: %w", what, err)
	}
	key, err := parse(data)
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return key, nil
}

// WritePublicKeyPEM writes pub to w as a PKIX "PUBLIC KEY" PEM block, the
// form auditors pass to `signoff audit verify --pubkey`.
func WritePublicKeyPEM(w io.Writer, pub ed25519.PublicKey) error {
	return writeKeyPEM(w, pub, ed25519.PublicKeySize, pemPublic, "checkpoint public key", x509.MarshalPKIXPublicKey)
}

// ParsePublicKeyPEM reads an Ed25519 public key from a PKIX "PUBLIC KEY"
// PEM block. It refuses a private key: auditors should never need one.
func ParsePublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	return parseKeyPEM[ed25519.PublicKey](data, pemPublic, "PKIX", x509.ParsePKIXPublicKey,
		"", "checkpoints are signed with Ed25519")
}

// ReadPublicKeyFile reads a checkpoint public key from a PEM file (see
// ParsePublicKeyPEM).
func ReadPublicKeyFile(path string) (ed25519.PublicKey, error) {
	return readKeyFile(path, "checkpoint public key", ParsePublicKeyPEM)
}
