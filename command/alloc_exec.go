package command

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/api"
)

// exitCodeError ends the CLI with a given exit code and no message: the
// exit code of a command run by `alloc exec`.
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

// execSingleDashFlags are the exec flags Nomad spells with one dash. The
// CLI turns "-t" into "--t" wherever it appears; after ALLOC the words
// belong to the remote command, so they are turned back.
var execSingleDashFlags = map[string]bool{"--i": true, "--t": true, "--task": true}

func newAllocExecCommand(g *globals) *cobra.Command {
	var interactive, tty bool
	var task string
	cmd := &cobra.Command{
		Use:   "exec [-i] [-t] [-task TASK] ALLOC COMMAND [ARGS...]",
		Short: "Run a command in a task of an allocation",
		Long: `Run a command inside a running task (by allocation ID or unique prefix;
-task when the allocation has several tasks). Standard input is passed
unless -i=false; -t gives the command a terminal (the default when stdin
and stdout are terminals). The exit code is the command's.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageErrorf("give an allocation and a command")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			command := args[1:]
			for i, a := range command {
				if execSingleDashFlags[a] {
					command[i] = a[1:]
				}
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
			stdin := cmd.InOrStdin()
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if !cmd.Flags().Changed("t") {
				tty = isTerminal(stdin) && isTerminal(stdout)
			}
			var resize chan api.TerminalSize
			if tty {
				if in, ok := stdin.(*os.File); ok && term.IsTerminal(int(in.Fd())) {
					restore, err := makeRaw(in)
					if err != nil {
						return err
					}
					defer restore()
				}
				resize = make(chan api.TerminalSize, 1)
				stop := watchTerminalSize(stdout, resize)
				defer stop()
			}
			var in io.Reader
			if interactive {
				in = stdin
			}
			code, err := c.Allocations().Exec(ctx, a.ID, task, tty, command, in, stdout, stderr, resize, &api.QueryOptions{Namespace: a.Namespace})
			if err != nil {
				return fmt.Errorf("exec in allocation %q: %w", a.ID, err)
			}
			if code != 0 {
				return &exitCodeError{code: code}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVar(&interactive, "i", true, "pass standard input to the command")
	fl.BoolVar(&tty, "t", false, "allocate a terminal (default: when stdin and stdout are terminals)")
	fl.StringVar(&task, "task", "", "the task to run the command in")
	return cmd
}

// isTerminal reports whether the stream is a terminal.
func isTerminal(s any) bool {
	f, ok := s.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// makeRaw puts the terminal in raw mode, so keys reach the remote command
// as typed; the returned function restores it.
func makeRaw(f *os.File) (func(), error) {
	old, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("set terminal raw mode: %w", err)
	}
	return func() { _ = term.Restore(int(f.Fd()), old) }, nil
}

// watchTerminalSize sends out's size now and on every SIGWINCH until the
// returned function is called.
func watchTerminalSize(out io.Writer, sizes chan<- api.TerminalSize) func() {
	f, ok := out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	send := func() {
		w, h, err := term.GetSize(int(f.Fd()))
		if err != nil {
			return
		}
		select {
		case sizes <- api.TerminalSize{Width: w, Height: h}:
		default: // a newer size follows the pending one
		}
	}
	send()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
				send()
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
