// Package command is berth's command-line interface (cobra). Every command
// except server and dev is a client of the HTTP API and talks to it only
// through package api.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/api"
)

// Exit codes that scripts can rely on.
const (
	ExitOK    = 0 // success
	ExitError = 1 // the command ran and failed: API error, validation error…
	ExitUsage = 2 // the command line is wrong: unknown command or flag, bad arguments
)

// Execute runs the berth command line args (without the program name) and
// returns the process exit code. Nomad-style single-dash long flags
// (-address X, -purge) are accepted alongside --address X.
func Execute(args []string) int {
	// The first Ctrl-C cancels the command's context (cmd.Context()); once
	// it has, the default handling is restored, so a second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	return execute(ctx, args, os.Stdout, os.Stderr)
}

func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetOut(stdout)
	root.SetErr(stderr)

	// A command counts as started once its RunE is entered; an error before
	// that (unknown command, bad flag, wrong number of arguments) is a usage
	// error.
	started := false
	wrapRunE(root, func() { started = true })

	root.SetArgs(rewriteArgs(root, args))
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	if cmd == nil {
		cmd = root
	}
	var ue *usageError
	if !started || errors.As(err, &ue) {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		fmt.Fprintf(stderr, "Run '%s -help' for usage.\n", cmd.CommandPath())
		return ExitUsage
	}
	var ec *exitCodeError // alloc exec: the remote command's exit code
	if errors.As(err, &ec) {
		return ec.code
	}
	var se silentError
	if !errors.As(err, &se) {
		fmt.Fprintf(stderr, "Error: %v\n", err)
	}
	return ExitError
}

// usageError marks an error in how the command was invoked (exit code 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &usageError{err: fmt.Errorf(format, a...)}
}

// silentError fails the command (exit 1) after it already printed why.
type silentError struct{}

func (silentError) Error() string { return "command failed" }

// wrapRunE calls mark before the RunE of cmd and all its descendants.
func wrapRunE(cmd *cobra.Command, mark func()) {
	if orig := cmd.RunE; orig != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			mark()
			return orig(c, args)
		}
	} else if orig := cmd.Run; orig != nil {
		cmd.Run = func(c *cobra.Command, args []string) {
			mark()
			orig(c, args)
		}
	}
	for _, sub := range cmd.Commands() {
		wrapRunE(sub, mark)
	}
}

// globals are the flags every command inherits.
type globals struct {
	address   string
	token     string
	namespace string
	region    string
	json      bool
}

func newRootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "berth",
		Short: "berth is a Nomad-compatible container orchestrator",
		Long: `berth is a container orchestrator in one binary: Raft control-plane servers,
worker agents, and this CLI, which speaks Nomad's /v1 HTTP API.

Flags may be written Nomad-style with one dash (-address X) or with two.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// No Run: without arguments cobra prints the help, and an unknown
		// subcommand is an error from Find (a usage error).
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{err: err}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.address, "address", "", "address of the berth HTTP API (env BERTH_ADDR or NOMAD_ADDR; default "+api.DefaultAddress+")")
	pf.StringVar(&g.token, "token", "", "ACL token (env BERTH_TOKEN or NOMAD_TOKEN)")
	pf.StringVar(&g.namespace, "namespace", "", `namespace to act in, "*" for all when listing (env BERTH_NAMESPACE or NOMAD_NAMESPACE)`)
	pf.StringVar(&g.region, "region", "", "region to send requests to (env BERTH_REGION or NOMAD_REGION)")
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON instead of tables")

	server := newServerCommand()
	server.AddCommand(newServerMembersCommand(g))

	root.AddCommand(
		server,
		newDevCommand(),
		newAgentCommand(),
		newPluginCommand(),
		newLabCommand(),
		newStatusCommand(g),
		newJobCommand(g),
		newNodeCommand(g),
		newOperatorCommand(g),
		newAllocCommand(g),
		newEvalCommand(g),
	)
	return root
}

// client returns an API client configured from the environment and the
// global flags (flags win).
func (g *globals) client() (*api.Client, error) {
	cfg := api.DefaultConfig()
	if g.address != "" {
		cfg.Address = g.address
	}
	if g.token != "" {
		cfg.Token = g.token
	}
	if g.namespace != "" {
		cfg.Namespace = g.namespace
	}
	if g.region != "" {
		cfg.Region = g.region
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, &usageError{err: err}
	}
	return c, nil
}

// effectiveNamespace is the namespace from the flag or the environment.
func (g *globals) effectiveNamespace() string {
	if g.namespace != "" {
		return g.namespace
	}
	return api.DefaultConfig().Namespace
}

// groupCommand is a command that only holds subcommands: without arguments
// it prints its help; with an unknown subcommand it is a usage error.
func groupCommand(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
}

// exactArgs, maxArgs and rangeArgs are cobra's validators returning usage
// errors.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageErrorf("%s takes at most %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}

// rewriteArgs turns Nomad-style single-dash long flags into pflag's
// double-dash form: "-name" and "-name=value" become "--name" and
// "--name=value" when name is a long flag of the command the arguments
// select (its local or inherited flags). Everything after "--", single-dash
// arguments that name no long flag (shorthands like -h, negative numbers,
// "-") and the values of flags are left alone. For cobra's hidden
// completion commands the word being completed is left alone too.
func rewriteArgs(root *cobra.Command, args []string) []string {
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		if len(args) < 3 {
			return args
		}
		head := append([]string{args[0]}, rewriteArgs(root, args[1:len(args)-1])...)
		return append(head, args[len(args)-1])
	}

	target := findCommand(root, args)
	target.InitDefaultHelpFlag()
	flags := commandFlags(target)

	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		name, hasValue, dashes := splitFlag(a)
		if dashes == 0 {
			out = append(out, a)
			continue
		}
		f := flags.Lookup(name)
		if dashes == 1 && f == nil {
			// Unknown single-dash argument, or a shorthand (-h): leave it,
			// but a value-taking shorthand still consumes the next word.
			out = append(out, a)
			if len(name) == 1 && !hasValue {
				if sf := flags.ShorthandLookup(name); sf != nil && sf.NoOptDefVal == "" && i+1 < len(args) {
					i++
					out = append(out, args[i])
				}
			}
			continue
		}
		if dashes == 1 {
			a = "-" + a
		}
		out = append(out, a)
		if f != nil && !hasValue && f.NoOptDefVal == "" && i+1 < len(args) {
			i++
			out = append(out, args[i]) // the flag's value, verbatim
		}
	}
	return out
}

// findCommand walks args from root to the command they select, the way
// cobra's Find does, but knowing that "-name value" (single dash) consumes
// its value.
func findCommand(root *cobra.Command, args []string) *cobra.Command {
	cur := root
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, hasValue, dashes := splitFlag(a)
		if dashes > 0 {
			flags := commandFlags(cur)
			f := flags.Lookup(name)
			if f == nil && dashes == 1 && len(name) == 1 {
				f = flags.ShorthandLookup(name)
			}
			if f != nil && !hasValue && f.NoOptDefVal == "" {
				i++ // skip the value
			}
			continue
		}
		next := subcommand(cur, a)
		if next == nil {
			break // first positional argument: cur is the target
		}
		cur = next
	}
	return cur
}

func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, sub := range cmd.Commands() {
		if sub.Name() == name || sub.HasAlias(name) {
			return sub
		}
	}
	return nil
}

// commandFlags is every flag cmd accepts: its own and the persistent flags
// of its ancestors.
func commandFlags(cmd *cobra.Command) *pflag.FlagSet {
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	fs.AddFlagSet(cmd.LocalFlags()) // its own flags, persistent ones included
	fs.AddFlagSet(cmd.InheritedFlags())
	return fs
}

// splitFlag parses one argument as a flag: its name, whether "=value" is
// attached, and how many leading dashes it has (0 when it is no flag:
// positional arguments, "-" and negative numbers).
func splitFlag(a string) (name string, hasValue bool, dashes int) {
	switch {
	case strings.HasPrefix(a, "--"):
		dashes = 2
	case strings.HasPrefix(a, "-") && len(a) > 1:
		dashes = 1
	default:
		return "", false, 0
	}
	name = a[dashes:]
	if name == "" || name[0] == '-' || name[0] == '=' {
		return "", false, 0
	}
	if dashes == 1 && (name[0] >= '0' && name[0] <= '9' || name[0] == '.') {
		return "", false, 0 // a negative number
	}
	if eq := strings.IndexByte(name, '='); eq >= 0 {
		name, hasValue = name[:eq], true
	}
	return name, hasValue, dashes
}
