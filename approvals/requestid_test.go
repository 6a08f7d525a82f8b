package approvals_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
)

// Request ids made later sort later (the bbolt store appends them), while
// ids made in the same millisecond still differ in their random part.
func TestNewRequestIDSortsByTimeAndStaysUnguessable(t *testing.T) {
	form := regexp.MustCompile(`^req_[0-9a-v]{26}$`)
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	prev := approvals.NewRequestID(at)
	seen := map[string]bool{prev: true}
	for i := 1; i < 2000; i++ {
		now := at.Add(time.Duration(i) * time.Millisecond)
		id := approvals.NewRequestID(now)
		if !form.MatchString(id) {
			t.Fatalf("id %q is not req_ followed by 26 characters of 0-9a-v", id)
		}
		if id <= prev {
			t.Fatalf("id made at %v (%s) does not sort after the one made a millisecond earlier (%s)", now, id, prev)
		}
		prev = id
		seen[id] = true
	}
	// Same millisecond: the first 9 characters (45 of the 48 time bits) agree,
	// the 80 random bits must make every id different,
	// and the random part must not be a counter.
	a, b := approvals.NewRequestID(at), approvals.NewRequestID(at)
	if a == b || seen[a] || seen[b] {
		t.Fatalf("two ids made at the same instant collide: %s %s", a, b)
	}
	if a[:4+9] != b[:4+9] {
		t.Fatalf("ids made in the same millisecond differ in their time part: %s %s", a, b)
	}
	if same := sameCharacters(a[4+10:], b[4+10:]); same > 8 {
		t.Fatalf("random parts of %s and %s share %d characters: not random", a, b, same)
	}
}

func sameCharacters(a, b string) int {
	n := 0
	for i := range a {
		if a[i] == b[i] {
			n++
		}
	}
	return n
}
