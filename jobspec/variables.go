package jobspec

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Environment variable prefixes that set input variables. BERTH_VAR_ wins
// over NOMAD_VAR_ when both are set.
const (
	envVarPrefixNomad = "NOMAD_VAR_"
	envVarPrefixBerth = "BERTH_VAR_"
)

type variableDecl struct {
	name        string
	typ         cty.Type
	def         cty.Value // cty.NilVal when there is no default
	rng         hcl.Range
	validations []*hclsyntax.Block
}

var variableSpec = &spec{
	label: "name",
	attrs: []string{"type", "default", "description", "sensitive", "nullable"},
	blocks: map[string]*spec{
		"validation": {attrs: []string{"condition", "error_message"}},
	},
}

// declareVariable reads a `variable "name" { ... }` block. Its type is a
// type expression and its default may use functions but no variables.
func (d *decoder) declareVariable(b *hclsyntax.Block, ctx *hcl.EvalContext) *variableDecl {
	if len(b.Labels) != 1 {
		d.add(errAt(b.DefRange(), "Missing name for variable", "A variable block must have exactly one label: its name."))
		return nil
	}
	v := &variableDecl{name: b.Labels[0], typ: cty.DynamicPseudoType, def: cty.NilVal, rng: b.DefRange()}
	if !hclsyntax.ValidIdentifier(v.name) {
		d.add(errAt(b.LabelRanges[0], "Invalid variable name", "A name must start with a letter or underscore and may contain only letters, digits, underscores, and dashes."))
		return nil
	}
	for _, a := range sortedAttrs(b.Body) {
		switch a.Name {
		case "type":
			ty, diags := typeexpr.TypeConstraint(a.Expr)
			d.add(diags...)
			if !diags.HasErrors() {
				v.typ = ty
			}
		case "default":
			v.def = d.eval(a.Expr, ctx)
		case "description", "sensitive", "nullable":
		default:
			d.add(errAt(a.NameRange, "Unsupported argument", fmt.Sprintf("An argument named %q is not expected in a variable block.%s", a.Name, didYouMean(a.Name, variableSpec.names()))))
		}
	}
	for _, vb := range b.Body.Blocks {
		if vb.Type != "validation" {
			d.add(errAt(vb.TypeRange, "Unsupported block type", fmt.Sprintf("Blocks of type %q are not expected in a variable block.%s", vb.Type, didYouMean(vb.Type, []string{"validation"}))))
			continue
		}
		v.validations = append(v.validations, vb)
	}
	if v.def != cty.NilVal && !v.def.IsNull() {
		conv, err := convert.Convert(v.def, v.typ)
		if err != nil {
			d.add(errAt(b.Body.Attributes["default"].Expr.Range(), "Invalid default value for variable", fmt.Sprintf("This default value is not compatible with the variable's type constraint: %s.", err)))
			v.def = cty.UnknownVal(v.typ)
		} else {
			v.def = conv
		}
	}
	return v
}

// varValue is a value given from outside the file.
type varValue struct {
	raw    *string   // from -var or the environment: parsed per the variable's type
	val    cty.Value // from a var file
	rng    hcl.Range
	source string
}

