package loadrig

import (
	"context"
	"testing"
)

// TestTeamsStandInKeepsNoBodies: the Teams rig's Bot Framework stand-in
// records the cards posted but keeps none of their bodies, which would
// otherwise pile up in the heap the server under load collects.
func TestTeamsStandInKeepsNoBodies(t *testing.T) {
	ctx := context.Background()
	r, err := Start(ctx, Options{Platform: Teams, Dir: t.TempDir(), Requests: 2, Approvers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop(ctx)
	calls := r.bf.Calls()
	posted := 0
	for _, c := range calls {
		if c.OK() && c.Method == "POST" {
			posted++
		}
		if c.Body != nil {
			t.Errorf("the stand-in kept the body of a %s call to %s", c.Method, c.Conversation)
		}
	}
	if posted < 2 {
		t.Errorf("%d cards posted, want the 2 pending requests' cards; calls %+v", posted, calls)
	}
}
