package idtoken

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Decode decodes a JWT claims set, keeping numbers exact.
func Decode(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decoding claims: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("decoding claims: not a JSON object")
	}
	if dec.More() {
		return nil, fmt.Errorf("decoding claims: trailing data after the JSON object")
	}
	return m, nil
}

// Flatten renders every top-level string, number and boolean claim as
// a string (numbers exactly as the issuer wrote them, booleans as "true" and
// "false"). Nulls, lists and objects are left out. These are the values
// policy claim globs match.
func Flatten(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = v
		case json.Number:
			out[k] = v.String()
		case bool:
			out[k] = strconv.FormatBool(v)
		}
	}
	return out
}

// StringList reads a claim that holds a list of strings, or a single
// string (some issuers send one group that way). Non-string list elements
// are skipped.
func StringList(v any) []string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// MaxUnixSeconds is 9999-12-31T23:59:59Z; NumericDate values beyond it are
// refused rather than overflowing.
const MaxUnixSeconds = 253402300799

// NumericDate reads a NumericDate claim (RFC 7519 §2: seconds since the
// epoch, possibly fractional). present is false when the claim is absent
// or null.
func NumericDate(m map[string]any, name string) (t time.Time, present bool, err error) {
	v, ok := m[name]
	if !ok || v == nil {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, true, fmt.Errorf("%s claim is not a NumericDate (a number of seconds since 1970)", name)
	}
	if i, err := n.Int64(); err == nil {
		if i < -MaxUnixSeconds || i > MaxUnixSeconds {
			return time.Time{}, true, fmt.Errorf("%s claim is not a date before the year 10000", name)
		}
		return time.Unix(i, 0), true, nil
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < -MaxUnixSeconds || f > MaxUnixSeconds {
		return time.Time{}, true, fmt.Errorf("%s claim is not a NumericDate (a number of seconds since 1970) before the year 10000", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// MaxPersonValues is how many values one person claim may carry. A person
// claim names who someone is for the self-approval and self-review checks;
// a claim with more values is refused rather than cut short, because a
// value left out could be the very name a check should have matched.
const MaxPersonValues = 32

// PersonValues reads a person claim (idp.person_claims): a string, a
// number, or an array of them (a multi-valued attribute), trimmed, empty
// ones left out. Anything else holds no name. An array with more than
// MaxPersonValues names is an error: nothing of it is read.
func PersonValues(v any) ([]string, error) {
	one := func(e any) string {
		switch e := e.(type) {
		case string:
			return strings.TrimSpace(e)
		case json.Number:
			return e.String()
		}
		return ""
	}
	var out []string
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if s := one(e); s != "" {
				if len(out) == MaxPersonValues {
					return nil, fmt.Errorf("lists more than %d names", MaxPersonValues)
				}
				out = append(out, s)
			}
		}
		return out, nil
	}
	if s := one(v); s != "" {
		out = append(out, s)
	}
	return out, nil
}
