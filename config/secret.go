package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// Redacted is what a set Secret prints as.
const Redacted = "[redacted]"

// Secret is a configuration value that must never be logged: tokens,
// passwords, signing secrets, keys. Every way of printing or encoding it
// (fmt verbs including %#v and %x, String, GoString, JSON, text, YAML and
// slog) yields Redacted, or "" when the secret is empty. Reveal returns the
// value for the one place that needs it.
//
// Keep Secret fields exported: fmt cannot call the methods of an unexported
// struct field, so an unexported Secret inside a printed struct would show
// its value. A conversion such as string(s) also reveals it; use Reveal so
// that every use is easy to find.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s != "" }

// String returns Redacted, or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString returns the same as String, quoted, for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format prints String for every verb, so that no verb (%s, %v, %+v, %#v,
// %q, %x, …) reaches the value.
func (s Secret) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'q', verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, s.GoString())
	default:
		_, _ = io.WriteString(f, s.String())
	}
}

// MarshalJSON encodes String as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText returns String.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalYAML returns String (gopkg.in/yaml and go.yaml.in/yaml call it).
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// LogValue makes slog log String.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
