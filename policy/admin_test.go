package policy

import "testing"

func TestIsAdmin(t *testing.T) {
	p := &Policy{AdminGroups: []string{"signoff-admins"}, AuditorGroups: []string{"audit"}}
	if !p.IsAdmin([]string{"dev", "signoff-admins"}) || p.IsAdmin([]string{"audit"}) || p.IsAdmin(nil) {
		t.Fatal("IsAdmin wrong")
	}
	// No admin groups configured: nobody is an admin, not even a token
	// with an empty group name.
	if (&Policy{}).IsAdmin([]string{""}) || (&Policy{AdminGroups: []string{""}}).IsAdmin([]string{""}) {
		t.Fatal("an empty group made an admin")
	}
}
