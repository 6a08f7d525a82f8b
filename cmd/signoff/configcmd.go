package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/policy"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a configuration file",
	}
	var (
		path, output string
		dev          bool
	)
	check := &cobra.Command{
		Use:   "check --config FILE [--dev] [--output text|json]",
		Short: "Report every problem in a config file at once, or summarise it",
		Long: `Load FILE (with SIGNOFF_* environment overrides) and report every problem at
once, each naming its key; exit 2 when there is any. Otherwise print a summary:
actions, who may request them, who may approve them, where they are announced.
It checks FILE for a production start ('signoff serve --config FILE'), which
refuses a requester whose issuer is dev mode's built-in issuer; with --dev it
checks FILE for 'signoff serve --dev' instead.

--output json prints one JSON document on standard output instead, whether
FILE is valid or not (the exit code is the same: 0 valid, 2 not; the problems
are also written to standard error). Its shape, every member always present:

  {
    "valid": true,                      // false: see problems
    "config": "FILE",
    "checked_for": "production",        // or "dev" (--dev)
    "problems": [{"key": "actions.deploy.ttl", "message": "…"}],
    "warnings": [{"key": "…", "message": "…"}],
    "env_overrides": {"listen": "SIGNOFF_LISTEN"},
    "requesters": [{"name", "issuer", "audience", "person_claim"}],
    "actions": [{
      "name", "description",
      "requesters": [{"issuer", "claims": {"repository": "acme/*"}}],
      "params": {"service": {"required": true, "pattern": "…", "max_length": 256}},
      "approvers": {"groups": [], "users": [], "min_approvals": 1, "allow_self_approval": false,
                    "require": [{"groups": ["security"], "min": 1}]},
      "ttl_seconds": 3600,
      "windows": [{"days": ["mon"], "from": "09:00", "to": "17:00", "tz": "Europe/Berlin"}],
      "freeze": [{"from": "2026-12-20T00:00:00Z", "to": "2027-01-04T00:00:00Z", "reason": "…"}],
      "notify": {"slack": [], "teams": [], "requester": true},
      "remind": null,                   // or {"every_seconds": 1800, "max": 3}
      "escalate": null,                 // or {"after_seconds": 7200, "notify": {"slack": [], "teams": []}}
      "webhook": null,                  // or {"url": "https://host/…", "signed": true, "timeout_seconds": 10}
      "step_up": null,                  // or {"max_age_seconds", "require_mfa", "acr_values", "mfa_methods"}
      "require_approve_reason": false, "require_deny_reason": true,
      "break_glass": null,              // or {"groups": ["oncall"], "within_seconds": 86400,
                                        //     "review": {"groups": [], "users": [], "min_approvals": 1}}
      "attestation": {"audience": "…"}
    }]
  }

A key in problems or warnings is "" for a problem with the file as a whole
(it cannot be read or parsed). When FILE is not valid, warnings, env_overrides,
requesters and actions are empty. Lists are sorted (actions by name) and no
secret, and no webhook path or query, is ever printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return usageErrorf("config check needs --config FILE")
			}
			switch output {
			case "text":
				return checkConfigText(cmd.OutOrStdout(), path, dev)
			case "json":
				return checkConfigJSON(cmd.OutOrStdout(), path, dev)
			default:
				return usageErrorf("--output %q: use text or json", output)
			}
		},
	}
	check.Flags().StringVar(&path, "config", "", "config file to check")
	check.Flags().BoolVar(&dev, "dev", false, "check the file for 'signoff serve --dev' rather than for a production start")
	addOutputFlag(check, &output)
	cmd.AddCommand(check)
	return cmd
}

// addOutputFlag gives cmd the --output flag (text or json, into output),
// and offers text and json when a shell completes it.
func addOutputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVar(output, "output", "text", "text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

// checkConfigText is `config check` with the text summary.
func checkConfigText(w io.Writer, path string, dev bool) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	if _, err := cfg.Policy(); err != nil {
		return withCode(exitUsage, err)
	}
	if err := checkStartMode(cfg, dev); err != nil {
		return withCode(exitUsage, fmt.Errorf("config %s has problems:\n%w", path, err))
	}
	fmt.Fprintf(w, "%s is valid.\n\n%s", path, cfg.Summary())
	return nil
}

// configReport is the JSON document of `config check --output json`; the
// command's help shows its shape. Members are never left out.
type configReport struct {
	Valid        bool               `json:"valid"`
	Config       string             `json:"config"`
	CheckedFor   string             `json:"checked_for"`
	Problems     []configProblem    `json:"problems"`
	Warnings     []configProblem    `json:"warnings"`
	EnvOverrides map[string]string  `json:"env_overrides"`
	Requesters   []configRequester  `json:"requesters"`
	Actions      []configActionView `json:"actions"`
}

type configProblem struct {
	Key     string `json:"key"`
	Message string `json:"message"`
}

type configRequester struct {
	Name        string `json:"name"`
	Issuer      string `json:"issuer"`
	Audience    string `json:"audience"`
	PersonClaim string `json:"person_claim"`
}

type configActionView struct {
	Name                 string                     `json:"name"`
	Description          string                     `json:"description"`
	Requesters           []configRequesterRule      `json:"requesters"`
	Params               map[string]configParamView `json:"params"`
	Approvers            configApproversView        `json:"approvers"`
	TTLSeconds           int64                      `json:"ttl_seconds"`
	Notify               configNotifyView           `json:"notify"`
	Webhook              *configWebhookView         `json:"webhook"`
	StepUp               *configStepUpView          `json:"step_up"`
	RequireApproveReason bool                       `json:"require_approve_reason"`
	RequireDenyReason    bool                       `json:"require_deny_reason"`
	Windows              []windowJSON               `json:"windows"`
	Freeze               []freezeJSON               `json:"freeze"`
	Remind               *configRemindView          `json:"remind"`
	Escalate             *configEscalateView        `json:"escalate"`
	BreakGlass           *breakGlassJSON            `json:"break_glass"`
	Attestation          configAttestationView      `json:"attestation"`
}

type configRemindView struct {
	EverySeconds int64 `json:"every_seconds"`
	Max          int   `json:"max"`
}

type configEscalateView struct {
	AfterSeconds int64            `json:"after_seconds"`
	Notify       configNotifyList `json:"notify"`
}

type configNotifyList struct {
	Slack []string `json:"slack"`
	Teams []string `json:"teams"`
}

type configAttestationView struct {
	Audience string `json:"audience"`
}

type configRequesterRule struct {
	Issuer string            `json:"issuer"`
	Claims map[string]string `json:"claims"`
}

type configParamView struct {
	Required  bool   `json:"required"`
	Pattern   string `json:"pattern"`
	MaxLength int    `json:"max_length"`
}

type configApproversView struct {
	Groups            []string   `json:"groups"`
	Users             []string   `json:"users"`
	MinApprovals      int        `json:"min_approvals"`
	AllowSelfApproval bool       `json:"allow_self_approval"`
	Require           []ruleJSON `json:"require"`
}

type configNotifyView struct {
	Slack     []string `json:"slack"`
	Teams     []string `json:"teams"`
	Requester bool     `json:"requester"`
}

type configWebhookView struct {
	URL            string `json:"url"`
	Signed         bool   `json:"signed"`
	TimeoutSeconds int64  `json:"timeout_seconds"`
}

type configStepUpView struct {
	MaxAgeSeconds int64    `json:"max_age_seconds"`
	RequireMFA    bool     `json:"require_mfa"`
	ACRValues     []string `json:"acr_values"`
	MFAMethods    []string `json:"mfa_methods"`
}

// checkConfigJSON is `config check --output json`: the report on w, and
// for an invalid file the same error (exit 2, problems on standard error)
// the text form returns.
func checkConfigJSON(w io.Writer, path string, dev bool) error {
	rep := configReport{
		Config:       path,
		CheckedFor:   "production",
		Problems:     []configProblem{},
		Warnings:     []configProblem{},
		EnvOverrides: map[string]string{},
		Requesters:   []configRequester{},
		Actions:      []configActionView{},
	}
	if dev {
		rep.CheckedFor = "dev"
	}
	cfg, failure := loadConfig(path)
	var pol *policy.Policy
	if failure == nil {
		var err error
		if pol, err = cfg.Policy(); err != nil {
			failure = withCode(exitUsage, err)
		}
	}
	if failure == nil {
		if err := checkStartMode(cfg, dev); err != nil {
			failure = withCode(exitUsage, fmt.Errorf("config %s has problems:\n%w", path, err))
			if dev {
				// checkStartMode's only refusal with --dev is the listen
				// address; name its key like every other problem.
				rep.Problems = append(rep.Problems, configProblem{Key: "listen", Message: strings.TrimPrefix(err.Error(), "listen: ")})
			}
		}
	}
	if failure != nil {
		if len(rep.Problems) == 0 {
			rep.Problems = problemsOf(failure)
		}
		if err := writeIndentedJSON(w, rep); err != nil {
			return err
		}
		var ee *exitError
		if !errors.As(failure, &ee) {
			failure = withCode(exitUsage, failure)
		}
		return failure
	}
	rep.Valid = true
	rep.Warnings = problemList(cfg.Warnings())
	for _, k := range config.EnvKeys() {
		if v := cfg.EnvSource(k); v != "" {
			rep.EnvOverrides[k] = v
		}
	}
	for _, r := range cfg.Requesters {
		rep.Requesters = append(rep.Requesters, configRequester{Name: r.Name, Issuer: r.Issuer, Audience: r.Audience, PersonClaim: r.PersonClaim})
	}
	names := make([]string, 0, len(cfg.Actions))
	for n := range cfg.Actions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rep.Actions = append(rep.Actions, actionView(n, cfg.Actions[n], pol.Actions[n]))
	}
	return writeIndentedJSON(w, rep)
}

// problemsOf lists the problems err carries: a *config.ValidationError's
// problems by key, else the error as a problem of the whole file.
func problemsOf(err error) []configProblem {
	var ve *config.ValidationError
	if errors.As(err, &ve) && len(ve.Problems) > 0 {
		return problemList(ve.Problems)
	}
	return []configProblem{{Key: "", Message: err.Error()}}
}

func problemList(ps []config.Problem) []configProblem {
	out := make([]configProblem, 0, len(ps))
	for _, p := range ps {
		out = append(out, configProblem{Key: p.Key, Message: p.Message})
	}
	return out
}

// actionView is one action as the JSON report shows it; pa is the action
// as the policy built from the config has it.
func actionView(name string, a config.ActionConfig, pa *policy.Action) configActionView {
	v := configActionView{
		Name:        name,
		Description: a.Description,
		Requesters:  []configRequesterRule{},
		Params:      map[string]configParamView{},
		Approvers: configApproversView{
			Groups:            emptyIfNil(a.Approvers.Groups),
			Users:             emptyIfNil(a.Approvers.Users),
			MinApprovals:      a.Approvers.MinApprovals,
			AllowSelfApproval: a.Approvers.AllowSelfApproval,
		},
		TTLSeconds:           int64(a.TTL.Seconds()),
		Notify:               configNotifyView{Slack: emptyIfNil(a.Notify.Slack), Teams: emptyIfNil(a.Notify.Teams), Requester: pa.NotifyRequester},
		RequireApproveReason: a.RequireApproveReason,
		RequireDenyReason:    a.RequireDenyReason,
		Windows:              windowsJSON(pa.Windows),
		Freeze:               freezesJSON(pa.Freezes),
		BreakGlass:           breakGlassOf(pa),
		Attestation:          configAttestationView{Audience: pa.AttestationAudience},
	}
	v.Approvers.Require = rulesJSON(pa.Approvers.Require)
	if r := pa.Remind; r != nil {
		v.Remind = &configRemindView{EverySeconds: int64(r.Every.Seconds()), Max: r.Max}
	}
	if e := pa.Escalate; e != nil {
		v.Escalate = &configEscalateView{AfterSeconds: int64(e.After.Seconds()), Notify: configNotifyList{Slack: emptyIfNil(e.Notify.Slack), Teams: emptyIfNil(e.Notify.Teams)}}
	}
	for _, r := range a.Requesters {
		claims := map[string]string{}
		for k, g := range r.Claims {
			claims[k] = g
		}
		v.Requesters = append(v.Requesters, configRequesterRule{Issuer: r.Issuer, Claims: claims})
	}
	for pn, p := range a.Params {
		maxLen := p.MaxLength
		if maxLen == 0 {
			maxLen = policy.DefaultMaxParamLength
		}
		v.Params[pn] = configParamView{Required: p.Required, Pattern: p.Pattern, MaxLength: maxLen}
	}
	if wh := a.OnApprove.Webhook; wh.Configured() {
		v.Webhook = &configWebhookView{URL: config.RedactURL(wh.URL), Signed: wh.Secret != "", TimeoutSeconds: int64(wh.Timeout.Seconds())}
	}
	if s := a.StepUp; s != nil {
		v.StepUp = &configStepUpView{
			MaxAgeSeconds: int64(s.MaxAge.Seconds()),
			RequireMFA:    s.RequireMFA,
			ACRValues:     emptyIfNil(s.ACRValues),
			MFAMethods:    emptyIfNil(s.MFAMethods),
		}
	}
	return v
}

func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writeIndentedJSON writes v as indented JSON and a newline.
func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
