// Package loopback keeps what dev mode serves within this machine: a Guard
// answers only requests addressed to a loopback name or address on the
// port signoff listens on, and refuses everything else before it reaches
// the handler.
//
// Dev mode listens on loopback only, but that alone does not keep other web
// sites out. With DNS rebinding, a page on an attacker's domain makes its
// own name resolve to 127.0.0.1; the browser then sends that page's
// requests to the dev server as same-origin requests and lets the page
// read the answers: the dev console (its CSRF token included), the dev
// issuer's sign-in pages, the webhook receiver's list. Those requests
// still carry the attacker's name in Host, which is what Guard checks.
// Origin, when a browser sends one, must be a page of this dev server too.
package loopback

import (
	"bytes"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/signoff-dev/signoff/internal/hostlist"
)

// Guard refuses requests not addressed to this machine by a loopback name
// or address on the listening port (DNS rebinding), and requests whose
// Origin is a page elsewhere.
type Guard struct {
	// port is the listening port, as Host and Origin carry it.
	port string
	// base is http://<listen address>, where the refusal page sends people.
	base string
}

// NewGuard returns a guard for a server listening on addr (host:port, the
// address actually bound), which must be a loopback address.
func NewGuard(addr string) (*Guard, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("loopback: %q is not host:port: %w", addr, err)
	}
	if !hostlist.IsLoopback(host) || port == "" || port == "0" {
		return nil, fmt.Errorf("loopback: %q is not a loopback address with a port", addr)
	}
	return &Guard{port: port, base: "http://" + net.JoinHostPort(host, port)}, nil
}

// Refusal says why Check refused a request.
type Refusal struct {
	// Status is 421 Misdirected Request for a foreign Host, 403 Forbidden
	// for a foreign Origin.
	Status int
	// Header names the header refused: "Host" or "Origin".
	Header string
	// Value is that header's value.
	Value string
}

// Check returns nil when r is addressed to a loopback name or address
// with the listening port (a Host without a port counts as port 80) and
// carries no Origin, the Origin "null", or an http origin on a loopback
// name or address with that port. Otherwise it says what is wrong.
func (g *Guard) Check(r *http.Request) *Refusal {
	if !g.loopbackHostPort(r.Host) {
		return &Refusal{Status: http.StatusMisdirectedRequest, Header: "Host", Value: r.Host}
	}
	for _, o := range r.Header.Values("Origin") {
		if o == "null" {
			// Sent by sandboxed frames and after cross-origin redirects;
			// the console's forms are still guarded by their CSRF token.
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "http" || u.User != nil || u.Path != "" || u.RawQuery != "" || !g.loopbackHostPort(u.Host) {
			return &Refusal{Status: http.StatusForbidden, Header: "Origin", Value: o}
		}
	}
	return nil
}

// loopbackHostPort reports whether hostport names a loopback host and the
// listening port.
func (g *Guard) loopbackHostPort(hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port: the scheme's default, http's 80.
		host, port = hostport, "80"
	}
	if port == "" {
		port = "80"
	}
	return host != "" && hostlist.IsLoopback(host) && port == g.port
}

// Wrap returns h behind the guard: a refused request gets a small HTML
// page that says why and what to open instead, and never reaches h.
func (g *Guard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ref := g.Check(r); ref != nil {
			g.refuse(w, r, ref)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Mux is where handlers are mounted (*bot.Server, *http.ServeMux).
type Mux interface {
	Handle(pattern string, h http.Handler)
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

// Mux returns a Mux that mounts every handler on m behind the guard.
func (g *Guard) Mux(m Mux) Mux { return guardedMux{g: g, m: m} }

type guardedMux struct {
	g *Guard
	m Mux
}

func (gm guardedMux) Handle(pattern string, h http.Handler) { gm.m.Handle(pattern, gm.g.Wrap(h)) }

func (gm guardedMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	gm.m.Handle(pattern, gm.g.Wrap(http.HandlerFunc(h)))
}

type refusalPage struct {
	Refusal
	Port string
	Open string
}

var refusalTemplate = template.Must(template.New("refusal").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>signoff dev mode: not served here</title></head>
<body>
<h1>Not served to this address</h1>
{{if eq .Header "Host"}}<p>This page belongs to signoff in dev mode, which answers only requests addressed to
this machine: <code>localhost</code>, <code>127.0.0.1</code> or <code>[::1]</code>, on port {{.Port}}.
This request was addressed to <code>{{.Value}}</code>.</p>
<p>A page on another site can point its own name at this machine (DNS rebinding) and then read
dev mode's pages and post to them through your browser, so dev mode refuses every other name.</p>
{{else}}<p>This request came from a page at <code>{{.Value}}</code>, not from a page of this dev server
(<code>localhost</code>, <code>127.0.0.1</code> or <code>[::1]</code>, on port {{.Port}}).
Pages of other sites may not use dev mode.</p>
{{end}}<p>Open <a href="{{.Open}}">{{.Open}}</a> instead.</p>
</body></html>
`))

// refuse answers a refused request.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, ref *Refusal) {
	open := g.base + "/dev"
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/") {
		// The same page under the loopback address.
		open = g.base + r.URL.EscapedPath()
	}
	var buf bytes.Buffer
	if err := refusalTemplate.Execute(&buf, refusalPage{Refusal: *ref, Port: g.port, Open: open}); err != nil {
		http.Error(w, "dev mode answers only requests addressed to localhost, 127.0.0.1 or [::1] on port "+g.port, ref.Status)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.WriteHeader(ref.Status)
	_, _ = w.Write(buf.Bytes())
}
