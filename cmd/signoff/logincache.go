package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The sign-ins of `signoff login`, one per server URL, in one JSON file
// under the user's config directory (os.UserConfigDir: $XDG_CONFIG_HOME or
// ~/.config on Linux, ~/Library/Application Support on macOS, %AppData% on
// Windows), in signoff/logins.json. The file holds ID and refresh tokens:
// it is written with mode 0600 in a 0700 directory, atomically (a
// temporary file renamed over it), and refused when others may read it.

// loginCacheFile is the cache's name inside the signoff config directory.
const loginCacheFile = "logins.json"

// loginCacheVersion is the format of the cache file.
const loginCacheVersion = 1

// loginEntry is one server's sign-in.
type loginEntry struct {
	// Server is the signoff server the token is for (loginKey form).
	Server string `json:"server"`
	// Issuer, ClientID, Scopes and GroupsClaim are the server's
	// /v1/login-config at sign-in: what a refresh needs.
	Issuer      string   `json:"issuer"`
	ClientID    string   `json:"client_id"`
	Scopes      []string `json:"scopes,omitempty"`
	GroupsClaim string   `json:"groups_claim,omitempty"`
	// Subject and Email name who signed in.
	Subject string `json:"subject"`
	Email   string `json:"email,omitempty"`
	// IDToken is the bearer token; Expiry its exp.
	IDToken string    `json:"id_token"`
	Expiry  time.Time `json:"expiry"`
	// RefreshToken renews IDToken; empty when the IdP issued none.
	RefreshToken string `json:"refresh_token,omitempty"`
}

// loginCache is the whole file.
type loginCache struct {
	Version int                    `json:"version"`
	Logins  map[string]*loginEntry `json:"logins"`
}

// loginCachePath is where the cache lives.
func loginCachePath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("cannot find your config directory for the signoff login cache: %w", err)
	}
	return filepath.Join(dir, "signoff", loginCacheFile), nil
}

// loginKey is the cache key of a server URL: scheme and host in lower
// case, no trailing slash.
func loginKey(server string) string {
	u, err := url.Parse(strings.TrimSpace(server))
	if err != nil || u.Host == "" {
		return strings.TrimSuffix(strings.TrimSpace(server), "/")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment, u.User = "", "", "", nil
	return u.String()
}

// readLoginCache reads the cache at path; a missing file is an empty
// cache.
func readLoginCache(path string) (*loginCache, error) {
	c := &loginCache{Version: loginCacheVersion, Logins: map[string]*loginEntry{}}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the signoff login cache: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read the signoff login cache: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("the signoff login cache %s may be read by others (mode %04o) and holds sign-in tokens: make it private (chmod 600 %s) or delete it and run signoff login again", path, fi.Mode().Perm(), path)
	}
	if err := json.NewDecoder(f).Decode(c); err != nil {
		return nil, fmt.Errorf("the signoff login cache %s is damaged (%v): delete it and run signoff login again", path, err)
	}
	if c.Version != loginCacheVersion {
		return nil, fmt.Errorf("the signoff login cache %s has format %d, this signoff reads %d: delete it and run signoff login again", path, c.Version, loginCacheVersion)
	}
	if c.Logins == nil {
		c.Logins = map[string]*loginEntry{}
	}
	return c, nil
}

// writeLoginCache replaces the cache at path atomically: a private
// temporary file in the same directory, synced, then renamed over it.
func writeLoginCache(path string, c *loginCache) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s for the signoff login cache: %w", dir, err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the signoff login cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".logins-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("write the signoff login cache: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("write the signoff login cache: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write the signoff login cache: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write the signoff login cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write the signoff login cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write the signoff login cache: %w", err)
	}
	return nil
}

// updateLoginCache reads the cache, lets change edit it and writes it
// back.
func updateLoginCache(path string, change func(*loginCache)) error {
	c, err := readLoginCache(path)
	if err != nil {
		return err
	}
	change(c)
	return writeLoginCache(path, c)
}
