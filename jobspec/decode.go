package jobspec

import (
	"fmt"
	"math/big"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// spec describes one block kind of the job specification.
type spec struct {
	label    string           // name of the block's single label; "" when it takes none
	optLabel bool             // the label may be omitted
	attrs    []string         // accepted arguments
	blocks   map[string]*spec // accepted nested blocks
	free     bool             // free-form content (driver config, meta, env): any argument or block
	mapForm  bool             // may also be written as an argument: name = { ... }
	ignored  string           // accepted but ignored; the warning to give
}

// node is one decoded block: evaluated arguments and nested blocks.
type node struct {
	typ      string
	label    string
	labelRng hcl.Range
	rng      hcl.Range
	attrs    map[string]*attrVal
	blocks   []*node
	free     map[string]any // content of a free-form block
	ignored  bool           // an accepted-but-ignored block
}

type attrVal struct {
	val     cty.Value
	rng     hcl.Range
	nameRng hcl.Range
}

// decoder walks hclsyntax bodies against specs, evaluating expressions and
// expanding dynamic blocks, collecting every diagnostic on the way.
type decoder struct {
	diags    hcl.Diagnostics
	warnings []string
	warned   map[string]bool
}

func (d *decoder) add(diags ...*hcl.Diagnostic) { d.diags = append(d.diags, diags...) }

func (d *decoder) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if d.warned == nil {
		d.warned = map[string]bool{}
	}
	if !d.warned[msg] {
		d.warned[msg] = true
		d.warnings = append(d.warnings, msg)
	}
}

func sortedAttrs(body *hclsyntax.Body) []*hclsyntax.Attribute {
	attrs := make([]*hclsyntax.Attribute, 0, len(body.Attributes))
	for _, a := range body.Attributes {
		attrs = append(attrs, a)
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].SrcRange.Start.Byte < attrs[j].SrcRange.Start.Byte })
	return attrs
}

