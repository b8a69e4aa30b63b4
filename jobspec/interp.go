package jobspec

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Runtime interpolation.
//
// Job files contain interpolations that only the agent can resolve, such as
// "${NOMAD_PORT_http}", "${attr.kernel.name}", "${node.unique.id}" or
// "${meta.rack}". Like Nomad, berth leaves these as literal text: before
// evaluation, every template interpolation whose expression refers to a
// root name that the job file cannot define (anything except var, local and
// the iterator names of for expressions and dynamic blocks) is replaced by
// a literal holding its own source text.

// fileRoots are the root names a job file's expressions can resolve.
var fileRoots = []string{"var", "local"}

// preserveRuntimeInterpolations rewrites body in place.
func preserveRuntimeInterpolations(body *hclsyntax.Body, src []byte) {
	known := map[string]bool{}
	for _, r := range fileRoots {
		known[r] = true
	}
	// Collect the names that for expressions and dynamic blocks introduce.
	_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		switch x := n.(type) {
		case *hclsyntax.ForExpr:
			if x.KeyVar != "" {
				known[x.KeyVar] = true
			}
			known[x.ValVar] = true
		case *hclsyntax.Block:
			if x.Type == "dynamic" && len(x.Labels) == 1 {
				known[x.Labels[0]] = true
				if it, ok := x.Body.Attributes["iterator"]; ok {
					if tr, diags := hcl.AbsTraversalForExpr(it.Expr); !diags.HasErrors() {
						known[tr.RootName()] = true
					}
				}
			}
		}
		return nil
	})
	runtime := func(e hclsyntax.Expression) bool {
		for _, tr := range e.Variables() {
			if !known[tr.RootName()] {
				return true
			}
		}
		return false
	}
	literal := func(e hclsyntax.Expression) hclsyntax.Expression {
		r := e.Range()
		text := ""
		if r.Start.Byte >= 0 && r.End.Byte <= len(src) && r.Start.Byte <= r.End.Byte {
			text = string(src[r.Start.Byte:r.End.Byte])
		}
		return &hclsyntax.LiteralValueExpr{Val: cty.StringVal("${" + text + "}"), SrcRange: r}
	}
	_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		switch x := n.(type) {
		case *hclsyntax.TemplateExpr:
			for i, p := range x.Parts {
				if _, isLit := p.(*hclsyntax.LiteralValueExpr); isLit {
					continue
				}
				if isInterpolation(src, p.Range()) && runtime(p) {
					x.Parts[i] = literal(p)
				}
			}
		case *hclsyntax.TemplateWrapExpr:
			if runtime(x.Wrapped) {
				x.Wrapped = literal(x.Wrapped)
			}
		}
		return nil
	})
}

// isInterpolation reports whether the expression at r is written inside
// "${ ... }" (as opposed to a %{ } directive).
func isInterpolation(src []byte, r hcl.Range) bool {
	i := r.Start.Byte - 1
	for i >= 0 && i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r' || src[i] == '~') {
		i--
	}
	return i >= 1 && i < len(src) && src[i] == '{' && src[i-1] == '$'
}
