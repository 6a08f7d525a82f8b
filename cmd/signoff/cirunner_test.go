package main

// Stand-ins for the two CI runners, just faithful enough to run signoff's
// drop-ins as the real ones do: a composite-action runner for action.yml
// and a GitLab job runner for templates/signoff/template.yml. Each refuses
// whatever it does not implement, so neither file can grow a construct the
// tests would silently skip.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/signoff-dev/signoff/internal/testenv"
)

// The drop-ins, relative to this package.
const (
	actionFile         = "../../action.yml"
	gitlabTemplateFile = "../../templates/signoff/template.yml"
	githubExampleFile  = "../../examples/github-actions/deploy.yml"
	gitlabExampleFile  = "../../examples/gitlab-ci/.gitlab-ci.yml"
)

// ---- GitHub Actions: composite actions -------------------------------------

// compositeAction is an action.yml, with only the keys the runner stand-in
// implements (decoding refuses any other).
type compositeAction struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Branding    struct {
		Icon  string `yaml:"icon"`
		Color string `yaml:"color"`
	} `yaml:"branding"`
	Inputs map[string]struct {
		Description string  `yaml:"description"`
		Required    bool    `yaml:"required"`
		Default     *string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
		Value       string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string       `yaml:"using"`
		Steps []actionStep `yaml:"steps"`
	} `yaml:"runs"`
}

// actionStep is one step of a composite action: a run: step in bash.
type actionStep struct {
	Name  string            `yaml:"name"`
	ID    string            `yaml:"id"`
	Shell string            `yaml:"shell"`
	Env   map[string]string `yaml:"env"`
	Run   string            `yaml:"run"`
}

// parseCompositeAction decodes an action.yml and checks it is what the
// stand-in runs: composite, run: steps in bash, and ${{ }} only in a step's
// env: values and the outputs' value: (checkExpressionPlaces).
func parseCompositeAction(data []byte) (*compositeAction, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("action.yml is not YAML: %w", err)
	}
	if err := checkExpressionPlaces(&root); err != nil {
		return nil, err
	}
	var a compositeAction
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("action.yml has a key the runner stand-in does not implement: %w", err)
	}
	if a.Runs.Using != "composite" {
		return nil, fmt.Errorf("runs.using is %q; the stand-in runs composite actions", a.Runs.Using)
	}
	for i, s := range a.Runs.Steps {
		if s.Run == "" || s.Shell != "bash" {
			return nil, fmt.Errorf("runs.steps[%d]: only run: steps with shell: bash are implemented", i)
		}
	}
	return &a, nil
}

// checkExpressionPlaces refuses ${{ }} anywhere but in a step's env: values
// and in outputs.*.value. An expression in run: is pasted into the script
// before the shell reads it: the script injection composite actions must
// never allow.
func checkExpressionPlaces(root *yaml.Node) error {
	var walk func(n *yaml.Node, path []string) error
	walk = func(n *yaml.Node, path []string) error {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for i, c := range n.Content {
				p := path
				if n.Kind == yaml.SequenceNode {
					p = append(slices.Clone(path), strconv.Itoa(i))
				}
				if err := walk(c, p); err != nil {
					return err
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				if strings.Contains(k.Value, "${{") {
					return fmt.Errorf("%s: an expression in a key", strings.Join(path, "."))
				}
				if err := walk(n.Content[i+1], append(slices.Clone(path), k.Value)); err != nil {
					return err
				}
			}
		case yaml.ScalarNode:
			if !strings.Contains(n.Value, "${{") {
				return nil
			}
			stepEnv := len(path) == 5 && path[0] == "runs" && path[1] == "steps" && path[3] == "env"
			output := len(path) == 3 && path[0] == "outputs" && path[2] == "value"
			if !stepEnv && !output {
				return fmt.Errorf("%s: ${{ }} is allowed only in a step's env: values and in outputs.*.value (line %d)", strings.Join(path, "."), n.Line)
			}
		}
		return nil
	}
	return walk(root, nil)
}