// collectVarValues gathers values in increasing precedence: environment,
// var files, -var flags.
func (d *decoder) collectVarValues(opts Options, decls map[string]*variableDecl) map[string]varValue {
	out := map[string]varValue{}
	env := opts.Env
	if env == nil {
		env = os.Environ()
	}
	for _, prefix := range []string{envVarPrefixNomad, envVarPrefixBerth} {
		for _, kv := range env {
			if !strings.HasPrefix(kv, prefix) {
				continue
			}
			k, v, _ := strings.Cut(strings.TrimPrefix(kv, prefix), "=")
			if _, ok := decls[k]; !ok {
				continue // the environment may hold values for other jobs
			}
			v2 := v
			out[k] = varValue{raw: &v2, rng: hcl.Range{Filename: "<env " + prefix + k + ">"}, source: "environment variable " + prefix + k}
		}
	}
	for _, path := range opts.VarFiles {
		src, err := os.ReadFile(path)
		if err != nil {
			d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Failed to read var file", Detail: err.Error(), Subject: &hcl.Range{Filename: path}})
			continue
		}
		var f *hcl.File
		var diags hcl.Diagnostics
		if strings.HasSuffix(path, ".json") {
			f, diags = hcljson.Parse(src, path)
		} else {
			f, diags = hclsyntax.ParseConfig(src, path, hcl.InitialPos)
		}
		d.add(diags...)
		if f == nil || diags.HasErrors() {
			continue
		}
		attrs, diags := f.Body.JustAttributes()
		d.add(diags...)
		names := make([]string, 0, len(attrs))
		for k := range attrs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			a := attrs[k]
			if _, ok := decls[k]; !ok {
				d.warn("%s:%d: value for undeclared variable %q ignored", path, a.NameRange.Start.Line, k)
				continue
			}
			v, diags := a.Expr.Value(&hcl.EvalContext{Functions: functions(filepath.Dir(path))})
			d.add(diags...)
			out[k] = varValue{val: v, rng: a.Expr.Range(), source: "var file " + path}
		}
	}
	for _, kv := range opts.Vars {
		k, v, ok := strings.Cut(kv, "=")
		rng := hcl.Range{Filename: "<-var " + k + ">"}
		if !ok || k == "" {
			d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid -var option", Detail: fmt.Sprintf("The -var option %q is not of the form name=value.", kv), Subject: &rng})
			continue
		}
		if _, ok := decls[k]; !ok {
			names := make([]string, 0, len(decls))
			for n := range decls {
				names = append(names, n)
			}
			d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared variable", Detail: fmt.Sprintf("A value was given for variable %q with -var, but the job file declares no such variable.%s", k, didYouMean(k, names)), Subject: &rng})
			continue
		}
		v2 := v
		out[k] = varValue{raw: &v2, rng: rng, source: "-var " + k}
	}
	return out
}

// resolveVariables computes var.* for the file.
func (d *decoder) resolveVariables(decls map[string]*variableDecl, given map[string]varValue, fnCtx *hcl.EvalContext) cty.Value {
	vals := map[string]cty.Value{}
	names := make([]string, 0, len(decls))
	for n := range decls {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		decl := decls[name]
		gv, ok := given[name]
		var v cty.Value
		switch {
		case ok && gv.raw != nil:
			v = d.parseRawVar(decl, *gv.raw, gv)
		case ok:
			v = gv.val
		case decl.def != cty.NilVal:
			v = decl.def
		default:
			d.add(errAt(decl.rng, "Unset variable \""+name+"\"", fmt.Sprintf("A used variable must be set or have a default value; set it with -var %s=..., a -var-file, or the %s%s environment variable.", name, envVarPrefixNomad, name)))
			vals[name] = cty.UnknownVal(decl.typ)
			continue
		}
		conv, err := convert.Convert(v, decl.typ)
		if err != nil && !ok {
			vals[name] = cty.UnknownVal(decl.typ) // default already reported
			continue
		}
		if err != nil {
			rng := gv.rng
			d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable \"" + name + "\"", Detail: fmt.Sprintf("The value from %s is not compatible with the variable's type constraint: %s.", gv.source, err), Subject: &rng})
			vals[name] = cty.UnknownVal(decl.typ)
			continue
		}
		vals[name] = conv
	}
	all := cty.ObjectVal(vals)
	for _, name := range names {
		d.validateVariable(decls[name], vals[name], fnCtx)
	}
	return all
}

func (d *decoder) parseRawVar(decl *variableDecl, raw string, gv varValue) cty.Value {
	if decl.typ.IsPrimitiveType() || decl.typ == cty.DynamicPseudoType {
		return cty.StringVal(raw)
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), gv.rng.Filename, hcl.InitialPos)
	if diags.HasErrors() {
		rng := gv.rng
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable \"" + decl.name + "\"", Detail: fmt.Sprintf("The value from %s is not a valid expression: %s", gv.source, diags.Error()), Subject: &rng})
		return cty.UnknownVal(decl.typ)
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		rng := gv.rng
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable \"" + decl.name + "\"", Detail: fmt.Sprintf("The value from %s must be a constant: %s", gv.source, diags.Error()), Subject: &rng})
		return cty.UnknownVal(decl.typ)
	}
	return v
}

