package config

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The docs key check: every config key that README.md and docs/*.md
// mention must be a key signoff reads AND be documented in
// config.example.yaml.
//
// Both, because neither alone catches everything. The struct's
// mapstructure tags are the truth about which keys exist: a key path that
// does not resolve through them (storage.dns_file) is a typo or a key that
// was never built, whatever the example says. config.example.yaml is what
// operators read ("documents every key"), and what the issue asks the docs
// to agree with: a real key the docs teach but the example leaves out is a
// gap in the example. Keys the example only shows in comments (the idp,
// slack, teams and ssf sections, step_up) count as documented there.
//
// What counts as a key in the docs:
//
//   - inline code whose content is a key path: lower-case segments joined
//     by dots, optionally with [N] or [] after a segment, <placeholder> or *
//     for a name (actions.<name>.approvers, requesters[N].issuer,
//     actions.*.notify.slack, limits.*), or such a path followed by ": value"
//     (storage.driver: postgres). A path is checked when its first segment
//     is a top-level key (storage, idp, …), or a key of an action
//     (approvers.users, step_up.mfa_methods: checked under actions.<name>),
//     or one typo away from either while its second segment is a key of
//     that section (storgae.dsn_file, aprovers.groups). Anything else — Go
//     identifiers (approvals.Service: upper case), audit record types
//     (request.created, identity.unlinked), outbox kinds, file names, host
//     names, metric names — is not a config key and is left alone. A path
//     under a top-level key that does not resolve is still left alone when
//     it is clearly a file or host name (audit.key.pub, slack.com), or listed
//     in notConfigKeys with the reason.
//   - inline code naming an environment override, SIGNOFF_ + a key path
//     (SIGNOFF_LIMITS_REQUESTS_PER_MINUTE, SIGNOFF_SLACK_BOT_TOKEN(_FILE)),
//     when it starts with a top-level key's name; other SIGNOFF_ variables
//     ($SIGNOFF_TOKEN, $SIGNOFF_ID_TOKEN) are the command line's own.
//   - every key of a fenced ```yaml block that is signoff config: one whose
//     top level holds at least one top-level config key (a GitHub workflow,
//     a GitLab pipeline or a Slack manifest does not).

// notConfigKeys are spans that look like config keys but are something
// else, each with what it is.
var notConfigKeys = map[string]string{
	"ssf.manage": "an Okta API scope (docs/ssf.md)",
	"ssf.read":   "an Okta API scope (docs/ssf.md)",
}

// fileOrHostSuffix is the last segment of a dotted name that makes it a
// file or host name rather than a key.
var fileOrHostSuffix = map[string]bool{
	"jsonl": true, "json": true, "yaml": true, "yml": true, "db": true, "key": true, "pub": true, "pem": true,
	"md": true, "go": true, "csv": true, "zip": true, "png": true, "txt": true, "sh": true,
	"com": true, "net": true, "org": true, "io": true, "us": true, "cn": true,
}

// keySegment is one segment of a key path as the docs write it.
type keySegment struct {
	name    string // a key, an action or parameter name, "*" or "<placeholder>"
	indexed bool   // written with [N] or [] after it
}

var (
	segmentRE = regexp.MustCompile(`^([a-z0-9_*-]+|<[a-z_]+>)((?:\[[^\]]*\])*)$`)
	// keyPathRE is a whole span that is a key path with at least two
	// segments or an index.
	keyPathRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\[[^\]]*\])*((\.([a-z0-9_*-]+|<[a-z_]+>)(\[[^\]]*\])*)+|(\[[^\]]*\])+)$`)
	envVarRE  = regexp.MustCompile(`^\$?SIGNOFF_([A-Z0-9_]+?)(\(_FILE\))?(=.*)?$`)
	spanRE    = regexp.MustCompile("`([^`]+)`")
)

func splitKeyPath(path string) ([]keySegment, bool) {
	var segs []keySegment
	for _, part := range strings.Split(path, ".") {
		m := segmentRE.FindStringSubmatch(part)
		if m == nil {
			return nil, false
		}
		segs = append(segs, keySegment{name: m[1], indexed: m[2] != ""})
	}
	return segs, true
}

func isPlaceholder(name string) bool {
	return name == "*" || strings.HasPrefix(name, "<")
}

// resolveKey walks a key path through Config's mapstructure tags and
// returns its normal form (map keys and placeholders as *, list indexes
// dropped), or why it is not a key.
func resolveKey(path string) (string, error) {
	segs, ok := splitKeyPath(path)
	if !ok {
		return "", fmt.Errorf("not a key path")
	}
	t := reflect.TypeFor[Config]()
	var norm []string
	for i, seg := range segs {
		last := i == len(segs)-1
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		// A list of entries: its keys are those of an entry.
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map:
			norm = append(norm, "*")
			t = t.Elem()
		case reflect.Struct:
			if isPlaceholder(seg.name) {
				if !last {
					return "", fmt.Errorf("%q stands for any key of %s, so nothing can follow it", seg.name, strings.Join(norm, "."))
				}
				norm = append(norm, "*")
				continue
			}
			var names []string
			var field *tagField
			for _, f := range tagFields(t) {
				names = append(names, f.name)
				if f.name == seg.name {
					field = &f
				}
			}
			if field == nil {
				where := strings.Join(norm, ".")
				if where == "" {
					where = "the top level"
				}
				return "", fmt.Errorf("%s has no key %q; %s", where, seg.name, suggest(seg.name, names))
			}
			norm = append(norm, field.name)
			t = field.typ
		default:
			return "", fmt.Errorf("%s holds a value, not keys", strings.Join(norm, "."))
		}
		if seg.indexed {
			for t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			if t.Kind() != reflect.Slice {
				return "", fmt.Errorf("%s is not a list, so it takes no [index]", strings.Join(norm, "."))
			}
			t = t.Elem()
		}
	}
	return strings.Join(norm, "."), nil
}

// sectionKeys returns the key names of the struct at type t (pointers and
// lists of entries looked through), or nil.
func sectionKeys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for _, f := range tagFields(t) {
		out = append(out, f.name)
	}
	return out
}

func fieldType(t reflect.Type, name string) reflect.Type {
	for _, f := range tagFields(t) {
		if f.name == name {
			return f.typ
		}
	}
	return nil
}

// docKey is a key path a doc mentions, and where.
type docKey struct {
	where string // file:line
	text  string // as written
	path  string // the path to check, absolute
}

// keyRoot decides whether a span's path is meant as a config key: the
// absolute path to check and true, or false for anything else. A path
// whose first segment is a near miss of a section's name, with a real key
// of that section after it, is returned as written, to be reported.
func keyRoot(path string) (string, bool) {
	first, rest, _ := strings.Cut(path, ".")
	first, _, _ = strings.Cut(first, "[")
	top := reflect.TypeFor[Config]()
	action := reflect.TypeFor[ActionConfig]()
	if fieldType(top, first) != nil {
		return path, true
	}
	if fieldType(action, first) != nil {
		return "actions.<name>." + path, true
	}
	if rest == "" {
		return "", false
	}
	second, _, _ := strings.Cut(rest, ".")
	second, _, _ = strings.Cut(second, "[")
	for _, t := range []reflect.Type{top, action} {
		for _, f := range tagFields(t) {
			if typoDistance(first, f.name) == 1 && slices.Contains(sectionKeys(f.typ), second) {
				return path, true
			}
		}
	}
	return "", false
}

// typoDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of neighbours each cost 1,
// so that "storgae" is one typo away from "storage" while "notice" (an
// outbox kind) is two away from "notify".
func typoDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// envKey maps an environment variable named in a doc to its key: the key
// and true when the name starts with a top-level key's name (so it means
// a config override); "" and true when it does so but no key has that
// variable; false for a variable that is not a config override.
func envKey(name string) (string, bool) {
	rest := strings.ToLower(strings.TrimPrefix(name, EnvPrefix))
	meant := false
	for _, f := range tagFields(reflect.TypeFor[Config]()) {
		if rest == f.name || strings.HasPrefix(rest, f.name+"_") {
			meant = true
		}
	}
	if !meant {
		return "", false
	}
	for _, k := range EnvKeys() {
		if EnvVar(k) == name {
			return k, true
		}
	}
	return "", true
}

// docSpanKeys returns the keys one span of inline code names; bad lists
// environment variables that look like overrides of no key.
func docSpanKeys(span string) (keys []string, bad []string) {
	span = strings.TrimSpace(span)
	if m := envVarRE.FindStringSubmatch(span); m != nil {
		names := []string{EnvPrefix + m[1]}
		if m[2] != "" {
			names = append(names, EnvPrefix+m[1]+"_FILE")
		}
		for _, n := range names {
			k, meant := envKey(n)
			switch {
			case !meant:
			case k == "":
				bad = append(bad, n)
			default:
				keys = append(keys, k)
			}
		}
		return keys, bad
	}
	path := span
	if k, v, ok := strings.Cut(span, ":"); ok && (v == "" || strings.HasPrefix(v, " ")) {
		path = k
		if !strings.ContainsAny(k, ".[") {
			// name: {flow YAML} written inline (admins: {groups: [x]},
			// step_up: {max_age: 5m, …}): every key in it.
			root, ok := keyRoot(k)
			if !ok {
				return nil, nil
			}
			raw, err := parseYAML([]byte(span))
			if err != nil {
				return nil, nil
			}
			prefix := strings.TrimSuffix(root, k)
			for _, p := range yamlKeyPaths(raw, "") {
				keys = append(keys, prefix+p)
			}
			return keys, nil
		}
	}
	if !keyPathRE.MatchString(path) {
		return nil, nil
	}
	if root, ok := keyRoot(path); ok {
		keys = append(keys, root)
	}
	return keys, nil
}

// yamlKeyPaths lists every key path in a parsed YAML value (lists are
// looked through; "…" placeholders are skipped).
func yamlKeyPaths(v any, prefix string) []string {
	var out []string
	switch t := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(t)) {
			if k == "…" || k == "..." {
				continue
			}
			p := joinKey(prefix, k)
			out = append(out, p)
			out = append(out, yamlKeyPaths(t[k], p)...)
		}
	case []any:
		for _, e := range t {
			out = append(out, yamlKeyPaths(e, prefix)...)
		}
	}
	return out
}

// isConfigYAML reports whether a parsed YAML block is signoff config: at
// least one of its top-level keys is a config key.
func isConfigYAML(raw map[string]any) bool {
	top := reflect.TypeFor[Config]()
	for k := range raw {
		if fieldType(top, k) != nil {
			return true
		}
	}
	return false
}

// scanDoc returns the config keys a Markdown document mentions, and the
// problems found while reading it (an environment variable that overrides
// no key, a config YAML block that does not parse).
func scanDoc(name string, data []byte) (keys []docKey, problems []string) {
	lines := strings.Split(string(data), "\n")
	var para []string
	paraStart := 0
	flush := func() {
		text := strings.Join(para, "\n")
		for _, m := range spanRE.FindAllStringSubmatchIndex(text, -1) {
			span := text[m[2]:m[3]]
			where := fmt.Sprintf("%s:%d", name, paraStart+1+strings.Count(text[:m[0]], "\n"))
			ks, bad := docSpanKeys(span)
			for _, k := range ks {
				keys = append(keys, docKey{where: where, text: span, path: k})
			}
			for _, b := range bad {
				problems = append(problems, fmt.Sprintf("%s: `%s` names %s, which overrides no config key", where, span, b))
			}
		}
		para = nil
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if fence, info, ok := fenceOpen(line); ok {
			flush()
			start := i
			var block []string
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), fence); i++ {
				block = append(block, lines[i])
			}
			if info == "yaml" || info == "yml" {
				keys, problems = scanYAMLBlock(name, start+1, strings.Join(block, "\n"), keys, problems)
			}
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if para == nil {
			paraStart = i
		}
		para = append(para, line)
	}
	flush()
	return keys, problems
}

// fenceOpen recognizes a fenced code block's opening line.
func fenceOpen(line string) (fence, info string, ok bool) {
	t := strings.TrimSpace(line)
	for _, f := range []string{"```", "~~~"} {
		if strings.HasPrefix(t, f) {
			return f, strings.ToLower(strings.TrimSpace(strings.TrimLeft(t, f[:1]))), true
		}
	}
	return "", "", false
}

var topLevelLineRE = regexp.MustCompile(`^([a-z_]+):`)

func scanYAMLBlock(name string, fenceLine int, block string, keys []docKey, problems []string) ([]docKey, []string) {
	raw, err := parseYAML([]byte(block))
	if err != nil {
		// Report it only when it was meant as signoff config.
		for _, l := range strings.Split(block, "\n") {
			if m := topLevelLineRE.FindStringSubmatch(l); m != nil && fieldType(reflect.TypeFor[Config](), m[1]) != nil {
				problems = append(problems, fmt.Sprintf("%s:%d: a YAML block of signoff config does not parse: %v", name, fenceLine, err))
				break
			}
		}
		return keys, problems
	}
	if !isConfigYAML(raw) {
		return keys, problems
	}
	for _, p := range yamlKeyPaths(raw, "") {
		keys = append(keys, docKey{where: fmt.Sprintf("%s:%d (yaml block)", name, fenceLine), text: p, path: p})
	}
	return keys, problems
}

// exampleKeys returns the normal form of every key config.example.yaml
// shows, set or in a comment. A commented line's nesting is its column
// less two for each "#" before it: "#   issuer:" sits under "# idp:" as
// "  issuer:" under "idp:", and "#   # client_secret:" (a commented key
// inside a commented block) sits beside it. Lines of prose that happen to
// look like keys add paths that resolve to nothing, which are dropped.
func exampleKeys(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	keyRE := regexp.MustCompile(`^(?:- )?([a-z0-9_][a-z0-9_.-]*):(?:\s|$)`)
	type entry struct {
		indent int
		name   string
	}
	var stack []entry
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		col, hashes := 0, 0
		for col < len(line) && (line[col] == ' ' || line[col] == '#') {
			if line[col] == '#' {
				hashes++
			}
			col++
		}
		rest := line[col:]
		m := keyRE.FindStringSubmatch(rest)
		if m == nil {
			continue
		}
		if strings.HasPrefix(rest, "- ") {
			col += 2
		}
		indent := col - 2*hashes
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, entry{indent, m[1]})
		var parts []string
		for _, e := range stack {
			parts = append(parts, e.name)
		}
		if norm, err := resolveKey(strings.Join(parts, ".")); err == nil {
			out[norm] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkDocKeys returns a message for every key in keys that is not a
// config key or not in the example.
func checkDocKeys(keys []docKey, example map[string]bool) []string {
	var out []string
	for _, k := range keys {
		if _, ok := notConfigKeys[k.text]; ok {
			continue
		}
		norm, err := resolveKey(k.path)
		if err != nil {
			segs := strings.Split(k.path, ".")
			if fileOrHostSuffix[segs[len(segs)-1]] {
				continue
			}
			out = append(out, fmt.Sprintf("%s: `%s` is not a config key: %v", k.where, k.text, err))
			continue
		}
		documented := example[norm]
		if strings.HasSuffix(norm, ".*") && !documented {
			// limits.*: any key of the section will do.
			for e := range example {
				if strings.HasPrefix(e, strings.TrimSuffix(norm, "*")) {
					documented = true
					break
				}
			}
		}
		if !documented {
			out = append(out, fmt.Sprintf("%s: `%s` (%s) is a config key, but config.example.yaml does not show it: document it there", k.where, k.text, norm))
		}
	}
	return out
}

// repoDocs returns README.md and docs/*.md, by name relative to the
// repository root.
func repoDocs(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "README.md"))
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel("..", f)
		out[filepath.ToSlash(rel)] = data
	}
	return out
}

func readExample(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return exampleKeys(t, data)
}

// TestDocsMentionOnlyDocumentedKeys: every config key README.md and
// docs/*.md mention is a real key and is shown in config.example.yaml.
func TestDocsMentionOnlyDocumentedKeys(t *testing.T) {
	example := readExample(t)
	docs := repoDocs(t)
	names := make([]string, 0, len(docs))
	for n := range docs {
		names = append(names, n)
	}
	sort.Strings(names)
	total := 0
	for _, n := range names {
		keys, problems := scanDoc(n, docs[n])
		total += len(keys)
		problems = append(problems, checkDocKeys(keys, example)...)
		for _, p := range problems {
			t.Error(p)
		}
	}
	// The scan must be finding keys at all: the README alone names dozens.
	if total < 50 {
		t.Fatalf("found only %d config keys in the docs; is the scan broken?", total)
	}
}

// TestDocsKeyCheckCatchesTypos: the check reports a misspelled key in
// prose, in a key: value span, in an environment variable and in a YAML
// block, and leaves alone what only looks like a key.
func TestDocsKeyCheckCatchesTypos(t *testing.T) {
	example := readExample(t)
	doc := "# A guide\n\n" +
		"Put the DSN in `storage.dns_file`, and keep `limits.pending_per_requestor` low.\n" +
		"A misspelled section: `storgae.dsn_file`. An action key: `approvers.min_approval`.\n" +
		"Set `idp.link_match: emial` and export `SIGNOFF_LIMITS_CLICKS_PER_MINUTES`.\n\n" +
		"```yaml\nstorage:\n  driver: postgres\n  dsn_fil: /run/secrets/dsn\n```\n\n" +
		// None of these is a config key, or each is a correct one.
		"Not keys: `approvals.Service`, `storage.Store`, `request.created`, `identity.unlinked`, `admin.backup`,\n" +
		"`notify.slack` (an outbox kind, and a real action key), `audit.key.pub`, `audit.jsonl`, `slack.com`,\n" +
		"`notice.slack`, `config.example.yaml`, `signoff_requests_created_total`, `ssf.manage`, `$SIGNOFF_TOKEN`, `SIGNOFF_ID_TOKEN`,\n" +
		"`users.info`, `user.team_id`, `data.reason`.\n" +
		"Correct keys: `storage.dsn_file`, `actions.<name>.approvers`, `requesters[N].issuer`, `limits.*`,\n" +
		"`SIGNOFF_SLACK_BOT_TOKEN(_FILE)`, `admins: {groups: [signoff-admins]}`, `step_up.mfa_methods`.\n\n" +
		"```yaml\non: push\njobs: {deploy: {steps: []}}\n```\n"
	keys, problems := scanDoc("guide.md", []byte(doc))
	problems = append(problems, checkDocKeys(keys, example)...)
	got := strings.Join(problems, "\n")
	for _, want := range []string{
		"guide.md:3: `storage.dns_file` is not a config key: storage has no key \"dns_file\"; did you mean \"dsn_file\"?",
		"`limits.pending_per_requestor` is not a config key",
		"guide.md:4: `storgae.dsn_file` is not a config key: the top level has no key \"storgae\"; did you mean \"storage\"?",
		"`approvers.min_approval` is not a config key: actions.*.approvers has no key \"min_approval\"",
		"SIGNOFF_LIMITS_CLICKS_PER_MINUTES, which overrides no config key",
		"guide.md:7 (yaml block): `storage.dsn_fil` is not a config key",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the check does not report %q; it reports:\n%s", want, got)
		}
	}
	// Values are not checked (idp.link_match: emial names a real key), and
	// nothing on the lines of non-keys and correct keys is reported.
	if n := len(problems); n != 6 {
		t.Errorf("%d problems, want 6:\n%s", n, got)
	}

	// A real key the example does not show is reported as such.
	delete(example, "storage.dsn_file")
	got = strings.Join(checkDocKeys([]docKey{{where: "x.md:1", text: "storage.dsn_file", path: "storage.dsn_file"}}, example), "\n")
	if !strings.Contains(got, "config.example.yaml does not show it") {
		t.Errorf("a key missing from the example: %q", got)
	}
}

// TestExampleKeysCoverCommentedSections: the reading of config.example.yaml
// finds keys that are set, keys only shown in comments, and keys commented
// inside commented sections, each under its right parent.
func TestExampleKeysCoverCommentedSections(t *testing.T) {
	example := readExample(t)
	for _, k := range []string{
		"listen", "storage.path", "storage.dsn_file", "storage.dsn",
		"requesters.name", "requesters.person_claim",
		"idp.issuer", "idp.client_secret", "idp.token_encryption_key_file", "idp.token_encryption_key", "idp.link_match", "idp.cli_client_id",
		"slack.team_id", "slack.api_url", "teams.service_url_hosts", "ssf.bearer_token",
		"actions.*.requesters.claims", "actions.*.params.*.max_length", "actions.*.step_up.mfa_methods", "actions.*.on_approve.webhook.secret",
		"dev.approvers.groups", "log.format",
	} {
		if !example[k] {
			t.Errorf("config.example.yaml: %s not found", k)
		}
	}
	for _, k := range []string{"storage.name", "idp.dsn_file"} {
		if example[k] {
			t.Errorf("%s is not a key, but was read as one", k)
		}
	}
}