// exprPattern is one ${{ }} expression.
var exprPattern = regexp.MustCompile(`\$\{\{(.*?)\}\}`)

// Forms of expression the stand-in evaluates; anything else is an error.
var (
	inputsExpr = regexp.MustCompile(`^inputs\.([A-Za-z_][A-Za-z0-9_-]*)$`)
	envExpr    = regexp.MustCompile(`^env\.([A-Za-z_][A-Za-z0-9_]*)$`)
	stepsExpr  = regexp.MustCompile(`^steps\.([A-Za-z_][A-Za-z0-9_-]*)\.outputs\.([A-Za-z_][A-Za-z0-9_-]*)$`)
)

// exprContext holds what the stand-in's expressions can read.
type exprContext struct {
	inputs     map[string]string // every declared input, defaults applied
	actionPath string
	env        map[string]string
	steps      map[string]map[string]string // step id → outputs; absent until the step ran
	stepIDs    []string                     // the action's step ids
}

// eval replaces each ${{ }} in s by its value, as GitHub does for a string
// holding expressions. It knows inputs.NAME, github.action_path, env.NAME
// and steps.ID.outputs.NAME, and refuses anything else, including inputs
// the action does not declare.
func (c exprContext) eval(s string) (string, error) {
	if strings.Count(s, "${{") != len(exprPattern.FindAllStringIndex(s, -1)) {
		return "", fmt.Errorf("unterminated expression in %q", s)
	}
	var err error
	out := exprPattern.ReplaceAllStringFunc(s, func(m string) string {
		e := strings.TrimSpace(exprPattern.FindStringSubmatch(m)[1])
		switch {
		case e == "github.action_path":
			return c.actionPath
		case inputsExpr.MatchString(e):
			name := inputsExpr.FindStringSubmatch(e)[1]
			v, ok := c.inputs[name]
			if !ok {
				err = errors.Join(err, fmt.Errorf("%s: the action declares no input %q", m, name))
			}
			return v
		case envExpr.MatchString(e):
			return c.env[envExpr.FindStringSubmatch(e)[1]]
		case stepsExpr.MatchString(e):
			sub := stepsExpr.FindStringSubmatch(e)
			if !slices.Contains(c.stepIDs, sub[1]) {
				err = errors.Join(err, fmt.Errorf("%s: the action has no step %q", m, sub[1]))
			}
			return c.steps[sub[1]][sub[2]]
		}
		err = errors.Join(err, fmt.Errorf("%s: the runner stand-in evaluates only inputs.*, github.action_path, env.* and steps.*.outputs.*", m))
		return ""
	})
	return out, err
}

// actionRun is one use of the action in a job.
type actionRun struct {
	inputs map[string]string
	// env is the job's environment as the runner gives it to every step.
	env map[string]string
	// workspace is $GITHUB_WORKSPACE, where steps start.
	workspace string
	// runnerTemp is $RUNNER_TEMP.
	runnerTemp string
	// actionPath is where the runner unpacked the action.
	actionPath string
}

// actionResult is what a run of the action left behind.
type actionResult struct {
	// exitCode is the failing step's exit code; 0 when every step passed.
	exitCode int
	// log is every step's standard output and error, in the order written.
	log string
	// outputs are the action's outputs.
	outputs map[string]string
}

