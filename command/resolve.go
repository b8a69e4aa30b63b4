package command

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/api"
)

// prefixMatch is one object a prefix lookup found.
type prefixMatch struct{ id, namespace string }

// resolveByPrefix returns the object whose ID is id or, failing that, the
// only one whose ID starts with id, as Nomad's CLI accepts short IDs.
func resolveByPrefix[T any](kind, id string, q *api.QueryOptions,
	info func(id string, q *api.QueryOptions) (T, error),
	list func(q *api.QueryOptions) ([]prefixMatch, error),
) (T, error) {
	var zero T
	obj, err := info(id, q)
	if err == nil {
		return obj, nil
	}
	if !api.IsNotFound(err) {
		return zero, fmt.Errorf("get %s %q: %w", kind, id, err)
	}
	pq := *q
	pq.Prefix = id
	matches, err := list(&pq)
	if err != nil {
		return zero, fmt.Errorf("list %ss: %w", kind, err)
	}
	switch len(matches) {
	case 0:
		return zero, fmt.Errorf("no %s with ID or prefix %q", kind, id)
	case 1:
		iq := *q
		if matches[0].namespace != "" {
			iq.Namespace = matches[0].namespace
		}
		obj, err := info(matches[0].id, &iq)
		if err != nil {
			return zero, fmt.Errorf("get %s %q: %w", kind, matches[0].id, err)
		}
		return obj, nil
	default:
		ids := make([]string, len(matches))
		for i, m := range matches {
			ids[i] = m.id
		}
		return zero, fmt.Errorf("prefix %q matches %d %ss: %s", id, len(matches), kind, strings.Join(ids, ", "))
	}
}
