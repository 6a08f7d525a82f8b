// Package keyfile writes the private key files signoff makes for itself on
// first start: dev mode's attestation key (cmd/signoff) and the dev
// issuer's signing key (oidc/devissuer). What goes into a file, and how it
// is read back, stays with its caller.
package keyfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// CreateNew makes the file at path (mode 0600, its directory 0700) and
// fills it with write, synced to disk. A file already at path is left
// alone and the error wraps fs.ErrExist, so a caller racing another
// process can read that process's file instead; a file whose writing
// fails is removed.
func CreateNew(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating key file: %w", err)
	}
	werr := write(f)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return fmt.Errorf("writing key file: %w", werr)
	}
	return nil
}
