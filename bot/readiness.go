package bot

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ReadinessCheck is one more condition of GET /readyz, besides the store:
// nil when its part of signoff can do its work, else an error that says
// what is wrong and what to fix. It must answer quickly (it runs under
// the probe's two-second deadline) and reveal no secret: the message is
// part of the unauthenticated 503 answer.
type ReadinessCheck func(ctx context.Context) error

// extensions are the readiness checks added to a Server (metric sources
// go to its registry, see AddMetrics).
type extensions struct {
	mu     sync.Mutex
	checks []namedCheck
}

type namedCheck struct {
	name  string
	check ReadinessCheck
}

// AddReadinessCheck makes GET /readyz answer 503 not_ready, naming the
// check, while check fails. name says what is checked
// ("slack_socket_mode").
func (s *Server) AddReadinessCheck(name string, check ReadinessCheck) {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	s.ext.checks = append(s.ext.checks, namedCheck{name: name, check: check})
}

// failingChecks runs the readiness checks and returns a message per
// failing one ("name: error"), in the order they were added.
func (s *Server) failingChecks(ctx context.Context) []string {
	s.ext.mu.Lock()
	checks := slices.Clone(s.ext.checks)
	s.ext.mu.Unlock()
	var out []string
	for _, c := range checks {
		if err := c.check(ctx); err != nil {
			out = append(out, c.name+": "+err.Error())
		}
	}
	return out
}

// readinessMessage joins the failures of the readiness checks.
func readinessMessage(failing []string) string {
	if len(failing) == 1 {
		return "not ready: " + failing[0]
	}
	var b strings.Builder
	b.WriteString("not ready (" + strconv.Itoa(len(failing)) + " checks fail): ")
	b.WriteString(strings.Join(failing, "; "))
	return b.String()
}
