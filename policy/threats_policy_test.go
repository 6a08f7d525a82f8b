package policy_test

// Attacks on the requester globs and the parameter patterns: values
// crafted to look like an allowed repository or parameter to a human, a
// prefix check or a line-oriented regexp, but not to signoff.

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/policy"
)

func threatAction(t *testing.T) *policy.Action {
	t.Helper()
	mk := func(expr string) *regexp.Regexp {
		re, err := policy.CompilePattern(expr)
		if err != nil {
			t.Fatal(err)
		}
		return re
	}
	return &policy.Action{
		Name: "deploy",
		Requesters: []policy.RequesterRule{
			{Issuer: "github", Claims: map[string]string{"repository": "acme/*", "ref": "refs/heads/main"}},
		},
		Params: map[string]policy.Param{
			"service": {Pattern: mk("[a-z-]+")},
			"env":     {Pattern: mk("api|web")},           // alternation: anchoring must cover both
			"region":  {Pattern: mk("^eu-[a-z]+-[0-9]$")}, // author-written anchors
			"tag":     {Pattern: mk(`v\d+\.\d+\.\d+`)},
			"any":     {Pattern: mk(".+")}, // '.' must not match a newline
		},
		Approvers: policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
		TTL:       time.Hour,
	}
}

// TestThreatRequesterGlobEdges runs look-alike repository claims through
// the matcher CheckRequester decides with. Every value here comes from a
// verified token: an attacker cannot choose it freely, but an issuer may
// let users name things (repositories, branches) close to a trusted one.
func TestThreatRequesterGlobEdges(t *testing.T) {
	a := threatAction(t)
	check := func(repo string) error {
		return a.CheckRequester("github", map[string]string{"repository": repo, "ref": "refs/heads/main"})
	}
	refused := map[string]string{
		"another owner ending in acme":  "evilacme/x",
		"owner with acme as prefix":     "acme-evil/x",
		"owner alone":                   "acme",
		"owner with a dot":              "acme./x",
		"owner, backslash":              `acme\x`,
		"full-width letters":            "ａｃｍｅ/x",
		"full-width solidus":            "acme／x",
		"Cyrillic a":                    "аcme/x",
		"upper case":                    "ACME/x",
		"mixed case":                    "Acme/x",
		"leading space":                 " acme/x",
		"leading slash":                 "/acme/x",
		"leading NUL":                   "\x00acme/x",
		"zero-width space inside owner": "ac\u200bme/x",
		"empty":                         "",
	}
	for name, repo := range refused {
		t.Run(name, func(t *testing.T) {
			if policy.Glob("acme/*", repo) {
				t.Fatalf("Glob(acme/*, %q) = true", repo)
			}
			err := check(repo)
			var r *policy.RefusalError
			if !errors.As(err, &r) || r.Code != policy.CodeForbidden {
				t.Fatalf("repository %q: err = %v, want a forbidden refusal", repo, err)
			}
		})
	}
	// Matched: "acme/" with nothing after it ('*' matches the empty run);
	// a repository claim cannot end in a slash on GitHub or GitLab, so
	// this only ever names acme's own namespace.
	for _, repo := range []string{"acme/x", "acme/", "acme/api-ＸＹＺ"} {
		if err := check(repo); err != nil {
			t.Errorf("repository %q refused: %v", repo, err)
		}
	}
	// The claim must be present, and the issuer name is compared exactly.
	if err := a.CheckRequester("github", map[string]string{"ref": "refs/heads/main"}); err == nil {
		t.Error("missing repository claim allowed")
	}
	if err := a.CheckRequester("GitHub", map[string]string{"repository": "acme/x", "ref": "refs/heads/main"}); err == nil {
		t.Error("issuer name in other case allowed")
	}
	// An exact pattern (ref) does not match a longer value that starts
	// with it, whatever follows: NUL, newline or another path.
	for _, ref := range []string{"refs/heads/main\x00", "refs/heads/main\n", "refs/heads/main/evil", "refs/heads/mainx", "refs/heads/Main"} {
		if err := a.CheckRequester("github", map[string]string{"repository": "acme/x", "ref": ref}); err == nil {
			t.Errorf("ref %q matched exact pattern refs/heads/main", ref)
		}
	}
}

