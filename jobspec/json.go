package jobspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/hcl/v2"

	"github.com/berth-dev/berth/structs"
)

// parseJSON reads {"Job": {...}} or a bare job object.
func parseJSON(filename string, src []byte) (*structs.Job, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(src, &probe); err != nil {
		return nil, jsonError(filename, src, err)
	}
	raw := json.RawMessage(src)
	if j, ok := probe["Job"]; ok && len(probe) <= 2 && !bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		raw = j
	}
	job := new(structs.Job)
	if err := json.Unmarshal(raw, job); err != nil {
		return nil, jsonError(filename, src, err)
	}
	if job.ID == "" && job.Name == "" && len(job.TaskGroups) == 0 {
		return nil, &Error{Diagnostics: hcl.Diagnostics{errAt(hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
			"Not a job", "The JSON document is neither {\"Job\": {...}} nor a job object (no ID, Name or TaskGroups).")}}
	}
	if job.Name == "" {
		job.Name = job.ID
	}
	if job.ID == "" {
		job.ID = job.Name
	}
	return job, nil
}

// jsonError locates a JSON decoding error as file:line:col.
func jsonError(filename string, src []byte, err error) error {
	off := int64(-1)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	}
	pos := hcl.InitialPos
	if off >= 0 {
		pos = posAt(src, int(off))
	}
	msg := err.Error()
	if typ != nil && typ.Field != "" {
		msg = fmt.Sprintf("field %s: cannot use a JSON %s as %s", typ.Field, typ.Value, typ.Type)
	}
	return &Error{Diagnostics: hcl.Diagnostics{errAt(hcl.Range{Filename: filename, Start: pos, End: pos}, "Invalid JSON job", msg)}}
}

func posAt(src []byte, off int) hcl.Pos {
	if off > len(src) {
		off = len(src)
	}
	line, col := 1, 1
	for _, c := range src[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return hcl.Pos{Line: line, Column: col, Byte: off}
}
