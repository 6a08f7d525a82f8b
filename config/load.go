package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the name of every environment override.
const EnvPrefix = "SIGNOFF_"

// maxSecretFileSize caps what a *_file may hold; anything bigger is not a
// secret but a wrong path.
const maxSecretFileSize = 1 << 20

// LoadOptions says where Load reads from.
type LoadOptions struct {
	// Path is the YAML file. Empty means no file: defaults and environment
	// only.
	Path string
	// Data, when non-nil, is the YAML itself; Path then only names it in
	// messages. This lets a caller load an embedded file.
	Data []byte
	// LookupEnv reads the environment; nil means os.LookupEnv. Tests inject
	// their own so as not to touch the process environment.
	LookupEnv func(key string) (string, bool)
}

// EnvMap returns a LookupEnv function reading from m.
func EnvMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// Load reads the configuration: built-in defaults, then the YAML file, then
// SIGNOFF_* environment overrides (see the package documentation). It
// refuses unknown keys and values of the wrong type, applies per-entry
// defaults and resolves every *_file secret. All such problems are returned
// together as a *ValidationError; a file that cannot be read or parsed is
// returned as a wrapped error (errors.Is(err, fs.ErrNotExist) works).
//
// Load does not call Validate.
func Load(opts LoadOptions) (*Config, error) {
	cfg, err := load(opts)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// load is Load, returning with a *ValidationError the config as far as it
// could be decoded (for LoadAndValidate); nil when the file could not be
// read or parsed.
func load(opts LoadOptions) (*Config, error) {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	name := opts.Path
	if name == "" {
		name = "config"
	}

	data := opts.Data
	if data == nil && opts.Path != "" {
		b, err := os.ReadFile(opts.Path)
		if err != nil {
			return nil, fmt.Errorf("reading config file: %w", err)
		}
		data = b
	}
	raw, err := parseYAML(data)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", name, err)
	}

	// Actions keep their keys' case (parameter and claim names are data),
	// which viper would fold, so they bypass viper: they come from the file
	// only.
	var rawActions any
	var ps problems
	for k, v := range raw {
		if strings.EqualFold(k, "actions") {
			delete(raw, k)
			if k != "actions" {
				ps.add(k, "unknown key; did you mean %q?", "actions")
				continue
			}
			rawActions = v
		}
	}

	v := viper.New()
	v.SetConfigType("yaml")
	defaults := reflect.ValueOf(Default()).Elem()
	for _, k := range EnvKeys() {
		if d := valueAt(defaults, k); d.IsValid() && !d.IsZero() {
			v.SetDefault(k, d.Interface())
		}
	}
	if err := v.MergeConfigMap(raw); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	// Environment overrides are bound key by key through lookup rather than
	// viper's AutomaticEnv/BindEnv, which read the process environment
	// directly and do not feed Unmarshal for keys absent from the file.
	fromEnv := map[string]string{}
	for _, k := range EnvKeys() {
		envName := EnvVar(k)
		val, ok := lookup(envName)
		if !ok || val == "" {
			continue
		}
		fromEnv[k] = envName
		if envKeyKinds()[k] == reflect.Slice {
			v.Set(k, splitList(val))
		} else {
			v.Set(k, val)
		}
	}

	settings := normalize(v.AllSettings()).(map[string]any)
	checkKeys(reflect.TypeFor[Config](), settings, "", &ps)
	if rawActions != nil {
		checkKeys(reflect.TypeFor[map[string]ActionConfig](), rawActions, "actions", &ps)
	}
	// Decode anyway, so that type errors and secret files are reported
	// with the unknown keys; mapstructure's own report of those keys (its
	// "has invalid keys") then repeats checkKeys and is dropped.
	unknownReported := len(ps) > 0

	cfg := &Config{source: opts.Path, fromEnv: fromEnv}
	if err := v.UnmarshalExact(cfg, viper.DecodeHook(decodeHook())); err != nil {
		decodeProblems(err, "", fromEnv, unknownReported, &ps)
	}
	cfg.Actions = decodeActions(rawActions, unknownReported, &ps)
	if w := &cfg.Audit.Publish.Webhook; w.Configured() && !v.IsSet(publishWebhookTimeoutKey) {
		w.Timeout = DefaultWebhookTimeout // as actions' webhooks get it (actionDefaults)
	}

	for i := range cfg.Requesters {
		if cfg.Requesters[i].PersonClaim == "" {
			cfg.Requesters[i].PersonClaim = DefaultPersonClaim
		}
	}
	resolveSecrets(reflect.ValueOf(cfg).Elem(), "", fromEnv, &ps)
	if len(ps) > 0 {
		return cfg, ps.err()
	}
	return cfg, nil
}

