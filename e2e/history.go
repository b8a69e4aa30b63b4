// Package e2e holds berth's end-to-end fault tests: real berth processes
// in a network-namespace lab (package lab) that are killed, partitioned
// and restarted while clients work, and a linearizability checker
// (porcupine) for the histories those clients record. The tests need
// root; they skip without it, and fail under CI=true.
package e2e

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Outcome of a recorded client operation.
type Outcome int

const (
	// OK: the operation took effect (a write acknowledged, a read
	// answered).
	OK Outcome = iota
	// Failed: the operation certainly did not take effect (a write
	// refused before anything was applied, a read that got no answer).
	Failed
	// Unknown: a write whose effect cannot be known (time-out, connection
	// lost, a server error after forwarding); it may take effect at any
	// time after its call, or never.
	Unknown
)

// RegisterInput is a register operation: a write of Value, or a read.
type RegisterInput struct {
	Write bool
	Value string
}

// History records the operations of concurrent clients on one register.
type History struct {
	mu    sync.Mutex
	start time.Time
	ops   []porcupine.Operation
	kinds []Outcome
}

// NewHistory starts an empty history; its clock starts now.
func NewHistory() *History { return &History{start: time.Now()} }

func (h *History) now() int64 { return int64(time.Since(h.start)) }

// Call notes an operation's invocation and returns the function that
// records its end: the outcome and, for a successful read, the value
// read ("" for an absent register).
func (h *History) Call(client int, in RegisterInput) func(out Outcome, value string) {
	call := h.now()
	return func(out Outcome, value string) {
		ret := h.now()
		h.mu.Lock()
		defer h.mu.Unlock()
		if out == Failed {
			return // it had no effect and saw nothing: nothing to check
		}
		h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: value, Return: ret})
		h.kinds = append(h.kinds, out)
	}
}

// Counts reports how many ok and unknown operations were recorded.
func (h *History) Counts() (ok, unknown int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range h.kinds {
		if k == Unknown {
			unknown++
		} else {
			ok++
		}
	}
	return ok, unknown
}

// Operations returns the history for the checker: an unknown write's
// return is moved past the end of the history, so it may be linearized
// anywhere after its call, including after everything (never applied).
// Unknown reads are dropped: they constrain nothing.
func (h *History) Operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	end := h.now()
	for _, op := range h.ops {
		end = max(end, op.Return)
	}
	end++
	out := make([]porcupine.Operation, 0, len(h.ops))
	for i, op := range h.ops {
		if h.kinds[i] == Unknown {
			if !op.Input.(RegisterInput).Write {
				continue
			}
			op.Return = end
			op.Metadata = "unknown"
		}
		out = append(out, op)
	}
	return out
}

// RegisterModel is a single register: a write sets it, a read returns the
// last value written ("" before any).
var RegisterModel = porcupine.Model{
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(RegisterInput)
		if in.Write {
			return true, in.Value
		}
		return output.(string) == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(RegisterInput)
		if in.Write {
			return "write(" + in.Value + ")"
		}
		return fmt.Sprintf("read() -> %q", output)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
	DescribeOperationMetadata: func(info any) string {
		if info == nil {
			return ""
		}
		return fmt.Sprint(info)
	},
}

// Check runs the linearizability checker (bounded by timeout). On a
// violation it writes porcupine's HTML visualisation to vizPath and
// returns an error with the history as text.
func (h *History) Check(timeout time.Duration, vizPath string) (porcupine.CheckResult, error) {
	ops := h.Operations()
	res, info := porcupine.CheckOperationsVerbose(RegisterModel, ops, timeout)
	if res != porcupine.Illegal {
		return res, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "history of %d operations is not linearizable", len(ops))
	if err := porcupine.VisualizePath(RegisterModel, info, vizPath); err == nil {
		fmt.Fprintf(&b, " (visualisation: %s)", vizPath)
	}
	b.WriteString(":\n")
	for _, op := range ops {
		fmt.Fprintf(&b, "  client %d [%9.3fms, %9.3fms] %s %v\n", op.ClientId,
			float64(op.Call)/1e6, float64(op.Return)/1e6, RegisterModel.DescribeOperation(op.Input, op.Output), op.Metadata)
	}
	return res, fmt.Errorf("%s", b.String())
}
