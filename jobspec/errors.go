package jobspec

import (
	"fmt"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
)

// Error is returned when a job file has problems. It carries every problem
// found in the file as HCL diagnostics; Error() prints one per line as
// "file:line:col: summary: detail".
type Error struct {
	Diagnostics hcl.Diagnostics
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, d := range e.errorsOnly() {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(formatDiag(d))
	}
	return b.String()
}

// Unwrap exposes the individual diagnostics (each is an error) to errors.Is/As.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, d := range e.errorsOnly() {
		errs = append(errs, d)
	}
	return errs
}

func (e *Error) errorsOnly() hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range e.Diagnostics {
		if d.Severity == hcl.DiagError {
			out = append(out, d)
		}
	}
	return out
}

func formatDiag(d *hcl.Diagnostic) string {
	msg := d.Summary
	if d.Detail != "" {
		msg += ": " + d.Detail
	}
	if d.Subject == nil {
		return msg
	}
	return fmt.Sprintf("%s:%d:%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, msg)
}

// diagsError turns diagnostics into an *Error when they contain any error,
// sorted by position so output is stable.
func diagsError(diags hcl.Diagnostics) error {
	if !diags.HasErrors() {
		return nil
	}
	sorted := append(hcl.Diagnostics(nil), diags...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i].Subject, sorted[j].Subject
		switch {
		case a == nil || b == nil:
			return a != nil && b == nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
	return &Error{Diagnostics: dedupDiags(sorted)}
}

func dedupDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	seen := map[string]bool{}
	var out hcl.Diagnostics
	for _, d := range diags {
		k := formatDiag(d)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, d)
	}
	return out
}

func errAt(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	r := rng
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}
}

// suggest returns the candidate closest to name, or "" when none is close.
func suggest(name string, candidates []string) string {
	best, bestDist := "", 1<<30
	for _, c := range candidates {
		d := levenshtein.Distance(name, c, nil)
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := 2
	if len(name) > 6 {
		limit = 3
	}
	if bestDist <= limit {
		return best
	}
	return ""
}

func didYouMean(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}

// asError is errors.As for *Error without importing errors in callers.
func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}
