package structs

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// Constraint and affinity operators, as Nomad spells them in Operand.
const (
	ConstraintEqual             = "="
	ConstraintEqualAlias        = "=="
	ConstraintIs                = "is"
	ConstraintNotEqual          = "!="
	ConstraintNot               = "not"
	ConstraintGreater           = ">"
	ConstraintGreaterEqual      = ">="
	ConstraintLess              = "<"
	ConstraintLessEqual         = "<="
	ConstraintRegex             = "regexp"
	ConstraintVersion           = "version"
	ConstraintSemver            = "semver"
	ConstraintSetContains       = "set_contains"
	ConstraintSetContainsAll    = "set_contains_all"
	ConstraintSetContainsAny    = "set_contains_any"
	ConstraintAttributeIsSet    = "is_set"
	ConstraintAttributeIsNotSet = "is_not_set"
	ConstraintDistinctHosts     = "distinct_hosts"
	ConstraintDistinctProperty  = "distinct_property"
)

// DefaultAffinityWeight and DefaultSpreadWeight are the weights used when a
// block gives none.
const (
	DefaultAffinityWeight int8 = 50
	DefaultSpreadWeight   int8 = 50
)

// Constraint restricts the nodes a job, group or task may be placed on.
type Constraint struct {
	LTarget string // attribute
	RTarget string // value
	Operand string // operator
}

// Affinity is a soft constraint: nodes matching it score higher (or lower,
// for negative weights).
type Affinity struct {
	LTarget string
	RTarget string
	Operand string
	Weight  int8 // -100..100, not 0; 50 by default
}

// Spread distributes allocations across the values of a node attribute.
type Spread struct {
	Attribute    string
	Weight       int8 // 1..100; 50 by default
	SpreadTarget []*SpreadTarget
}

// SpreadTarget is the share of allocations wanted for one attribute value.
type SpreadTarget struct {
	Value   string
	Percent uint8
}

// String renders the constraint as Nomad does in messages.
func (c *Constraint) String() string {
	return fmt.Sprintf("%s %s %s", c.LTarget, c.Operand, c.RTarget)
}

// String renders the affinity as in messages.
func (a *Affinity) String() string {
	return fmt.Sprintf("%s %s %s", a.LTarget, a.Operand, a.RTarget)
}

// Copy returns a copy.
func (c *Constraint) Copy() *Constraint { return copyPtr(c) }

// Copy returns a copy.
func (a *Affinity) Copy() *Affinity { return copyPtr(a) }

// Copy returns a deep copy.
func (s *Spread) Copy() *Spread {
	if s == nil {
		return nil
	}
	c := *s
	c.SpreadTarget = copyPtrs(s.SpreadTarget, copyPtr[SpreadTarget])
	return &c
}

// Validate reports every problem with the constraint.
func (c *Constraint) Validate() error {
	var errs []error
	if c.Operand == "" {
		errs = append(errs, errors.New("missing constraint operator"))
	}
	requireLTarget := true
	switch c.Operand {
	case "":
	case ConstraintDistinctHosts:
		requireLTarget = false
	case ConstraintSetContains, ConstraintSetContainsAll, ConstraintSetContainsAny:
		if c.RTarget == "" {
			errs = append(errs, fmt.Errorf("operator %q requires a value", c.Operand))
		}
	case ConstraintRegex:
		if _, err := regexp.Compile(c.RTarget); err != nil {
			errs = append(errs, fmt.Errorf("regular expression failed to compile: %w", err))
		}
	case ConstraintVersion, ConstraintSemver:
		if c.RTarget == "" {
			errs = append(errs, fmt.Errorf("operator %q requires a version constraint", c.Operand))
		}
	case ConstraintDistinctProperty:
		if c.RTarget != "" {
			n, err := strconv.ParseUint(c.RTarget, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("distinct_property value %q is not a count: %w", c.RTarget, err))
			} else if n < 1 {
				errs = append(errs, fmt.Errorf("distinct_property must allow a count of 1 or more, got %d", n))
			}
		}
	case ConstraintAttributeIsSet, ConstraintAttributeIsNotSet:
		if c.RTarget != "" {
			errs = append(errs, fmt.Errorf("operator %q does not take a value", c.Operand))
		}
	case ConstraintEqual, ConstraintEqualAlias, ConstraintIs, ConstraintNotEqual, ConstraintNot,
		ConstraintLess, ConstraintLessEqual, ConstraintGreater, ConstraintGreaterEqual:
		if c.RTarget == "" {
			errs = append(errs, fmt.Errorf("operator %q requires a value", c.Operand))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown constraint operator %q", c.Operand))
	}
	if requireLTarget && c.LTarget == "" {
		errs = append(errs, errors.New("constraint has no attribute"))
	}
	return errors.Join(errs...)
}

// Validate reports every problem with the affinity.
func (a *Affinity) Validate() error {
	var errs []error
	switch a.Operand {
	case ConstraintEqual, ConstraintEqualAlias, ConstraintIs, ConstraintNotEqual, ConstraintNot,
		ConstraintLess, ConstraintLessEqual, ConstraintGreater, ConstraintGreaterEqual,
		ConstraintVersion, ConstraintSemver, ConstraintSetContainsAll, ConstraintSetContainsAny,
		ConstraintSetContains:
		if a.RTarget == "" {
			errs = append(errs, fmt.Errorf("operator %q requires a value", a.Operand))
		}
	case ConstraintRegex:
		if _, err := regexp.Compile(a.RTarget); err != nil {
			errs = append(errs, fmt.Errorf("regular expression failed to compile: %w", err))
		}
	case "":
		errs = append(errs, errors.New("missing affinity operator"))
	default:
		errs = append(errs, fmt.Errorf("unknown affinity operator %q", a.Operand))
	}
	if a.LTarget == "" {
		errs = append(errs, errors.New("affinity has no attribute"))
	}
	if a.Weight == 0 {
		errs = append(errs, errors.New("affinity weight cannot be zero"))
	}
	if a.Weight > 100 || a.Weight < -100 {
		errs = append(errs, fmt.Errorf("affinity weight must be within -100..100, got %d", a.Weight))
	}
	return errors.Join(errs...)
}

// Validate reports every problem with the spread.
func (s *Spread) Validate() error {
	var errs []error
	if s.Attribute == "" {
		errs = append(errs, errors.New("missing spread attribute"))
	}
	if s.Weight <= 0 || s.Weight > 100 {
		errs = append(errs, fmt.Errorf("spread weight must be within 1..100, got %d", s.Weight))
	}
	seen := map[string]bool{}
	sum := 0
	for _, t := range s.SpreadTarget {
		if t == nil {
			continue
		}
		if seen[t.Value] {
			errs = append(errs, fmt.Errorf("spread target %q given more than once", t.Value))
		}
		seen[t.Value] = true
		if t.Percent > 100 {
			errs = append(errs, fmt.Errorf("spread target %q percent must be within 0..100, got %d", t.Value, t.Percent))
		}
		sum += int(t.Percent)
	}
	if sum > 100 {
		errs = append(errs, fmt.Errorf("spread targets add up to %d%%, more than 100%%", sum))
	}
	return errors.Join(errs...)
}
