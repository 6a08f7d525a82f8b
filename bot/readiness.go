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

// Metric is a metric family a component contributes to GET /metrics (see
// AddMetrics), written after the server's own families.
type Metric struct {
	// Name is the family's name (signoff_…).
	Name string
	// Type is "gauge" or "counter".
	Type string
	// Help is the family's HELP text.
	Help string
	// Samples are its values; a family without samples is left out.
	Samples []MetricSample
}

// MetricSample is one value of a Metric.
type MetricSample struct {
	// Labels are name, value pairs; values come from a fixed set (never
	// ids, tokens or names people choose).
	Labels []string
	Value  float64
}

// extensions are the readiness checks and metric sources added to a
// Server.
type extensions struct {
	mu      sync.Mutex
	checks  []namedCheck
	metrics []func() []Metric
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

// AddMetrics adds the families collect returns, at every scrape, to
// GET /metrics.
func (s *Server) AddMetrics(collect func() []Metric) {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	s.ext.metrics = append(s.ext.metrics, collect)
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

// writeExtraMetrics appends the families of the metric sources.
func (s *Server) writeExtraMetrics(e *expositionWriter) {
	s.ext.mu.Lock()
	sources := slices.Clone(s.ext.metrics)
	s.ext.mu.Unlock()
	for _, collect := range sources {
		for _, m := range collect() {
			if len(m.Samples) == 0 || (m.Type != "gauge" && m.Type != "counter") || !strings.HasPrefix(m.Name, "signoff_") {
				continue
			}
			e.family(m.Name, m.Type, m.Help)
			for _, smp := range m.Samples {
				e.sample(m.Name, formatFloat(smp.Value), smp.Labels...)
			}
		}
	}
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
