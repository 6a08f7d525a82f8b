// Package counts holds the map helpers of the in-memory event counters
// that /metrics reads: counts by label value, made on first use.
package counts

// Add adds n to (*m)[key], making the map when it is nil. The caller
// guards *m.
func Add[K comparable](m *map[K]uint64, key K, n uint64) {
	if *m == nil {
		*m = make(map[K]uint64)
	}
	(*m)[key] += n
}

// WithKeys puts each of keys that *m lacks into it with 0, making the map
// when it is nil, so that the known label values of a snapshot are present
// from the start and a rate over them works from the first event on.
func WithKeys[K comparable](m *map[K]uint64, keys ...K) {
	if *m == nil {
		*m = make(map[K]uint64, len(keys))
	}
	for _, k := range keys {
		if _, ok := (*m)[k]; !ok {
			(*m)[k] = 0
		}
	}
}
