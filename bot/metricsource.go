package bot

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric is a metric family a component contributes to GET /metrics (see
// AddMetrics). It describes a snapshot of the component's own counters,
// so that the component need not import client_golang.
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
	// Labels are name, value pairs, the same names in every sample of a
	// family; values come from a fixed set (never ids, tokens or names
	// people choose).
	Labels []string
	Value  float64
}

// AddMetrics adds the families collect returns, at every scrape, to
// GET /metrics: collect is registered as a prometheus.Collector of the
// server's registry. A family whose name does not start with signoff_,
// whose type is neither gauge nor counter, or that has no samples is left
// out. The families of a source may come and go from one scrape to the
// next (the sweep gauge appears after the first pass), so the collector
// describes none up front and the registry checks its samples at each
// scrape instead: one that clashes with another collector's family is
// logged and left out, and the rest is served.
func (s *Server) AddMetrics(collect func() []Metric) {
	s.metrics.registry.MustRegister(metricSource(collect))
}

// metricSource is the prometheus.Collector of an AddMetrics source.
type metricSource func() []Metric

// Describe implements prometheus.Collector: nothing (an unchecked
// collector, see AddMetrics).
func (metricSource) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector: const metrics from the source's
// snapshot.
func (collect metricSource) Collect(ch chan<- prometheus.Metric) {
	for _, m := range collect() {
		var typ prometheus.ValueType
		switch m.Type {
		case "gauge":
			typ = prometheus.GaugeValue
		case "counter":
			typ = prometheus.CounterValue
		default:
			continue
		}
		if len(m.Samples) == 0 || !strings.HasPrefix(m.Name, "signoff_") {
			continue
		}
		var names []string
		for i := 0; i+1 < len(m.Samples[0].Labels); i += 2 {
			names = append(names, m.Samples[0].Labels[i])
		}
		desc := prometheus.NewDesc(m.Name, m.Help, names, nil)
		for _, smp := range m.Samples {
			metric, err := constMetric(desc, typ, names, smp)
			if err != nil {
				metric = prometheus.NewInvalidMetric(desc, err)
			}
			ch <- metric
		}
	}
}

// constMetric is one sample of a family whose label names are names.
func constMetric(desc *prometheus.Desc, typ prometheus.ValueType, names []string, smp MetricSample) (prometheus.Metric, error) {
	if len(smp.Labels) != 2*len(names) {
		return nil, fmt.Errorf("sample labels %q do not match the family's label names %q", smp.Labels, names)
	}
	values := make([]string, len(names))
	for i, name := range names {
		if smp.Labels[2*i] != name {
			return nil, fmt.Errorf("sample labels %q do not match the family's label names %q", smp.Labels, names)
		}
		values[i] = labelValue(smp.Labels[2*i+1])
	}
	return prometheus.NewConstMetric(desc, typ, smp.Value, values...)
}