// LoadAndValidate is Load followed by Validate, reporting every problem
// of both at once: an unknown key or a value of the wrong type does not
// hide the rest. When loading found problems, the config is validated as
// far as it could be decoded, and a validation problem of a key that
// already has a loading problem (or lies under one) is left out, since it
// only repeats it. On any problem it returns a *ValidationError and a nil
// config; a file that cannot be read or parsed is returned as Load
// returns it.
func LoadAndValidate(opts LoadOptions) (*Config, error) {
	partial, loadErr := load(opts)
	var loadProblems *ValidationError
	if loadErr != nil && !errors.As(loadErr, &loadProblems) {
		return nil, loadErr
	}
	var all problems
	if loadProblems != nil {
		all = append(all, loadProblems.Problems...)
	}
	if err := partial.Validate(); err != nil {
		var vp *ValidationError
		if !errors.As(err, &vp) {
			return nil, err
		}
		for _, p := range vp.Problems {
			if !coveredBy(p.Key, all) {
				all = append(all, p)
			}
		}
	}
	if len(all) > 0 {
		return nil, all.err()
	}
	return partial, nil
}

// coveredBy reports whether key is, or lies under, a key with a problem.
func coveredBy(key string, ps problems) bool {
	for _, p := range ps {
		if p.Key == "" {
			continue
		}
		if key == p.Key || strings.HasPrefix(key, p.Key+".") || strings.HasPrefix(key, p.Key+"[") {
			return true
		}
	}
	return false
}

// parseYAML decodes a YAML document into a map with string keys at every
// level, preserving the keys' case. An empty document is an empty map.
func parseYAML(data []byte) (map[string]any, error) {
	var doc any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, errors.New("holds more than one YAML document; write a single document")
	}
	if doc == nil {
		return map[string]any{}, nil
	}
	m, ok := normalize(doc).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the top level is a %s, not a mapping of keys to values", yamlKind(doc))
	}
	return m, nil
}

// normalize deep-copies v, turning every map into a map[string]any.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = normalize(e)
		}
		return m
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = normalize(e)
		}
		return s
	default:
		return v
	}
}