// TestThreatGlobDotDot documents that acme/* matches "acme/../evil" and
// "acme/x\x00/../evil": Glob's * matches any run of characters, '/', '.'
// and NUL included, and Glob compares strings, it does not resolve paths.
//
// Is it a risk? The value is a claim of a token whose signature, issuer
// and audience were verified; it is the issuer's statement of what the
// repository is, not a path signoff or anyone downstream opens. GitHub
// and GitLab do not allow "..", NUL or '/' beyond owner/name in these
// claims, so no real token carries such a value, and a token that did
// would name a repository literally called that, under acme's
// namespace as the issuer sees it. It would only matter for an issuer
// that lets its users put arbitrary text in the claim a rule matches:
// such a rule must then not use a trailing '*'. This test pins the
// behaviour so that a change to it is a deliberate one.
func TestThreatGlobDotDot(t *testing.T) {
	a := threatAction(t)
	for _, repo := range []string{"acme/../evil", "acme/x/../../evil", "acme/x\x00/../evil", "acme/\nevil"} {
		if !policy.Glob("acme/*", repo) {
			t.Errorf("Glob(acme/*, %q) = false; the documented behaviour is true", repo)
		}
		if err := a.CheckRequester("github", map[string]string{"repository": repo, "ref": "refs/heads/main"}); err != nil {
			t.Errorf("repository %q: %v; the documented behaviour is allowed", repo, err)
		}
	}
	// What Glob does not do: let a value that merely contains the
	// pattern's text, or resolves to it as a path, through.
	for _, repo := range []string{"evil/../acme/x", "./acme/x", "evil/acme/x"} {
		if policy.Glob("acme/*", repo) {
			t.Errorf("Glob(acme/*, %q) = true", repo)
		}
	}
}

// TestThreatParamPatternTricks sends values that satisfy a pattern on one
// line, with a NUL, or with extra words or blanks around an allowed
// value. CompilePattern anchors the whole value, and Go's $ (without the
// m flag) matches only at the very end, so all of them are refused.
func TestThreatParamPatternTricks(t *testing.T) {
	a := threatAction(t)
	tricks := map[string][]string{
		"service": {
			"api\nevil", "api\n", "\napi", "api\r\nevil", "api\x00", "\x00api", "api\x00evil",
			"api evil", " api", "api ", "\tapi", "api\t", "api\u00a0", "api\u2028evil", "ａｐｉ", "API",
		},
		"env": {
			"api\nevil", "apix", "xweb", "api|web", "api\x00", " web", "web ", "api\nweb", "weB",
		},
		"region": {
			"eu-west-1\nevil", "eu-west-1 ", " eu-west-1", "eu-west-1\x00", "xeu-west-1", "eu-west-12",
		},
		"tag": {
			"v1.2.3\n", "v1.2.3 && rm -rf /", "v1.2.3;evil", "v1x2x3", "v1.2.3\x00", "v١.2.3", // Arabic-Indic digit
		},
		"any": {"a\nb", "\n", "a\n"},
	}
	for param, values := range tricks {
		for _, v := range values {
			err := a.CheckParams(map[string]string{param: v})
			var r *policy.RefusalError
			if !errors.As(err, &r) || r.Code != policy.CodeInvalidParams {
				t.Errorf("param %s = %q: err = %v, want invalid_params", param, v, err)
				continue
			}
			if !strings.Contains(r.Message, "does not match pattern") {
				t.Errorf("param %s = %q: refused for another reason: %s", param, v, r.Message)
			}
		}
	}
	// The honest values pass, so the refusals are the tricks' doing.
	for param, v := range map[string]string{"service": "api", "env": "web", "region": "eu-west-1", "tag": "v1.2.3", "any": "a b"} {
		if err := a.CheckParams(map[string]string{param: v}); err != nil {
			t.Errorf("param %s = %q refused: %v", param, v, err)
		}
	}
}
