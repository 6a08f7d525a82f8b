package bot

import (
	"net/http"
	"strings"
	"sync"
)

// Route is one pattern registered on the front door, by New or through
// Handle and HandleFunc.
type Route struct {
	// Method is the pattern's method ("GET" also answers HEAD), or "" for
	// a pattern that takes every method: the /v1 paths' twins that answer
	// other methods with a JSON 405, and the /v1/ catch-all's JSON 404.
	Method string
	// Host is the pattern's host; "" (every route signoff registers) for
	// any host.
	Host string
	// Path is the pattern's path, with its wildcards ("/v1/requests/{id}").
	Path string
}

func (r Route) String() string {
	if r.Method == "" {
		return r.Host + r.Path
	}
	return r.Method + " " + r.Host + r.Path
}

// Routes lists the routes registered so far, in the order they were: what
// the front door answers, for a test to hold the API's OpenAPI document
// (api.OpenAPI) to.
func (s *Server) Routes() []Route { return s.mux.routes() }

// routeMux is the front door's router. It remembers each pattern it
// accepts, for Routes.
type routeMux struct {
	*http.ServeMux
	mu       sync.Mutex
	patterns []Route
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// Handle registers h like http.ServeMux.Handle, which panics on a
// malformed or conflicting pattern before it is recorded.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	m.record(pattern)
}

// HandleFunc registers h like http.ServeMux.HandleFunc.
func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.ServeMux.HandleFunc(pattern, h)
	m.record(pattern)
}

func (m *routeMux) record(pattern string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.patterns = append(m.patterns, parseRoute(pattern))
}

func (m *routeMux) routes() []Route {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Route, len(m.patterns))
	copy(out, m.patterns)
	return out
}

// parseRoute splits a pattern http.ServeMux accepted,
// "[METHOD ][HOST]/[PATH]", into its parts.
func parseRoute(pattern string) Route {
	var r Route
	rest := pattern
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		r.Method, rest = pattern[:i], strings.TrimLeft(pattern[i:], " \t")
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		i = len(rest)
	}
	r.Host, r.Path = rest[:i], rest[i:]
	return r
}