func yamlKind(v any) string {
	switch v.(type) {
	case map[string]any, map[any]any:
		return "mapping"
	case []any:
		return "list"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int, int64, uint64, float64:
		return "number"
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// EnvVar returns the environment variable overriding key: EnvPrefix plus
// the key upper-cased with dots replaced by underscores
// ("slack.signing_secret" → "SIGNOFF_SLACK_SIGNING_SECRET").
func EnvVar(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// EnvKeys returns, sorted, every key that an environment variable can
// override: each scalar or list-of-strings field reachable from Config
// through nested sections, derived from the mapstructure tags (so a new
// field gets its override automatically). Lists of entries (requesters,
// dev.approvers) and the actions map are excluded.
func EnvKeys() []string {
	return slices.Sorted(maps.Keys(envKeyKinds()))
}

var envKeyKinds = sync.OnceValue(func() map[string]reflect.Kind {
	m := map[string]reflect.Kind{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for _, f := range tagFields(t) {
			key := joinKey(prefix, f.name)
			ft := f.typ
			switch {
			case ft.Kind() == reflect.Struct:
				walk(ft, key)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
				m[key] = reflect.Slice
			case ft.Kind() == reflect.Slice, ft.Kind() == reflect.Map, ft.Kind() == reflect.Pointer:
				// entries and maps come from the file only
			default:
				m[key] = ft.Kind()
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return m
})

// splitList parses a comma-separated environment value.
func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type tagField struct {
	name  string
	index int
	typ   reflect.Type
}

// tagFields lists t's exported fields with their mapstructure names.
func tagFields(t reflect.Type) []tagField {
	var out []tagField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, tagField{name: name, index: i, typ: f.Type})
	}
	return out
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// valueAt returns the field of struct v at the dotted key path.
func valueAt(v reflect.Value, key string) reflect.Value {
	for _, part := range strings.Split(key, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}
		}
		found := false
		for _, f := range tagFields(v.Type()) {
			if f.name == part {
				v = v.Field(f.index)
				found = true
				break
			}
		}
		if !found {
			return reflect.Value{}
		}
	}
	return v
}

// checkKeys reports every key of raw that type t does not declare, with its
// full path and, when one is close, the key probably meant.
func checkKeys(t reflect.Type, raw any, path string, ps *problems) {
	if raw == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return // the decoder reports the type mismatch
		}
		fields := tagFields(t)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			var ft reflect.Type
			for _, f := range fields {
				if f.name == k {
					ft = f.typ
					break
				}
			}
			if ft == nil {
				names := make([]string, len(fields))
				for i, f := range fields {
					names[i] = f.name
				}
				ps.add(joinKey(path, k), "unknown key; %s", suggest(k, names))
				continue
			}
			checkKeys(ft, m[k], joinKey(path, k), ps)
		}
	case reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			return
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			checkKeys(t.Elem(), m[k], joinKey(path, k), ps)
		}
	case reflect.Slice:
		s, ok := raw.([]any)
		if !ok {
			return
		}
		for i, e := range s {
			checkKeys(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i), ps)
		}
	}
}

// suggest names the known key closest to k, or lists them all.
func suggest(k string, known []string) string {
	best, bestDist := "", 0
	for _, n := range known {
		d := editDistance(strings.ToLower(k), n)
		if best == "" || d < bestDist {
			best, bestDist = n, d
		}
	}
	if best != "" && (bestDist <= 2 || bestDist*3 <= len(best)) {
		return fmt.Sprintf("did you mean %q?", best)
	}
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)
	return "known keys here: " + strings.Join(sorted, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// actionDefaults are applied to each action's raw map where the key is
// absent, so that an explicit zero stays visible to Validate. A default
// whose parent is absent is applied only when createParent is set.
var actionDefaults = []struct {
	path         []string
	value        any
	createParent bool
}{
	{[]string{"ttl"}, DefaultActionTTL.String(), true},
	{[]string{"approvers", "min_approvals"}, DefaultMinApprovals, true},
	{[]string{"on_approve", "webhook", "timeout"}, DefaultWebhookTimeout.String(), false},
	{[]string{"attestation", "audience"}, DefaultAttestationAudience, true},
	{[]string{"break_glass", "within"}, DefaultBreakGlassWithin.String(), false},
	{[]string{"break_glass", "review", "min_approvals"}, DefaultMinApprovals, false},
}

// decodeActions decodes the raw actions map, one action at a time so that
// errors name the action.
func decodeActions(raw any, unknownReported bool, ps *problems) map[string]ActionConfig {
	if raw == nil {
		return nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		ps.add("actions", "must be a mapping of action names to actions, not a %s", yamlKind(raw))
		return nil
	}
	out := make(map[string]ActionConfig, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		prefix := joinKey("actions", name)
		am, ok := m[name].(map[string]any)
		if m[name] == nil {
			am, ok = map[string]any{}, true
		}
		if !ok {
			ps.add(prefix, "must be a mapping (description, requesters, params, approvers, …), not a %s", yamlKind(m[name]))
			continue
		}
		am = normalize(am).(map[string]any) // our copy: defaults must not leak into the caller's data
		for _, d := range actionDefaults {
			setDefault(am, d.path, d.value, d.createParent)
		}
		var a ActionConfig
		dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			Result:           &a,
			ErrorUnused:      true,
			WeaklyTypedInput: true,
			DecodeHook:       decodeHook(),
		})
		if err != nil {
			ps.add(prefix, "internal error: %v", err)
			continue
		}
		if err := dec.Decode(am); err != nil {
			decodeProblems(err, prefix, nil, unknownReported, ps)
		}
		out[name] = a // even when partly decoded, so its secret files are checked too
	}
	return out
}