func (s *spec) names() []string {
	out := append([]string(nil), s.attrs...)
	for k := range s.blocks {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *spec) hasAttr(name string) bool {
	for _, a := range s.attrs {
		if a == name {
			return true
		}
	}
	return false
}

// decodeBody decodes the content of a block of kind typ.
func (d *decoder) decodeBody(typ string, body *hclsyntax.Body, sp *spec, ctx *hcl.EvalContext) *node {
	n := &node{typ: typ, attrs: map[string]*attrVal{}, rng: body.SrcRange}
	if sp.free {
		n.free = d.decodeFree(body, ctx)
		return n
	}
	for _, a := range sortedAttrs(body) {
		if !sp.hasAttr(a.Name) {
			if bs, ok := sp.blocks[a.Name]; ok && bs.mapForm {
				v := d.eval(a.Expr, ctx)
				child := &node{typ: a.Name, attrs: map[string]*attrVal{}, rng: a.SrcRange}
				if !v.IsNull() && v.IsKnown() && (v.Type().IsObjectType() || v.Type().IsMapType()) {
					m, _ := ctyToGo(v).(map[string]any)
					child.free = m
				} else if !v.IsNull() {
					d.add(errAt(a.Expr.Range(), "Incorrect value type", fmt.Sprintf("%q must be a map or object, not %s.", a.Name, v.Type().FriendlyName())))
				}
				n.blocks = append(n.blocks, child)
				continue
			}
			if _, ok := sp.blocks[a.Name]; ok {
				d.add(errAt(a.NameRange, "Unsupported argument", fmt.Sprintf("%q is a block, not an argument; write it as %s { ... }.", a.Name, a.Name)))
				continue
			}
			d.add(errAt(a.NameRange, "Unsupported argument", fmt.Sprintf("An argument named %q is not expected here.%s", a.Name, didYouMean(a.Name, sp.names()))))
			continue
		}
		n.attrs[a.Name] = &attrVal{val: d.eval(a.Expr, ctx), rng: a.Expr.Range(), nameRng: a.NameRange}
	}
	for _, b := range body.Blocks {
		if b.Type == "dynamic" {
			n.blocks = append(n.blocks, d.expandDynamic(b, sp, ctx)...)
			continue
		}
		bs, ok := sp.blocks[b.Type]
		if !ok {
			if sp.hasAttr(b.Type) {
				d.add(errAt(b.TypeRange, "Unsupported block type", fmt.Sprintf("%q is an argument, not a block; write it as %s = ...", b.Type, b.Type)))
				continue
			}
			d.add(errAt(b.TypeRange, "Unsupported block type", fmt.Sprintf("Blocks of type %q are not expected here.%s", b.Type, didYouMean(b.Type, sp.names()))))
			continue
		}
		labels := make([]string, len(b.Labels))
		copy(labels, b.Labels)
		if child := d.decodeBlock(b.Type, labels, b.LabelRanges, b.DefRange(), b.Body, bs, ctx); child != nil {
			n.blocks = append(n.blocks, child)
		}
	}
	return n
}

func (d *decoder) decodeBlock(typ string, labels []string, labelRanges []hcl.Range, def hcl.Range, body *hclsyntax.Body, bs *spec, ctx *hcl.EvalContext) *node {
	if bs.ignored != "" {
		// Kept in the tree (mapping skips it) so that callers can tell
		// what was ignored, e.g. a Connect gateway that would supply tasks.
		d.warn("%s:%d: %s", def.Filename, def.Start.Line, bs.ignored)
		n := d.decodeBody(typ, body, bs, ctx)
		n.rng, n.ignored = def, true
		return n
	}
	want := 0
	if bs.label != "" {
		want = 1
	}
	switch {
	case len(labels) > want:
		rng := def
		if len(labelRanges) > want {
			rng = labelRanges[want]
		}
		if want == 0 {
			d.add(errAt(rng, "Extraneous label for "+typ, fmt.Sprintf("No labels are expected for %s blocks.", typ)))
		} else {
			d.add(errAt(rng, "Extraneous label for "+typ, fmt.Sprintf("Only 1 label (%s) is expected for %s blocks.", bs.label, typ)))
		}
		return nil
	case len(labels) < want && !bs.optLabel:
		d.add(errAt(def, "Missing "+bs.label+" for "+typ, fmt.Sprintf("All %s blocks must have 1 label (%s).", typ, bs.label)))
		return nil
	}
	n := d.decodeBody(typ, body, bs, ctx)
	n.rng = def
	if len(labels) > 0 {
		n.label = labels[0]
		if len(labelRanges) > 0 {
			n.labelRng = labelRanges[0]
		}
	}
	return n
}

var dynamicSpec = &spec{attrs: []string{"for_each", "iterator", "labels"}, blocks: map[string]*spec{"content": {free: true}}}

// expandDynamic expands a `dynamic "TYPE" { for_each ... content {...} }`
// block into one node per element.
func (d *decoder) expandDynamic(b *hclsyntax.Block, parent *spec, ctx *hcl.EvalContext) []*node {
	if len(b.Labels) != 1 {
		d.add(errAt(b.DefRange(), "Invalid dynamic block", "A dynamic block must have exactly one label: the type of block to generate."))
		return nil
	}
	typ := b.Labels[0]
	bs, ok := parent.blocks[typ]
	if !ok {
		d.add(errAt(b.LabelRanges[0], "Unsupported block type", fmt.Sprintf("Blocks of type %q are not expected here.%s", typ, didYouMean(typ, parent.names()))))
		return nil
	}
	var forEach, iterator, labels *hclsyntax.Attribute
	for name, a := range b.Body.Attributes {
		switch name {
		case "for_each":
			forEach = a
		case "iterator":
			iterator = a
		case "labels":
			labels = a
		default:
			d.add(errAt(a.NameRange, "Unsupported argument", fmt.Sprintf("An argument named %q is not expected in a dynamic block.%s", name, didYouMean(name, dynamicSpec.attrs))))
		}
	}
	var content *hclsyntax.Block
	for _, cb := range b.Body.Blocks {
		if cb.Type != "content" || content != nil {
			d.add(errAt(cb.TypeRange, "Unsupported block type", fmt.Sprintf("A dynamic block may only contain one content block, not %q.", cb.Type)))
			continue
		}
		content = cb
	}
	if forEach == nil || content == nil {
		d.add(errAt(b.DefRange(), "Invalid dynamic block", "A dynamic block needs a for_each argument and a content block."))
		return nil
	}
	iterName := typ
	if iterator != nil {
		if tr, diags := hcl.AbsTraversalForExpr(iterator.Expr); !diags.HasErrors() && len(tr) == 1 {
			iterName = tr.RootName()
		} else {
			d.add(errAt(iterator.Expr.Range(), "Invalid dynamic iterator name", "The iterator must be a single name."))
			return nil
		}
	}
	coll := d.eval(forEach.Expr, ctx)
	if coll.IsNull() || !coll.IsKnown() {
		if !coll.IsNull() || !d.diags.HasErrors() {
			d.add(errAt(forEach.Expr.Range(), "Invalid dynamic for_each value", "Cannot use a null or unknown value in for_each."))
		}
		return nil
	}
	if !coll.CanIterateElements() {
		d.add(errAt(forEach.Expr.Range(), "Invalid dynamic for_each value", fmt.Sprintf("Cannot use a %s value in for_each. A collection is required.", coll.Type().FriendlyName())))
		return nil
	}
	coll, _ = coll.Unmark()
	var out []*node
	for it := coll.ElementIterator(); it.Next(); {
		k, v := it.Element()
		child := ctx.NewChild()
		child.Variables = map[string]cty.Value{iterName: cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}
		var lbls []string
		var lrngs []hcl.Range
		if labels != nil {
			lv := d.eval(labels.Expr, child)
			if !lv.IsNull() && lv.IsKnown() && lv.CanIterateElements() {
				for li := lv.ElementIterator(); li.Next(); {
					_, l := li.Element()
					s, ok := asString(l)
					if !ok {
						d.add(errAt(labels.Expr.Range(), "Invalid dynamic block label", "Labels must be strings."))
						return out
					}
					lbls = append(lbls, s)
					lrngs = append(lrngs, labels.Expr.Range())
				}
			} else if !lv.IsNull() {
				d.add(errAt(labels.Expr.Range(), "Invalid dynamic block labels", "labels must be a list of strings."))
				return out
			}
		}
		if n := d.decodeBlock(typ, lbls, lrngs, content.DefRange(), content.Body, bs, child); n != nil {
			out = append(out, n)
		}
	}
	return out
}

// decodeFree decodes a free-form block: arguments become values, nested
// blocks become lists of maps (as Nomad does for driver config).
func (d *decoder) decodeFree(body *hclsyntax.Body, ctx *hcl.EvalContext) map[string]any {
	out := map[string]any{}
	for _, a := range sortedAttrs(body) {
		out[a.Name] = ctyToGo(d.eval(a.Expr, ctx))
	}
	freeSpec := &spec{free: true}
	for _, b := range body.Blocks {
		var maps []map[string]any
		typ := b.Type
		if b.Type == "dynamic" && len(b.Labels) == 1 {
			typ = b.Labels[0]
			for _, n := range d.expandDynamic(b, &spec{blocks: map[string]*spec{typ: freeSpec}}, ctx) {
				maps = append(maps, n.free)
			}
		} else {
			m := d.decodeFree(b.Body, ctx)
			for i := len(b.Labels) - 1; i >= 0; i-- {
				m = map[string]any{b.Labels[i]: m}
			}
			maps = append(maps, m)
		}
		list, _ := out[typ].([]any)
		for _, m := range maps {
			list = append(list, m)
		}
		out[typ] = list
	}
	return out
}

func (d *decoder) eval(expr hclsyntax.Expression, ctx *hcl.EvalContext) cty.Value {
	v, diags := expr.Value(ctx)
	d.add(diags...)
	if !v.IsWhollyKnown() {
		// only happens after an error was reported
		return cty.NullVal(cty.DynamicPseudoType)
	}
	v, _ = v.UnmarkDeep()
	return v
}

func asString(v cty.Value) (string, bool) {
	if v.IsNull() || !v.IsKnown() {
		return "", false
	}
	if v.Type() == cty.String {
		return v.AsString(), true
	}
	if v.Type() == cty.Number || v.Type() == cty.Bool {
		return ctyString(v), true
	}
	return "", false
}

func ctyString(v cty.Value) string {
	switch v.Type() {
	case cty.String:
		return v.AsString()
	case cty.Bool:
		if v.True() {
			return "true"
		}
		return "false"
	case cty.Number:
		return v.AsBigFloat().Text('f', -1)
	}
	return ""
}

// ctyToGo converts a value to plain Go values as encoding/json would produce.
func ctyToGo(v cty.Value) any {
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	v, _ = v.Unmark()
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString()
	case t == cty.Bool:
		return v.True()
	case t == cty.Number:
		bf := v.AsBigFloat()
		if bf.IsInt() {
			if i, acc := bf.Int64(); acc == big.Exact {
				return int(i)
			}
		}
		f, _ := bf.Float64()
		return f
	case t.IsListType() || t.IsSetType() || t.IsTupleType():
		out := []any{}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, ctyToGo(e))
		}
		return out
	case t.IsMapType() || t.IsObjectType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			out[k.AsString()] = ctyToGo(e)
		}
		return out
	}
	return nil
}
