package jobspec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/berth-dev/berth/structs"
)

// Options are the inputs a job file's variables can come from.
type Options struct {
	// Vars are "name=value" pairs from -var flags.
	Vars []string
	// VarFiles are paths from -var-file flags.
	VarFiles []string
	// Env is the environment BERTH_VAR_* / NOMAD_VAR_* are read from; nil
	// means the process environment.
	Env []string
}

// ParseFile reads the job file at path: HCL2 (any name) or JSON (a
// {"Job": {...}} wrapper as `nomad job run -output` writes it, or a bare job
// object). It returns the canonicalized job and warnings for accepted but
// ignored features. A returned error is an *Error listing every problem as
// file:line:col.
func ParseFile(path string, opts Options) (*structs.Job, []string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read job file: %w", err)
	}
	return Parse(path, src, opts)
}

// Parse parses job file content; filename names it in errors and is the base
// for relative paths of file().
func Parse(filename string, src []byte, opts Options) (job *structs.Job, warnings []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			job, err = nil, fmt.Errorf("%s: internal error parsing job file (please report): %v\n%s", filename, r, debug.Stack())
		}
	}()
	return parse(filename, src, opts)
}

func parse(filename string, src []byte, opts Options) (*structs.Job, []string, error) {
	if isJSON(src) {
		job, err := parseJSON(filename, src)
		if err != nil {
			return nil, nil, err
		}
		job.Canonicalize()
		return job, nil, nil
	}
	d := &decoder{}
	job := d.parseHCL(filename, src, opts)
	if err := diagsError(d.diags); err != nil {
		return nil, d.warnings, err
	}
	job.Canonicalize()
	return job, d.warnings, nil
}

func isJSON(src []byte) bool {
	t := bytes.TrimLeft(src, " \t\r\n\ufeff")
	t = bytes.TrimPrefix(t, []byte("\xef\xbb\xbf"))
	return len(t) > 0 && t[0] == '{'
}

func (d *decoder) parseHCL(filename string, src []byte, opts Options) *structs.Job {
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	d.add(diags...)
	if diags.HasErrors() || file == nil {
		return nil
	}
	body, ok := file.Body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	preserveRuntimeInterpolations(body, src)

	baseDir := filepath.Dir(filename)
	if abs, err := filepath.Abs(baseDir); err == nil {
		baseDir = abs
	}
	fnCtx := &hcl.EvalContext{Functions: functions(baseDir)}

	for _, a := range sortedAttrs(body) {
		d.add(errAt(a.NameRange, "Unsupported argument", fmt.Sprintf("An argument named %q is not expected at the top level of a job file.%s", a.Name, didYouMean(a.Name, topLevelBlocks))))
	}
	decls := map[string]*variableDecl{}
	declare := func(v *variableDecl) {
		if v == nil {
			return
		}
		if prev, dup := decls[v.name]; dup {
			d.add(errAt(v.rng, "Duplicate variable declaration", fmt.Sprintf("A variable named %q was already declared at line %d.", v.name, prev.rng.Start.Line)))
			return
		}
		decls[v.name] = v
	}
	var locals, jobs []*hclsyntax.Block
	for _, b := range body.Blocks {
		switch b.Type {
		case "variable":
			declare(d.declareVariable(b, fnCtx))
		case "variables":
			for _, nb := range b.Body.Blocks {
				d.add(errAt(nb.TypeRange, "Unexpected block", "A variables block may only contain arguments (name = default)."))
			}
			for _, a := range sortedAttrs(b.Body) {
				declare(&variableDecl{name: a.Name, typ: cty.DynamicPseudoType, def: d.eval(a.Expr, fnCtx), rng: a.NameRange})
			}
		case "locals":
			locals = append(locals, b)
		case "job":
			jobs = append(jobs, b)
		default:
			d.add(errAt(b.TypeRange, "Unsupported block type", fmt.Sprintf("Blocks of type %q are not expected at the top level of a job file.%s", b.Type, didYouMean(b.Type, topLevelBlocks))))
		}
	}

	given := d.collectVarValues(opts, decls)
	ctx := fnCtx.NewChild()
	ctx.Variables = map[string]cty.Value{"var": d.resolveVariables(decls, given, fnCtx)}
	d.resolveLocals(locals, ctx)

	switch len(jobs) {
	case 0:
		rng := body.SrcRange
		rng.End = rng.Start
		d.add(errAt(rng, "Missing job block", "A job file must contain exactly one job block: job \"name\" { ... }."))
		return nil
	case 1:
	default:
		for _, b := range jobs[1:] {
			d.add(errAt(b.DefRange(), "Duplicate job block", fmt.Sprintf("A job file may contain only one job; the first is at line %d.", jobs[0].DefRange().Start.Line)))
		}
	}
	b := jobs[0]
	n := d.decodeBlock("job", b.Labels, b.LabelRanges, b.DefRange(), b.Body, jobSpec, ctx)
	if n == nil {
		return nil
	}
	return d.mapJob(n)
}