func setDefault(m map[string]any, path []string, value any, createParent bool) {
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			if m[p] != nil || !createParent {
				return // absent (not created) or a wrong type the decoder will report
			}
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	last := path[len(path)-1]
	if _, ok := m[last]; !ok {
		m[last] = value
	}
}

var durationType = reflect.TypeFor[time.Duration]()

// decodeHook converts duration strings strictly: a bare number is refused
// rather than read as nanoseconds. A YAML boolean where text is expected (a
// claim rule such as `ref_protected: true`) becomes "true" or "false", the
// text a token carries, not the "1" or "0" of a weakly typed decode, which
// would make the rule one that never matches.
func decodeHook() mapstructure.DecodeHookFunc {
	return func(from, to reflect.Type, data any) (any, error) {
		if to.Kind() == reflect.String && from.Kind() == reflect.Bool {
			return strconv.FormatBool(reflect.ValueOf(data).Bool()), nil
		}
		if t, ok := data.(time.Time); ok && to.Kind() == reflect.String {
			// An unquoted YAML timestamp (freeze.from): back to the
			// text it was, for the validation that parses it.
			return t.Format(time.RFC3339Nano), nil
		}
		if to != durationType || from == durationType {
			return data, nil
		}
		switch d := data.(type) {
		case string:
			v, err := time.ParseDuration(strings.TrimSpace(d))
			if err != nil {
				return nil, fmt.Errorf("%q is not a duration; write a Go duration such as \"90s\", \"10m\" or \"1h\"", d)
			}
			return v, nil
		case nil:
			return data, nil
		default:
			return nil, fmt.Errorf("%v has no unit; write a Go duration such as \"90s\", \"10m\" or \"1h\"", d)
		}
	}
}

