package command

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"
)

// defaultInitFile is the file `berth job init` writes.
const defaultInitFile = "example.nomad.hcl"

func newJobInitCommand(g *globals) *cobra.Command {
	var short bool
	cmd := &cobra.Command{
		Use:   "init [FILE]",
		Short: "Write an example job file",
		Long: `Write a commented example service job to FILE (default ` + defaultInitFile + `)
in Nomad's HCL format. An existing file is never overwritten. With -short the
comments are left out.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := defaultInitFile
			if len(args) == 1 {
				path = args[0]
			}
			content := exampleJob
			if short {
				content = exampleJobShort
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("job file %q already exists", path)
			}
			if err != nil {
				return fmt.Errorf("write job file: %w", err)
			}
			if _, err := f.WriteString(content); err != nil {
				f.Close()
				return fmt.Errorf("write job file: %w", err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("write job file: %w", err)
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"File": path})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Example job file written to %s\n", path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&short, "short", false, "leave the explanatory comments out")
	return cmd
}

const exampleJobShort = `job "example" {
  type = "service"

  group "web" {
    count = 2

    network {
      port "http" {
        to = 80
      }
    }

    service {
      name     = "web"
      port     = "http"
      provider = "nomad"

      check {
        type     = "http"
        path     = "/"
        interval = "10s"
        timeout  = "2s"
      }
    }

    restart {
      attempts = 2
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }

    task "nginx" {
      driver = "docker"

      config {
        image = "nginx:1.27-alpine"
        ports = ["http"]
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}
`

const exampleJob = `# An example berth job: a web server running as two instances behind a
# service. berth reads Nomad's job file format, so this file also runs on
# Nomad. Check it with "berth job validate example.nomad.hcl" and submit it
# with "berth job run example.nomad.hcl".

# A job is the unit you submit. Its name is its ID, unique in a namespace.
job "example" {
  # "service" jobs run until stopped and are restarted and rescheduled when
  # they fail. Other types: "batch" (runs to completion), "system" (one
  # instance on every node) and "sysbatch".
  type = "service"

  # Where the job may run. "*" (the default) is every datacenter.
  # datacenters = ["dc1"]

  # How new versions of the job roll out: one instance at a time, each one
  # healthy for 10s before the next, reverting automatically on failure.
  update {
    max_parallel     = 1
    min_healthy_time = "10s"
    healthy_deadline = "3m"
    auto_revert      = true
  }

  # A group is a set of tasks placed together on one node, sharing one
  # network namespace: the Kubernetes pod. "count" is how many instances
  # (allocations) of the group to run.
  group "web" {
    count = 2

    # The group's network: a dynamic host port named "http", forwarded to
    # port 80 inside the allocation.
    network {
      port "http" {
        to = 80
      }
    }

    # Register the group as a service, with a health check. Other jobs reach
    # it by name through berth's DNS and the service's virtual IP.
    service {
      name     = "web"
      port     = "http"
      provider = "nomad"

      check {
        type     = "http"
        path     = "/"
        interval = "10s"
        timeout  = "2s"
      }
    }

    # Restart a failed task in place up to twice in 30 minutes, then fail
    # the allocation so that the scheduler places it elsewhere.
    restart {
      attempts = 2
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }

    # A task is one process run by a driver. "docker" task configs run on
    # berth's containerd driver unchanged.
    task "nginx" {
      driver = "docker"

      config {
        image = "nginx:1.27-alpine"
        ports = ["http"]
      }

      # What the scheduler reserves for the task: CPU in MHz, memory in MiB.
      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}
`
