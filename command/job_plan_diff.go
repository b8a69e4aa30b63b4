package command

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/berth-dev/berth/structs"
)

// decodePlanDiff reads the response's Diff (decoded as free-form JSON) as a
// structs.JobDiff, nil when there is none or it has another shape.
func decodePlanDiff(raw any) *structs.JobDiff {
	if raw == nil {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil
	}
	var d structs.JobDiff
	if json.Unmarshal(b, &d) != nil || d.Type == "" {
		return nil
	}
	return &d
}

// diffMarker is Nomad's: + added, - deleted, +/- edited.
func diffMarker(typ string) string {
	switch typ {
	case structs.DiffTypeAdded:
		return "+ "
	case structs.DiffTypeDeleted:
		return "- "
	case structs.DiffTypeEdited:
		return "+/- "
	}
	return ""
}

// writeJobDiff prints the diff Nomad-style: one line per changed field
// (`+/- name: "old" => "new"`), blocks in braces, tasks with what their
// change forces. Unchanged tasks are shown with -verbose only.
func writeJobDiff(w io.Writer, d *structs.JobDiff, updates map[string]*structs.DesiredUpdates, verbose bool) {
	fmt.Fprintf(w, "%sJob: %q\n", diffMarker(d.Type), d.ID)
	writeDiffFields(w, d.Fields, "")
	writeDiffObjects(w, d.Objects, "")
	for _, g := range d.TaskGroups {
		fmt.Fprintf(w, "%sTask Group: %q (%s)\n", diffMarker(g.Type), g.Name, desiredUpdatesLine(updates[g.Name]))
		writeDiffFields(w, g.Fields, "  ")
		writeDiffObjects(w, g.Objects, "  ")
		for _, t := range g.Tasks {
			if t.Type == structs.DiffTypeNone && !verbose {
				continue
			}
			line := fmt.Sprintf("  %sTask: %q", diffMarker(t.Type), t.Name)
			if len(t.Annotations) > 0 {
				line += " (" + strings.Join(t.Annotations, ", ") + ")"
			}
			fmt.Fprintln(w, line)
			writeDiffFields(w, t.Fields, "    ")
			writeDiffObjects(w, t.Objects, "    ")
		}
	}
}

func writeDiffFields(w io.Writer, fields []*structs.FieldDiff, indent string) {
	for _, f := range fields {
		var line string
		switch f.Type {
		case structs.DiffTypeDeleted:
			line = fmt.Sprintf("%s%s%s: %q", indent, diffMarker(f.Type), f.Name, f.Old)
		case structs.DiffTypeEdited:
			line = fmt.Sprintf("%s%s%s: %q => %q", indent, diffMarker(f.Type), f.Name, f.Old, f.New)
		default:
			line = fmt.Sprintf("%s%s%s: %q", indent, diffMarker(f.Type), f.Name, f.New)
		}
		if len(f.Annotations) > 0 {
			line += " (" + strings.Join(f.Annotations, ", ") + ")"
		}
		fmt.Fprintln(w, line)
	}
}

func writeDiffObjects(w io.Writer, objects []*structs.ObjectDiff, indent string) {
	for _, o := range objects {
		fmt.Fprintf(w, "%s%s%s {\n", indent, diffMarker(o.Type), o.Name)
		writeDiffFields(w, o.Fields, indent+"  ")
		writeDiffObjects(w, o.Objects, indent+"  ")
		fmt.Fprintf(w, "%s}\n", indent)
	}
}