// runCompositeAction runs a's steps in order as GitHub's runner does: the
// step's env: evaluated, the script written to a file under $RUNNER_TEMP
// and run with `bash --noprofile --norc -e -o pipefail FILE` in the
// workspace, with fresh $GITHUB_OUTPUT and $GITHUB_ENV files whose
// contents become the step's outputs and the next steps' environment. A
// failing step ends the run. log receives the steps' output as it is
// written.
func runCompositeAction(ctx context.Context, a *compositeAction, r actionRun, log *testenv.LogBuffer) (actionResult, error) {
	ec := exprContext{inputs: map[string]string{}, actionPath: r.actionPath, env: map[string]string{}, steps: map[string]map[string]string{}}
	for name, in := range a.Inputs {
		if in.Default != nil {
			ec.inputs[name] = *in.Default
		} else {
			ec.inputs[name] = ""
		}
	}
	for name, v := range r.inputs {
		if _, ok := a.Inputs[name]; !ok {
			return actionResult{}, fmt.Errorf("the action has no input %q", name)
		}
		ec.inputs[name] = v
	}
	for _, s := range a.Runs.Steps {
		if s.ID != "" {
			ec.stepIDs = append(ec.stepIDs, s.ID)
		}
	}
	jobEnv := map[string]string{}
	for k, v := range r.env {
		jobEnv[k] = v
	}
	jobEnv["GITHUB_ACTION_PATH"] = r.actionPath
	res := actionResult{outputs: map[string]string{}}
	for i, s := range a.Runs.Steps {
		ec.env = jobEnv
		env := map[string]string{}
		for k, v := range jobEnv {
			env[k] = v
		}
		for k, expr := range s.Env {
			v, err := ec.eval(expr)
			if err != nil {
				return res, fmt.Errorf("runs.steps[%d].env.%s: %w", i, k, err)
			}
			env[k] = v
		}
		files := map[string]string{}
		for _, name := range []string{"GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY"} {
			f := filepath.Join(r.runnerTemp, "_runner_file_commands", fmt.Sprintf("%s_%d", strings.ToLower(name), i))
			if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
				return res, err
			}
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				return res, err
			}
			env[name], files[name] = f, f
		}
		script := filepath.Join(r.runnerTemp, ciRandomName()+".sh")
		if err := os.WriteFile(script, []byte(s.Run), 0o700); err != nil {
			return res, err
		}
		cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-e", "-o", "pipefail", script)
		cmd.Dir = r.workspace
		cmd.Env = ciEnvList(env)
		cmd.Stdout, cmd.Stderr = log, log
		runErr := cmd.Run()
		outputs, err := readFileCommand(files["GITHUB_OUTPUT"])
		if err != nil {
			return res, fmt.Errorf("step %d: $GITHUB_OUTPUT: %w", i, err)
		}
		if s.ID != "" {
			ec.steps[s.ID] = outputs
		}
		setEnv, err := readFileCommand(files["GITHUB_ENV"])
		if err != nil {
			return res, fmt.Errorf("step %d: $GITHUB_ENV: %w", i, err)
		}
		for k, v := range setEnv {
			jobEnv[k] = v
		}
		var exit *exec.ExitError
		if errors.As(runErr, &exit) {
			res.exitCode = exit.ExitCode()
			break
		} else if runErr != nil {
			return res, fmt.Errorf("step %d: %w", i, runErr)
		}
	}
	for name, o := range a.Outputs {
		v, err := ec.eval(o.Value)
		if err != nil {
			return res, fmt.Errorf("outputs.%s: %w", name, err)
		}
		res.outputs[name] = v
	}
	res.log = log.String()
	return res, nil
}

// readFileCommand reads a $GITHUB_OUTPUT or $GITHUB_ENV file as the runner
// does: NAME=VALUE lines, and NAME<<DELIMITER blocks whose value is every
// line up to the one that is exactly DELIMITER. A block without its
// closing delimiter is an error, as it fails the step on GitHub.
func readFileCommand(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		eq, heredoc := strings.Index(line, "="), strings.Index(line, "<<")
		if eq >= 0 && (heredoc < 0 || eq < heredoc) {
			out[line[:eq]] = line[eq+1:]
			continue
		}
		if heredoc <= 0 {
			return nil, fmt.Errorf("invalid line %q", line)
		}
		name, delim := line[:heredoc], line[heredoc+2:]
		var value []string
		closed := false
		for sc.Scan() {
			if sc.Text() == delim {
				closed = true
				break
			}
			value = append(value, sc.Text())
		}
		if !closed {
			return nil, fmt.Errorf("%s: no closing delimiter %q", name, delim)
		}
		out[name] = strings.Join(value, "\n")
	}
	return out, sc.Err()
}

