package config_test

import (
	"slices"
	"strings"
	"testing"
)

// TestAdminsKeys: admins.groups from the file and the environment, into
// the policy, in the summary, and an empty entry refused.
func TestAdminsKeys(t *testing.T) {
	c := mustLoad(t, base, nil)
	p, err := c.Policy()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.AdminGroups) != 0 || p.IsAdmin([]string{"signoff-admins"}) {
		t.Errorf("without admins.groups nobody is an admin: %v", p.AdminGroups)
	}

	c = mustLoad(t, base+"admins: {groups: [signoff-admins, ops]}\n", nil)
	p, err = c.Policy()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.AdminGroups, []string{"signoff-admins", "ops"}) || !p.IsAdmin([]string{"ops"}) || p.IsAdmin([]string{"audit"}) {
		t.Errorf("admin groups from the file: %v", p.AdminGroups)
	}
	if s := c.Summary(); !strings.Contains(s, "signoff-admins") {
		t.Errorf("the summary does not name the admin groups:\n%s", s)
	}

	c = mustLoad(t, base+"admins: {groups: [signoff-admins]}\n", map[string]string{"SIGNOFF_ADMINS_GROUPS": "break-glass, ops"})
	if !slices.Equal(c.Admins.Groups, []string{"break-glass", "ops"}) {
		t.Errorf("from the environment: %v", c.Admins.Groups)
	}

	err = mustLoad(t, base+"admins: {groups: [\"\"]}\n", nil).Validate()
	if !slices.Contains(keysOf(problemsOf(t, err)), "admins.groups[0]") {
		t.Errorf("an empty admin group is not reported: %v", err)
	}
}
