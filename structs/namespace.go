package structs

import (
	"errors"
	"fmt"
	"regexp"
)

// DefaultNamespace always exists; jobs without a namespace live in it.
const DefaultNamespace = "default"

// AllNamespacesSentinel is the namespace value ("*") that lists across all
// namespaces, as Nomad's API accepts it.
const AllNamespacesSentinel = "*"

var validNamespaceName = regexp.MustCompile(`^[a-zA-Z0-9-]{1,128}$`)

// Namespace partitions jobs, allocations and evaluations.
type Namespace struct {
	Name        string
	Description string
	Quota       string
	Meta        map[string]string
	CreateIndex uint64
	ModifyIndex uint64
}

// Validate reports every problem with the namespace.
func (n *Namespace) Validate() error {
	var errs []error
	if !validNamespaceName.MatchString(n.Name) {
		errs = append(errs, fmt.Errorf("invalid namespace name %q: must be 1-128 letters, digits or dashes", n.Name))
	}
	if len(n.Description) > 256 {
		errs = append(errs, errors.New("namespace description longer than 256 characters"))
	}
	return errors.Join(errs...)
}

// Copy returns a deep copy.
func (n *Namespace) Copy() *Namespace {
	if n == nil {
		return nil
	}
	c := *n
	c.Meta = copyStringMap(n.Meta)
	return &c
}

func copyStringMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
