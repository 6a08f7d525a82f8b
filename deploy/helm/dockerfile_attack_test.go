package helm

// Attacks on the repository's Dockerfile, which builds the image
// the chart runs (the chart's runAsUser 65532 must be the image's user).
// What the final image holds.

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

const dockerfile = "../../Dockerfile"

type dockerInstr struct{ op, args string }

// dockerStages parses the Dockerfile into stages of instructions (no
// continuation handling beyond joining lines that end in a backslash).
func dockerStages(t *testing.T) [][]dockerInstr {
	t.Helper()
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]dockerInstr
	var cur string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line, cur = cur+line, ""
		op, args, _ := strings.Cut(line, " ")
		op = strings.ToUpper(op)
		if op == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], dockerInstr{op, strings.TrimSpace(args)})
		}
	}
	return stages
}

// TestAttackDockerFinalImage: the image that ships holds the static
// binary and the /data mount point only (owned by the non-root user), runs
// as the distroless non-root user 65532, the uid the chart's
// podSecurityContext expects, and builds the binary without cgo.
func TestAttackDockerFinalImage(t *testing.T) {
	stages := dockerStages(t)
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a final one", len(stages))
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final[0].args, "gcr.io/distroless/static") || !strings.Contains(final[0].args, ":nonroot") {
		t.Errorf("final base %q, want distroless static nonroot", final[0].args)
	}
	var user string
	for _, in := range final {
		switch in.op {
		case "COPY", "ADD":
			if in.op == "ADD" || !strings.Contains(in.args, "--from=build") {
				t.Errorf("%s %s brings build-context files into the shipped image", in.op, in.args)
			}
			if !strings.HasSuffix(in.args, "/out/signoff /usr/local/bin/signoff") && !strings.HasSuffix(in.args, "/out/data /data") {
				t.Errorf("COPY %s: the shipped image should hold the binary and /data only", in.args)
			}
		case "USER":
			user = in.args
		case "RUN":
			t.Errorf("RUN %s in the final stage", in.args)
		case "ENV":
			if up := strings.ToUpper(in.args); strings.Contains(up, "SECRET") || strings.Contains(up, "TOKEN") || strings.Contains(up, "PASSWORD") {
				t.Errorf("ENV %s looks like a secret baked into the image", in.args)
			}
		}
	}
	if user != "nonroot:nonroot" && user != "65532:65532" {
		t.Errorf("USER %q, want the distroless non-root user 65532", user)
	}
	var built bool
	for _, in := range stages[0] {
		if in.op == "RUN" && strings.Contains(in.args, "CGO_ENABLED=0") && strings.Contains(in.args, "-trimpath") {
			built = true
		}
	}
	if !built {
		t.Error("the build stage does not build a static, trimmed binary")
	}
	values, err := os.ReadFile(chartDir + "/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(values), "runAsUser: 65532") {
		t.Error("the chart's runAsUser is not the image's 65532")
	}
}
