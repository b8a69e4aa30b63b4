package command

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

func newOperatorSchedulerCommand(g *globals) *cobra.Command {
	sched := groupCommand("scheduler", "Show and change the scheduler configuration")
	sched.AddCommand(newSchedulerGetConfigCommand(g), newSchedulerSetConfigCommand(g))
	return sched
}

func newSchedulerGetConfigCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get-config",
		Short: "Show the scheduler configuration",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			cfg, _, err := c.Operator().SchedulerGetConfiguration((&api.QueryOptions{}).WithContext(cmd.Context()))
			if err != nil {
				return fmt.Errorf("get scheduler configuration: %w", err)
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), cfg)
			}
			return writeSchedulerConfig(cmd.OutOrStdout(), cfg)
		},
	}
}

func writeSchedulerConfig(w io.Writer, cfg *structs.SchedulerConfiguration) error {
	p := cfg.PreemptionConfig
	return writeKV(w, []kv{
		{"Scheduler Algorithm", cfg.EffectiveAlgorithm()},
		{"Memory Oversubscription", fmt.Sprint(cfg.MemoryOversubscriptionEnabled)},
		{"Reject Job Registration", fmt.Sprint(cfg.RejectJobRegistration)},
		{"Pause Eval Broker", fmt.Sprint(cfg.PauseEvalBroker)},
		{"Preemption System Scheduler", fmt.Sprint(p.SystemSchedulerEnabled)},
		{"Preemption SysBatch Scheduler", fmt.Sprint(p.SysBatchSchedulerEnabled)},
		{"Preemption Batch Scheduler", fmt.Sprint(p.BatchSchedulerEnabled)},
		{"Preemption Service Scheduler", fmt.Sprint(p.ServiceSchedulerEnabled)},
		{"Modify Index", fmt.Sprint(cfg.ModifyIndex)},
	})
}

// boolValue is a boolean flag that takes its value as a separate word, as
// Nomad's do: "-preempt-service-scheduler true". (A plain pflag bool would
// leave "true" behind as a positional argument.)
type boolValue struct {
	set bool
	v   bool
}

var _ pflag.Value = (*boolValue)(nil)

func (b *boolValue) String() string {
	if !b.set {
		return ""
	}
	return strconv.FormatBool(b.v)
}

func (b *boolValue) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	b.v, b.set = v, true
	return nil
}

func (b *boolValue) Type() string { return "true|false" }

// apply sets *dst when the flag was given.
func (b *boolValue) apply(dst *bool) {
	if b.set {
		*dst = b.v
	}
}

// schedulerConfigFlags are set-config's flags; only those given change the
// configuration.
type schedulerConfigFlags struct {
	algorithm                           string
	memOversub, rejectJobs, pauseBroker boolValue
	preemptSystem, preemptSysBatch      boolValue
	preemptBatch, preemptService        boolValue
	checkIndex                          uint64
	checkIndexSet                       bool
}

// applyTo changes cfg as the flags say.
func (f *schedulerConfigFlags) applyTo(cfg *structs.SchedulerConfiguration) error {
	switch f.algorithm {
	case "":
	case structs.SchedulerAlgorithmBinpack, structs.SchedulerAlgorithmSpread:
		cfg.SchedulerAlgorithm = f.algorithm
	default:
		return usageErrorf("-scheduler-algorithm must be %q or %q, not %q",
			structs.SchedulerAlgorithmBinpack, structs.SchedulerAlgorithmSpread, f.algorithm)
	}
	f.memOversub.apply(&cfg.MemoryOversubscriptionEnabled)
	f.rejectJobs.apply(&cfg.RejectJobRegistration)
	f.pauseBroker.apply(&cfg.PauseEvalBroker)
	f.preemptSystem.apply(&cfg.PreemptionConfig.SystemSchedulerEnabled)
	f.preemptSysBatch.apply(&cfg.PreemptionConfig.SysBatchSchedulerEnabled)
	f.preemptBatch.apply(&cfg.PreemptionConfig.BatchSchedulerEnabled)
	f.preemptService.apply(&cfg.PreemptionConfig.ServiceSchedulerEnabled)
	return nil
}

func newSchedulerSetConfigCommand(g *globals) *cobra.Command {
	var sf schedulerConfigFlags
	cmd := &cobra.Command{
		Use:   "set-config [flags]",
		Short: "Change the scheduler configuration",
		Long: `Change the cluster's scheduler configuration. Only the settings given change;
the others keep their current value. With -check-index N the change is made
only if the configuration's modify index is still N.

Example:
  berth operator scheduler set-config -scheduler-algorithm spread -preempt-service-scheduler true`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			sf.checkIndexSet = cmd.Flags().Changed("check-index")
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cfg, _, err := c.Operator().SchedulerGetConfiguration((&api.QueryOptions{}).WithContext(ctx))
			if err != nil {
				return fmt.Errorf("get scheduler configuration: %w", err)
			}
			if err := sf.applyTo(cfg); err != nil {
				return err
			}
			w := (&api.WriteOptions{}).WithContext(ctx)
			var resp *api.SchedulerSetConfigurationResponse
			if sf.checkIndexSet {
				cfg.ModifyIndex = sf.checkIndex
				resp, _, err = c.Operator().SchedulerCASConfiguration(cfg, w)
			} else {
				resp, _, err = c.Operator().SchedulerSetConfiguration(cfg, w)
			}
			if err != nil {
				return fmt.Errorf("set scheduler configuration: %w", err)
			}
			out := cmd.OutOrStdout()
			if g.json {
				if err := writeJSON(out, resp); err != nil {
					return err
				}
			}
			if sf.checkIndexSet && !resp.Updated {
				if !g.json {
					fmt.Fprintf(cmd.ErrOrStderr(), "Scheduler configuration not updated: its modify index is no longer %d\n", sf.checkIndex)
				}
				return silentError{}
			}
			if !g.json {
				fmt.Fprintln(out, "Scheduler configuration updated!")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&sf.algorithm, "scheduler-algorithm", "", "binpack or spread")
	f.Var(&sf.memOversub, "memory-oversubscription", "let tasks use memory_max above their reservation (true|false)")
	f.Var(&sf.rejectJobs, "reject-job-registration", "refuse new job registrations (true|false)")
	f.Var(&sf.pauseBroker, "pause-eval-broker", "pause the delivery of evaluations to schedulers (true|false)")
	f.Var(&sf.preemptSystem, "preempt-system-scheduler", "let system jobs preempt (true|false)")
	f.Var(&sf.preemptSysBatch, "preempt-sysbatch-scheduler", "let sysbatch jobs preempt (true|false)")
	f.Var(&sf.preemptBatch, "preempt-batch-scheduler", "let batch jobs preempt (true|false)")
	f.Var(&sf.preemptService, "preempt-service-scheduler", "let service jobs preempt (true|false)")
	f.Uint64Var(&sf.checkIndex, "check-index", 0, "change the configuration only if its modify index is N")
	return cmd
}