// decodeProblems turns mapstructure's errors into problems keyed by path.
// With unknownReported, mapstructure's reports of unknown keys are dropped:
// checkKeys has reported them, with better messages.
func decodeProblems(err error, prefix string, fromEnv map[string]string, unknownReported bool, ps *problems) {
	var walk func(error)
	walk = func(err error) {
		var de *mapstructure.DecodeError
		if errors.As(err, &de) && !isJoined(err) {
			if unknownReported && strings.HasPrefix(de.Unwrap().Error(), "has invalid keys:") {
				return
			}
			key := joinKey(prefix, mapstructureKey(de.Name()))
			msg := describeDecodeError(de.Unwrap())
			if env := fromEnv[key]; env != "" {
				msg += " (from $" + env + ")"
			}
			ps.add(key, "%s", msg)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if u := errors.Unwrap(err); u != nil {
			walk(u)
			return
		}
		ps.add(prefix, "%v", err)
	}
	walk(err)
}

func isJoined(err error) bool {
	for err != nil {
		if _, ok := err.(*mapstructure.DecodeError); ok {
			return false
		}
		if _, ok := err.(interface{ Unwrap() []error }); ok {
			return true
		}
		err = errors.Unwrap(err)
	}
	return false
}

// mapstructureKey rewrites mapstructure's field names (params[service].x)
// as config keys (params.service.x); list indexes stay ([0]).
func mapstructureKey(name string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(name, '[')
		if i < 0 {
			b.WriteString(name)
			return b.String()
		}
		j := strings.IndexByte(name[i:], ']')
		if j < 0 {
			b.WriteString(name)
			return b.String()
		}
		inner := name[i+1 : i+j]
		b.WriteString(name[:i])
		if isDigits(inner) {
			b.WriteString("[" + inner + "]")
		} else {
			b.WriteString("." + inner)
		}
		name = name[i+j+1:]
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

var secretType = reflect.TypeFor[Secret]()

// describeDecodeError phrases a type mismatch for an operator, without
// echoing values headed for a Secret.
func describeDecodeError(err error) string {
	var pe *mapstructure.ParseError
	if errors.As(err, &pe) {
		if pe.Expected.Type() == secretType {
			return "cannot be parsed as " + typeWord(pe.Expected.Type())
		}
		return fmt.Sprintf("%s is not %s", quoteValue(pe.Value), typeWord(pe.Expected.Type()))
	}
	var ue *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ue) {
		return fmt.Sprintf("want %s, got a %s", typeWord(ue.Expected.Type()), yamlKind(ue.Value))
	}
	if kind, ok := strings.CutPrefix(err.Error(), "expected a map or struct, got "); ok {
		words := map[string]string{"slice": "list", "array": "list", "string": "string", "bool": "boolean", "map": "mapping"}
		kind = strings.Trim(kind, `"`)
		w, ok := words[kind]
		if !ok {
			w = "number"
		}
		return "want a mapping, got a " + w
	}
	return err.Error()
}

func quoteValue(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

func typeWord(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Map, t.Kind() == reflect.Struct, t.Kind() == reflect.Pointer:
		return "a mapping"
	default:
		return t.String()
	}
}

// resolveSecrets walks v and, for every Secret field with a *_file twin,
// reads the file into the Secret. Both set, or an unreadable or empty file,
// is a problem naming the key(s) and the path, never the content.
func resolveSecrets(v reflect.Value, path string, fromEnv map[string]string, ps *problems) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			resolveSecrets(v.Elem(), path, fromEnv, ps)
		}
	case reflect.Struct:
		fields := tagFields(v.Type())
		for _, f := range fields {
			fv := v.Field(f.index)
			if f.typ != secretType {
				resolveSecrets(fv, joinKey(path, f.name), fromEnv, ps)
				continue
			}
			var fileField reflect.Value
			for _, g := range fields {
				if g.name == f.name+"_file" && g.typ.Kind() == reflect.String {
					fileField = v.Field(g.index)
				}
			}
			if !fileField.IsValid() || fileField.String() == "" {
				continue
			}
			key, fileKey := joinKey(path, f.name), joinKey(path, f.name+"_file")
			if fv.String() != "" {
				ps.add(key, "both %s and %s are set; set only one", origin(key, fromEnv), origin(fileKey, fromEnv))
				continue
			}
			content, err := readSecretFile(fileField.String())
			if err != nil {
				ps.add(fileKey, "%v", err)
				continue
			}
			fv.SetString(content)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return
		}
		if !hasSecret(v.Type().Elem()) {
			return
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			// Map elements are not addressable: resolve a copy, store it back.
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			resolveSecrets(e, joinKey(path, k.String()), fromEnv, ps)
			v.SetMapIndex(k, e)
		}
	case reflect.Slice:
		for i := range v.Len() {
			resolveSecrets(v.Index(i), fmt.Sprintf("%s[%d]", path, i), fromEnv, ps)
		}
	}
}

// hasSecret reports whether values of type t can hold a Secret.
func hasSecret(t reflect.Type) bool {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type) bool
	walk = func(t reflect.Type) bool {
		if t == secretType {
			return true
		}
		if seen[t] {
			return false
		}
		seen[t] = true
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			return walk(t.Elem())
		case reflect.Struct:
			for _, f := range tagFields(t) {
				if walk(f.typ) {
					return true
				}
			}
		}
		return false
	}
	return walk(t)
}

func origin(key string, fromEnv map[string]string) string {
	if env := fromEnv[key]; env != "" {
		return key + " (from $" + env + ")"
	}
	return key
}

// readSecretFile reads a secret, trimming trailing whitespace. Its errors
// name the path, never the content.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, pathErr(err))
	}
	defer f.Close()
	// Anyone who can write the file can put their own secret in it (a
	// signing secret, an audit or attestation key). Readable by others is
	// left to the operator: Kubernetes mounts Secrets 0644.
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o002 != 0 {
		return "", fmt.Errorf("%q can be written by every user on this machine (mode %04o), who could put their own secret in it: chmod o-w %s", path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, pathErr(err))
	}
	if len(b) > maxSecretFileSize {
		return "", fmt.Errorf("%q is larger than %d bytes; is that the right file?", path, maxSecretFileSize)
	}
	s := strings.TrimRightFunc(string(b), unicode.IsSpace)
	if s == "" {
		return "", fmt.Errorf("%q is empty", path)
	}
	return s, nil
}

// pathErr drops the path a *fs.PathError repeats.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