// workflowCommand is a line of a step's log that GitHub's runner reads as a
// command: ::NAME PROPERTIES::DATA at the start of the line (after
// whitespace).
type workflowCommand struct {
	name, props, data string
}

// workflowCommands finds the commands in a log as the runner does.
func workflowCommands(log string) []workflowCommand {
	var out []workflowCommand
	for _, line := range strings.Split(log, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "::") {
			continue
		}
		end := strings.Index(line[2:], "::")
		if end < 0 {
			continue
		}
		head, data := line[2:2+end], line[2+end+2:]
		name, props, _ := strings.Cut(head, " ")
		data = strings.NewReplacer("%0D", "\r", "%0A", "\n", "%25", "%").Replace(data)
		out = append(out, workflowCommand{name: name, props: props, data: data})
	}
	return out
}

// ---- GitLab CI/CD: components ------------------------------------------------

// gitlabInputSpec is one input of a component's spec:inputs.
type gitlabInputSpec struct {
	Description string  `yaml:"description"`
	Default     *string `yaml:"default"`
	Regex       string  `yaml:"regex"`
	Type        string  `yaml:"type"`
}

// gitlabJob is a component job, with only the keys the stand-in
// implements (decoding refuses any other).
type gitlabJob struct {
	Stage    string `yaml:"stage"`
	IDTokens map[string]struct {
		Aud string `yaml:"aud"`
	} `yaml:"id_tokens"`
	Variables map[string]string `yaml:"variables"`
	Script    []string          `yaml:"script"`
}

// gitlabInputRef is one $[[ inputs.NAME ]]; any other $[[ ]] is refused.
var (
	gitlabInputRef = regexp.MustCompile(`\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]`)
	gitlabAnyRef   = regexp.MustCompile(`\$\[\[.*?\]\]`)
)

// interpolateGitLabComponent checks a component file and returns its jobs
// with the inputs interpolated, as GitLab does when a pipeline includes it:
// unknown or missing required inputs and values that do not match an
// input's regex are refused; each $[[ inputs.NAME ]] in a key or value of
// the parsed YAML is replaced by the input's value (so a value cannot
// change the YAML's structure). $[[ ]] in script text is refused: it would
// paste the input into the shell.
func interpolateGitLabComponent(data []byte, given map[string]string) (map[string]gitlabJob, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var header struct {
		Spec struct {
			Inputs map[string]gitlabInputSpec `yaml:"inputs"`
		} `yaml:"spec"`
	}
	if err := dec.Decode(&header); err != nil {
		return nil, fmt.Errorf("the spec document: %w", err)
	}
	var body yaml.Node
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("the jobs document: %w", err)
	}
	values := map[string]string{}
	for name, in := range header.Spec.Inputs {
		if in.Type != "" && in.Type != "string" {
			return nil, fmt.Errorf("input %s: type %s is not implemented", name, in.Type)
		}
		v, ok := given[name]
		switch {
		case ok:
		case in.Default != nil:
			v = *in.Default
		default:
			return nil, fmt.Errorf("`%s` input: required value has not been provided", name)
		}
		if in.Regex != "" {
			re, err := regexp.Compile(in.Regex)
			if err != nil {
				return nil, fmt.Errorf("input %s: regex: %w", name, err)
			}
			if !re.MatchString(v) {
				return nil, fmt.Errorf("`%s` input: provided value does not match required RegEx pattern", name)
			}
		}
		values[name] = v
	}
	for name := range given {
		if _, ok := header.Spec.Inputs[name]; !ok {
			return nil, fmt.Errorf("unknown input name provided: `%s`", name)
		}
	}
	var walk func(n *yaml.Node, path []string) error
	walk = func(n *yaml.Node, path []string) error {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				if err := walk(c, path); err != nil {
					return err
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if err := walk(n.Content[i], path); err != nil {
					return err
				}
				if err := walk(n.Content[i+1], append(slices.Clone(path), n.Content[i].Value)); err != nil {
					return err
				}
			}
		case yaml.ScalarNode:
			if !strings.Contains(n.Value, "$[[") {
				return nil
			}
			if len(path) >= 2 && slices.Contains([]string{"script", "before_script", "after_script"}, path[1]) {
				return fmt.Errorf("%s: $[[ ]] in script text pastes an input into the shell; pass it in variables: instead", strings.Join(path, "."))
			}
			var err error
			v := gitlabAnyRef.ReplaceAllStringFunc(n.Value, func(m string) string {
				sub := gitlabInputRef.FindStringSubmatch(m)
				if sub == nil || sub[0] != m {
					err = fmt.Errorf("%s: %s: only $[[ inputs.NAME ]] is implemented", strings.Join(path, "."), m)
					return ""
				}
				val, ok := values[sub[1]]
				if !ok {
					err = fmt.Errorf("%s: unknown interpolation key: `%s`", strings.Join(path, "."), sub[1])
				}
				return val
			})
			if err != nil {
				return err
			}
			n.Value, n.Tag, n.Style = v, "!!str", 0
		}
		return nil
	}
	if err := walk(&body, nil); err != nil {
		return nil, err
	}
	var raw map[string]yaml.Node
	if err := body.Decode(&raw); err != nil {
		return nil, err
	}
	jobs := map[string]gitlabJob{}
	for name, n := range raw {
		var j gitlabJob
		out, err := yaml.Marshal(&n)
		if err != nil {
			return nil, err
		}
		d := yaml.NewDecoder(strings.NewReader(string(out)))
		d.KnownFields(true)
		if err := d.Decode(&j); err != nil {
			return nil, fmt.Errorf("job %s has a key the stand-in does not implement: %w", name, err)
		}
		jobs[name] = j
	}
	return jobs, nil
}