func (d *decoder) validateVariable(decl *variableDecl, val cty.Value, fnCtx *hcl.EvalContext) {
	if !val.IsWhollyKnown() {
		return
	}
	ctx := fnCtx.NewChild()
	ctx.Variables = map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{decl.name: val})}
	for _, vb := range decl.validations {
		cond, ok := vb.Body.Attributes["condition"]
		if !ok {
			d.add(errAt(vb.DefRange(), "Missing condition", "A validation block needs a condition argument."))
			continue
		}
		for name, a := range vb.Body.Attributes {
			if name != "condition" && name != "error_message" {
				d.add(errAt(a.NameRange, "Unsupported argument", fmt.Sprintf("An argument named %q is not expected in a validation block.%s", name, didYouMean(name, []string{"condition", "error_message"}))))
			}
		}
		msg := "Invalid value for variable."
		if m, ok := vb.Body.Attributes["error_message"]; ok {
			if s, ok := asString(d.eval(m.Expr, fnCtx)); ok {
				msg = s
			}
		}
		v, diags := cond.Expr.Value(ctx)
		d.add(diags...)
		if diags.HasErrors() || !v.IsKnown() {
			continue
		}
		v, err := convert.Convert(v, cty.Bool)
		if err != nil || v.IsNull() {
			d.add(errAt(cond.Expr.Range(), "Invalid validation condition", "The condition must be true or false."))
			continue
		}
		if v.False() {
			d.add(errAt(cond.Expr.Range(), "Invalid value for variable \""+decl.name+"\"", msg))
		}
	}
}

// resolveLocals evaluates every locals block's arguments, in dependency
// order, into local.*.
func (d *decoder) resolveLocals(blocks []*hclsyntax.Block, ctx *hcl.EvalContext) {
	var todo []*hclsyntax.Attribute
	seen := map[string]*hclsyntax.Attribute{}
	for _, b := range blocks {
		if len(b.Labels) > 0 {
			d.add(errAt(b.LabelRanges[0], "Extraneous label for locals", "No labels are expected for locals blocks."))
		}
		for _, nb := range b.Body.Blocks {
			d.add(errAt(nb.TypeRange, "Unexpected block", "A locals block may only contain arguments (name = value)."))
		}
		for _, a := range sortedAttrs(b.Body) {
			if prev, dup := seen[a.Name]; dup {
				d.add(errAt(a.NameRange, "Duplicate local value", fmt.Sprintf("A local value named %q was already defined at line %d.", a.Name, prev.NameRange.Start.Line)))
				continue
			}
			seen[a.Name] = a
			todo = append(todo, a)
		}
	}
	locals := map[string]cty.Value{}
	set := func() { ctx.Variables["local"] = cty.ObjectVal(locals) }
	set()
	for len(todo) > 0 {
		var next []*hclsyntax.Attribute
		for _, a := range todo {
			ready := true
			for _, tr := range a.Expr.Variables() {
				if tr.RootName() != "local" || len(tr) < 2 {
					continue
				}
				if at, ok := tr[1].(hcl.TraverseAttr); ok {
					if _, done := locals[at.Name]; !done && seen[at.Name] != nil {
						ready = false
					}
				}
			}
			if !ready {
				next = append(next, a)
				continue
			}
			locals[a.Name] = d.eval(a.Expr, ctx)
			set()
		}
		if len(next) == len(todo) {
			for _, a := range next {
				d.add(errAt(a.NameRange, "Cycle in local values", fmt.Sprintf("Local value %q depends on itself, directly or through other local values.", a.Name)))
			}
			return
		}
		todo = next
	}
}
