package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
)

// defaultTailLines is what -tail shows without -n or -c, as Nomad.
const defaultTailLines = 10

// tailBytesPerLine is how far back from the end -n N starts reading
// (N lines of up to this many bytes); only the last N lines are printed.
const tailBytesPerLine = 1024

type allocLogsFlags struct {
	follow, stderr, tail bool
	lines                int
	bytes                int64
	task                 string
}

func newAllocLogsCommand(g *globals) *cobra.Command {
	var f allocLogsFlags
	cmd := &cobra.Command{
		Use:   "logs [-f] [-stderr] [-tail] [-n LINES] [-c BYTES] [-task TASK] ALLOC [TASK]",
		Short: "Print the logs of a task of an allocation",
		Long: `Print a task's stdout (or stderr with -stderr). The task may be left out
when the allocation has only one.

  -f      keep printing what the task writes (until Ctrl-C)
  -tail   start from the end: the last 10 lines, or -n LINES, or -c BYTES
  -n      with -tail, how many lines
  -c      with -tail, how many bytes`,
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			task := f.task
			if len(args) == 2 {
				if task != "" && task != args[1] {
					return usageErrorf("task given twice: -task %q and %q", task, args[1])
				}
				task = args[1]
			}
			if !f.tail && (f.lines >= 0 || f.bytes >= 0) {
				return usageErrorf("-n and -c go with -tail")
			}
			if f.lines >= 0 && f.bytes >= 0 {
				return usageErrorf("give -n or -c, not both")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			a, err := resolveAlloc(c, args[0], (&api.QueryOptions{}).WithContext(ctx))
			if err != nil {
				return err
			}
			if task, err = pickTask(a, task); err != nil {
				return err
			}
			q := &api.QueryOptions{Namespace: a.Namespace}
			return printLogs(ctx, c.AllocFS(), cmd.OutOrStdout(), a.ID, task, &f, q)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.follow, "f", false, "follow the log")
	fl.BoolVar(&f.stderr, "stderr", false, "print stderr instead of stdout")
	fl.BoolVar(&f.tail, "tail", false, "start from the end of the log")
	fl.IntVar(&f.lines, "n", -1, "with -tail: number of lines (default 10)")
	fl.Int64Var(&f.bytes, "c", -1, "with -tail: number of bytes")
	fl.StringVar(&f.task, "task", "", "the task whose logs to print")
	return cmd
}

// printLogs writes the log as the flags ask. -tail -n reads a generous
// window from the end and keeps its last lines; with -f it then follows
// from the end, so lines written between the two reads can be missed.
func printLogs(ctx context.Context, fs *api.AllocFS, out io.Writer, allocID, task string, f *allocLogsFlags, q *api.QueryOptions) error {
	kind := api.LogTypeStdout
	if f.stderr {
		kind = api.LogTypeStderr
	}
	switch {
	case !f.tail:
		return copyFrames(ctx, fs, out, allocID, task, kind, api.OriginStart, 0, f.follow, q)
	case f.bytes >= 0:
		return copyFrames(ctx, fs, out, allocID, task, kind, api.OriginEnd, f.bytes, f.follow, q)
	}
	lines := f.lines
	if lines < 0 {
		lines = defaultTailLines
	}
	var buf bytes.Buffer
	if err := copyFrames(ctx, fs, &buf, allocID, task, kind, api.OriginEnd, int64(lines)*tailBytesPerLine, false, q); err != nil {
		return err
	}
	if _, err := out.Write(lastLines(buf.Bytes(), lines)); err != nil {
		return err
	}
	if !f.follow {
		return nil
	}
	return copyFrames(ctx, fs, out, allocID, task, kind, api.OriginEnd, 0, true, q)
}

// copyFrames streams one log request's data to out. The end of ctx (Ctrl-C
// while following) is a normal end.
func copyFrames(ctx context.Context, fs *api.AllocFS, out io.Writer, allocID, task, kind, origin string, offset int64, follow bool, q *api.QueryOptions) error {
	frames, errs := fs.Logs(ctx, allocID, task, kind, origin, offset, follow, q)
	for fr := range frames {
		if fr.FileEvent != "" {
			continue
		}
		if _, err := out.Write(fr.Data); err != nil {
			return fmt.Errorf("write logs: %w", err)
		}
	}
	if err := <-errs; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("logs of allocation %s task %s: %w", allocID, task, err)
	}
	return nil
}

// lastLines returns the last n lines of data (a trailing newline does not
// start a line of its own).
func lastLines(data []byte, n int) []byte {
	if n <= 0 {
		return nil
	}
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if data[i] == '\n' {
			n--
			if n == 0 {
				return data[i+1:]
			}
		}
	}
	return data
}