// expandGitLabVariable expands $NAME and ${NAME} in a job variable's value
// from env, once, as GitLab does for variables that may be expanded; $$ is
// a literal $, and a $ before anything else stays as it is.
func expandGitLabVariable(v string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '$' || i+1 == len(v) {
			b.WriteByte(v[i])
			continue
		}
		rest := v[i+1:]
		switch {
		case rest[0] == '$':
			b.WriteByte('$')
			i++
		case rest[0] == '{':
			end := strings.IndexByte(rest, '}')
			if end < 0 || !gitlabVarName.MatchString(rest[1:end]) {
				b.WriteByte('$')
				continue
			}
			b.WriteString(env[rest[1:end]])
			i += end + 1
		default:
			name := gitlabVarName.FindString(rest)
			if name == "" {
				b.WriteByte('$')
				continue
			}
			b.WriteString(env[name])
			i += len(name)
		}
	}
	return b.String()
}

var gitlabVarName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

// runGitLabJob runs a job's script as a GitLab runner with a POSIX shell
// does: the variables (expanded from the predefined ones) and the ID
// tokens in the environment, the script items one after another under
// `sh -e`, in dir.
func runGitLabJob(ctx context.Context, j gitlabJob, predefined, idTokens map[string]string, dir string, log *testenv.LogBuffer) (int, error) {
	env := map[string]string{}
	for k, v := range predefined {
		env[k] = v
	}
	for k, v := range idTokens {
		env[k] = v
	}
	for k, v := range j.Variables {
		env[k] = expandGitLabVariable(v, predefined)
	}
	script := filepath.Join(dir, "."+ciRandomName()+".sh")
	if err := os.WriteFile(script, []byte(strings.Join(j.Script, "\n")+"\n"), 0o700); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, "sh", "-e", script)
	cmd.Dir = dir
	cmd.Env = ciEnvList(env)
	cmd.Stdout, cmd.Stderr = log, log
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}

// ---- shared --------------------------------------------------------------------

func ciEnvList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func ciRandomName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
