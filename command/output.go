package command

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// shortIDLength is how much of a UUID the tables show unless -verbose.
const shortIDLength = 8

// writeTable prints rows under a header, columns aligned with two spaces.
// Cells must not contain tabs or newlines; they are replaced by spaces.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	writeRow := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, cleanCell(c))
		}
		fmt.Fprint(tw, "\n")
	}
	if len(header) > 0 {
		writeRow(header)
	}
	for _, r := range rows {
		writeRow(r)
	}
	return tw.Flush()
}

// kv is one "Key = Value" line of a detail view.
type kv struct{ key, value string }

// writeKV prints Nomad-style aligned "Key = Value" lines.
func writeKV(w io.Writer, pairs []kv) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, p := range pairs {
		fmt.Fprintf(tw, "%s\t= %s\n", cleanCell(p.key), cleanCell(p.value))
	}
	return tw.Flush()
}

func cleanCell(s string) string {
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}

// shortID cuts an ID to its first shortIDLength characters unless verbose.
func shortID(id string, verbose bool) string {
	if verbose || len(id) <= shortIDLength {
		return id
	}
	return id[:shortIDLength]
}

// formatUnixNano renders a Nomad timestamp (Unix nanoseconds); 0 is "<none>".
func formatUnixNano(ns int64) string {
	if ns == 0 {
		return "<none>"
	}
	return time.Unix(0, ns).Format(time.RFC3339)
}

// formatAge renders how long before now the Unix-nanosecond time ns was,
// coarsely ("45s ago", "3m12s ago", "2h5m ago", "3d4h ago").
func formatAge(ns int64, now time.Time) string {
	if ns == 0 {
		return "<none>"
	}
	d := now.Sub(time.Unix(0, ns))
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds ago", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm ago", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%dh ago", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func joinOrNone(ss []string) string {
	if len(ss) == 0 {
		return "<none>"
	}
	return strings.Join(ss, ",")
}
