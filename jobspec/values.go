package jobspec

import (
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Typed accessors for a node's arguments. Each reports a diagnostic at the
// argument when the value has the wrong type and returns the zero value.

func (d *decoder) has(n *node, name string) bool {
	a, ok := n.attrs[name]
	return ok && !a.val.IsNull()
}

func (d *decoder) conv(n *node, name string, ty cty.Type) (cty.Value, *attrVal, bool) {
	a, ok := n.attrs[name]
	if !ok || a.val.IsNull() {
		return cty.NilVal, nil, false
	}
	v, err := convert.Convert(a.val, ty)
	if err != nil {
		d.add(errAt(a.rng, "Incorrect value type", fmt.Sprintf("Invalid value for %q: %s is required, not %s.", name, ty.FriendlyName(), a.val.Type().FriendlyName())))
		return cty.NilVal, a, false
	}
	if v.IsNull() || !v.IsWhollyKnown() {
		return cty.NilVal, a, false
	}
	return v, a, true
}

func (d *decoder) str(n *node, name string) string {
	v, _, ok := d.conv(n, name, cty.String)
	if !ok {
		return ""
	}
	return v.AsString()
}

func (d *decoder) strPtr(n *node, name string) *string {
	if !d.has(n, name) {
		return nil
	}
	s := d.str(n, name)
	return &s
}

func (d *decoder) boolean(n *node, name string) bool {
	v, _, ok := d.conv(n, name, cty.Bool)
	return ok && v.True()
}

func (d *decoder) boolPtr(n *node, name string) *bool {
	if !d.has(n, name) {
		return nil
	}
	b := d.boolean(n, name)
	return &b
}

func (d *decoder) integer(n *node, name string) int {
	v, a, ok := d.conv(n, name, cty.Number)
	if !ok {
		return 0
	}
	bf := v.AsBigFloat()
	i, acc := bf.Int64()
	if !bf.IsInt() || acc != big.Exact || i > 1<<53 || i < -(1<<53) {
		d.add(errAt(a.rng, "Invalid number", fmt.Sprintf("%q must be a whole number.", name)))
		return 0
	}
	return int(i)
}

func (d *decoder) intPtr(n *node, name string) *int {
	if !d.has(n, name) {
		return nil
	}
	i := d.integer(n, name)
	return &i
}

func (d *decoder) float(n *node, name string) float64 {
	v, _, ok := d.conv(n, name, cty.Number)
	if !ok {
		return 0
	}
	f, _ := v.AsBigFloat().Float64()
	return f
}

func (d *decoder) strs(n *node, name string) []string {
	v, _, ok := d.conv(n, name, cty.List(cty.String))
	if !ok {
		return nil
	}
	out := []string{}
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			continue
		}
		out = append(out, e.AsString())
	}
	return out
}

func (d *decoder) strMap(n *node, name string) map[string]string {
	v, _, ok := d.conv(n, name, cty.Map(cty.String))
	if !ok {
		return nil
	}
	out := map[string]string{}
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		if !e.IsNull() {
			out[k.AsString()] = e.AsString()
		}
	}
	return out
}

// dur reads a duration: a Go duration string ("30s", "1h30m") or a number
// of nanoseconds.
func (d *decoder) dur(n *node, name string) time.Duration {
	a, ok := n.attrs[name]
	if !ok || a.val.IsNull() {
		return 0
	}
	if a.val.Type() == cty.Number {
		return time.Duration(d.integer(n, name))
	}
	s := d.str(n, name)
	if s == "" {
		return 0
	}
	v, err := parseDuration(s)
	if err != nil {
		d.add(errAt(a.rng, "Invalid duration", fmt.Sprintf("%q: %v.", name, err)))
	}
	return v
}

func (d *decoder) durPtr(n *node, name string) *time.Duration {
	if !d.has(n, name) {
		return nil
	}
	v := d.dur(n, name)
	return &v
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if v, err := time.ParseDuration(s); err == nil {
		return v, nil
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(i), nil
	}
	return 0, fmt.Errorf("%q is not a duration (examples: \"30s\", \"5m\", \"1h30m\")", s)
}

// size reads a size in MB: a number of megabytes, or a string with a unit
// ("512MB", "1GiB", "300M").
func (d *decoder) size(n *node, name string) int {
	a, ok := n.attrs[name]
	if !ok || a.val.IsNull() {
		return 0
	}
	if a.val.Type() == cty.Number {
		return d.integer(n, name)
	}
	s := d.str(n, name)
	mb, err := parseSizeMB(s)
	if err != nil {
		d.add(errAt(a.rng, "Invalid size", fmt.Sprintf("%q: %v.", name, err)))
	}
	return mb
}

func parseSizeMB(s string) (int, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a size (examples: 256, \"512MB\", \"2GiB\")", s)
	}
	mult := map[string]float64{
		"": 1, "m": 1, "mb": 1, "mib": 1,
		"k": 1.0 / 1024, "kb": 1.0 / 1000, "kib": 1.0 / 1024,
		"g": 1024, "gb": 1000, "gib": 1024,
		"t": 1024 * 1024, "tb": 1000 * 1000, "tib": 1024 * 1024,
	}
	m, ok := mult[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("unknown size unit %q in %q (use MB, MiB, GB or GiB)", unit, s)
	}
	return int(f*m + 0.5), nil
}

// block returns the single nested block of a type, reporting duplicates.
func (d *decoder) block(n *node, typ string) *node {
	var found *node
	for _, b := range n.blocks {
		if b.typ != typ {
			continue
		}
		if found != nil {
			d.add(errAt(b.rng, "Duplicate "+typ+" block", fmt.Sprintf("Only one %s block is allowed here; another was defined at line %d.", typ, found.rng.Start.Line)))
			continue
		}
		found = b
	}
	return found
}

func (d *decoder) blocksOf(n *node, typ string) []*node {
	var out []*node
	for _, b := range n.blocks {
		if b.typ == typ {
			out = append(out, b)
		}
	}
	return out
}

// freeMap merges every block of typ (free-form, or argument form) into one map.
func (d *decoder) freeMap(n *node, typ string) map[string]any {
	var out map[string]any
	for _, b := range d.blocksOf(n, typ) {
		if out == nil {
			out = map[string]any{}
		}
		for k, v := range b.free {
			out[k] = v
		}
	}
	return out
}

// stringMap reads a meta/env-like block as map[string]string.
func (d *decoder) stringMap(n *node, typ string) map[string]string {
	var out map[string]string
	for _, b := range d.blocksOf(n, typ) {
		if out == nil {
			out = map[string]string{}
		}
		keys := make([]string, 0, len(b.free))
		for k := range b.free {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s, ok := scalarString(b.free[k])
			if !ok {
				d.add(errAt(b.rng, "Incorrect value type", fmt.Sprintf("%s value %q must be a string, number or bool.", typ, k)))
				continue
			}
			out[k] = s
		}
	}
	return out
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	case nil:
		return "", true
	}
	return "", false
}

func rangeOf(n *node, attr string) hcl.Range {
	if a, ok := n.attrs[attr]; ok {
		return a.rng
	}
	return n.rng
}
