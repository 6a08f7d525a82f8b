// Package hostlist matches host names against an operator's list of
// allowed hosts, for the places where signoff sends a credential to a URL
// that arrived over the network (the Teams Bot Connector's serviceUrl).
//
// # The match rule
//
// An entry is either
//   - a host name or IP address ("smba.trafficmanager.net", "127.0.0.1",
//     "::1"), which matches that host exactly, or
//   - "*." followed by a domain of at least two labels ("*.example.com"),
//     which matches every host name below that domain ("a.example.com",
//     "a.b.example.com") but not the domain itself.
//
// Both sides are compared without regard to case and without a trailing
// dot. Ports, schemes, paths and user info are not part of an entry, and
// nothing is ever matched as a plain substring: "smba.trafficmanager.net"
// does not match "smba.trafficmanager.net.evil.example" or
// "evilsmba.trafficmanager.net".
package hostlist

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// List is a parsed list of allowed hosts. The zero List allows nothing.
type List struct {
	exact    map[string]bool
	suffixes []string // ".example.com" for "*.example.com"
}

// Parse checks and parses entries. An error names every bad entry.
func Parse(entries []string) (List, error) {
	l := List{exact: map[string]bool{}}
	var bad []string
	for _, raw := range entries {
		e, wildcard, err := parseEntry(raw)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		if wildcard {
			l.suffixes = append(l.suffixes, "."+e)
		} else {
			l.exact[e] = true
		}
	}
	if len(bad) > 0 {
		return List{}, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return l, nil
}

// CheckEntry reports why entry is not a valid list entry, or nil.
func CheckEntry(entry string) error {
	_, _, err := parseEntry(entry)
	return err
}

// parseEntry normalizes one entry; wildcard reports a "*." entry, whose
// domain is returned without the "*.".
func parseEntry(raw string) (host string, wildcard bool, err error) {
	e := normalize(strings.TrimSpace(raw))
	if rest, ok := strings.CutPrefix(e, "*."); ok {
		if !isDNSName(rest) || !strings.Contains(rest, ".") {
			return "", false, fmt.Errorf("%q is not a valid wildcard entry: write \"*.\" followed by a domain of at least two labels (*.example.com)", raw)
		}
		return rest, true, nil
	}
	if e != "" && net.ParseIP(e) != nil {
		return net.ParseIP(e).String(), false, nil
	}
	if !isDNSName(e) {
		return "", false, fmt.Errorf("%q is not a host name: write a bare host (smba.trafficmanager.net) or \"*.\" and a domain (*.example.com), without scheme, port or path", raw)
	}
	return e, false, nil
}

// normalize lower-cases a host, drops one trailing dot and the brackets
// of an IPv6 literal.
func normalize(h string) string {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return h
}

// isDNSName reports whether s is a host name of letters, digits and
// hyphens in dot-separated labels (underscores allowed, as some internal
// names use them).
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			default:
				return false
			}
		}
	}
	return true
}

// Empty reports whether the list allows nothing.
func (l List) Empty() bool { return len(l.exact) == 0 && len(l.suffixes) == 0 }

// Allows reports whether host (a bare host name or IP address, as
// url.URL.Hostname returns it) is on the list.
func (l List) Allows(host string) bool {
	h := normalize(host)
	if h == "" {
		return false
	}
	if ip := net.ParseIP(h); ip != nil {
		return l.exact[ip.String()]
	}
	if l.exact[h] {
		return true
	}
	for _, s := range l.suffixes {
		if len(h) > len(s) && strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// CheckURL parses raw as an absolute https URL (plain http only for a
// loopback host: a stand-in on this machine) and checks its host against
// the list. It returns the host it checked (for messages) and an error
// saying what is wrong: not such a URL, plain http to another machine
// (what is sent there, a bearer token, would cross the network in the
// clear), user info in it (never part of a service address, and a way to
// disguise the host), or a host not on the list.
func (l List) CheckURL(raw string) (host string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.User != nil {
		return u.Hostname(), fmt.Errorf("%q carries user info before its host", raw)
	}
	host = u.Hostname()
	if u.Scheme == "http" && !IsLoopback(host) {
		return host, fmt.Errorf("%q is plain http; only https is allowed to another machine", raw)
	}
	if !l.Allows(host) {
		return host, fmt.Errorf("host %q is not on the list of allowed hosts", host)
	}
	return host, nil
}

// IsLoopback reports whether host (without a port; an IPv6 address with or
// without brackets) names this machine: "localhost" in any case, an address
// in 127.0.0.0/8 or ::1. Names that merely start with a loopback address
// ("127.0.0.1.example.com") are not. It is the one rule behind every
// "https unless loopback" check and dev mode's loopback-only guards.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
