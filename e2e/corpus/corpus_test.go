package corpus

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/agent"
	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/containerdtest"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/structs"
)

// runnableDockerJobs are corpus files whose docker groups berth runs on one
// node without Consul: host-mode networks (ports with "to" are allocated
// and passed through), Nomad-provider services, no artifacts or
// Consul-only templates. Their images are mirrored, their text untouched.
var runnableDockerJobs = []string{
	// "example" (nomad job init): redis:7, a Nomad service, identity,
	// shutdown_delay, datacenters ["*"]
	"hashicorp__nomad__command__asset__example.nomad.hcl",
	// "example" built with dynamic group/task/port blocks: two groups,
	// redis:7 and redis:latest, datacenters ["dc1"]
	"angrycub__nomad_example_jobs__HCL2__dynamic__example.nomad",
	// "networking" from Nomad's e2e suite: a bridge-mode group with an
	// interpolated hostname, busybox:1 with command "/bin/sleep" args
	// ["300"],
	// datacenters ["dc1", "dc2"], a kernel.name constraint
	"hashicorp__nomad__e2e__networking__inputs__docker_bridged_hostname_interpolation.nomad",
}

// eventStarted is the task event the agent records when a task starts.
const eventStarted = "Started"

// Unmodified real-world docker jobs run on berth, their images pulled
// through a registry mirror (issue #5: air-gapped clusters), and stop
// without leaving a container behind.
//
// Bridge mode needs the nft network plugin: the test runs in its own
// network namespace.
func TestCorpusDockerJobsThroughMirror(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	dir := requireCorpus(t)
	h := containerdtest.Start(t)
	reg := containerdtest.Registry(t)

	jobs := make([]*structs.Job, len(runnableDockerJobs))
	var images []string
	for i, file := range runnableDockerJobs {
		jobs[i] = parseCorpusJob(t, dir, file)
		imgs := dockerImages(jobs[i])
		if len(imgs) == 0 {
			t.Fatalf("%s: no docker image", file)
		}
		images = append(images, imgs...)
	}
	mirrors, normalized := mirrorImages(t, reg, images)
	testDigest, err := containerdtest.TestImage(t).Digest()
	if err != nil {
		t.Fatal(err)
	}

	bin := berthBinary(t)
	c := servertest.NewCluster(t, 1)
	cl, err := api.NewClient(&api.Config{Address: c.HTTPAddrs()[0]})
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{
		DataDir: t.TempDir(), NodeName: "corpus-agent", BindAddr: "127.0.0.1", GossipPort: -1,
		Datacenter:    "dc1", // what the files pin (or "*")
		Servers:       c.HTTPAddrs(),
		PluginCommand: func(name string) *exec.Cmd { return exec.Command(bin, "plugin", name) },
		Containerd: agent.ContainerdConfig{
			Address: h.Address, Namespace: h.Namespace,
			Mirrors:            mirrors,
			InsecureRegistries: []string{reg.Host},
		},
		NetworkPlugin: "nft",
	}
	// runs after the agent's shutdown (cleanups are LIFO): whatever the
	// test left, in this network namespace only
	t.Cleanup(func() {
		if err := agent.CleanupNetwork(context.Background(), cfg, nil); err != nil {
			t.Logf("cleanup network: %v", err)
		}
	})
	a := startAgent(t, cfg)

	ctx := h.Context(context.Background())
	// Files share job IDs ("example"), so they run one after another.
	for i, file := range runnableDockerJobs {
		job := jobs[i]
		t.Run(file, func(t *testing.T) {
			if _, _, err := cl.Jobs().Register(job, nil); err != nil {
				t.Fatalf("register %s: %v", job.ID, err)
			}
			want := map[string]int{} // group → count
			wantAllocs, dockerTasks := 0, 0
			for _, tg := range job.TaskGroups {
				want[tg.Name] = tg.Count
				wantAllocs += tg.Count
				dockerTasks += tg.Count * len(tg.Tasks)
			}
			var allocs []*structs.AllocListStub
			waitAllocs(t, cl, job.ID, 45*time.Second, "every allocation running", func(all []*structs.AllocListStub) bool {
				// a purged job of the same ID (an earlier file) leaves its
				// stopped allocations listed under that ID
				allocs = desiredRunning(all)
				got := map[string]int{}
				for _, al := range allocs {
					if al.ClientStatus == structs.AllocClientStatusFailed {
						t.Fatalf("allocation failed:\n%s", describeAllocs(allocs))
					}
					if al.ClientStatus == structs.AllocClientStatusRunning && allTasksStarted(al) {
						got[al.TaskGroup]++
					}
				}
				return len(allocs) == wantAllocs && equalCounts(got, want)
			})

			// every task's container runs the test image, under the
			// job's own image name, with the job's own command line
			tasks := 0
			for _, al := range allocs {
				tg := job.LookupTaskGroup(al.TaskGroup)
				for _, task := range tg.Tasks {
					tasks++
					ctr, err := h.Client().LoadContainer(ctx, al.ID+"-"+task.Name)
					if err != nil {
						t.Fatalf("container of %s/%s: %v", al.ID, task.Name, err)
					}
					info, err := ctr.Info(ctx)
					if err != nil {
						t.Fatal(err)
					}
					wantRef := normalized[task.Config["image"].(string)]
					if info.Image != wantRef {
						t.Errorf("%s: container image %q, want %q", task.Name, info.Image, wantRef)
					}
					img, err := ctr.Image(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if got := img.Target().Digest.String(); got != testDigest.String() {
						t.Errorf("%s: image digest %s, want the mirrored test image %s", task.Name, got, testDigest)
					}
					// testapp, the image's entrypoint, got the job's
					// command and args (docker semantics: config.command
					// replaces the image's cmd, not its entrypoint)
					want := "testapp service: " + strings.Join(taskCommandLine(task), " ") + "\n"
					var out string
					var outErr error
					deadline := time.Now().Add(10 * time.Second)
					for out, outErr = taskStdout(a.HTTPAddr(), al.ID, task.Name); out != want && time.Now().Before(deadline); out, outErr = taskStdout(a.HTTPAddr(), al.ID, task.Name) {
						time.Sleep(100 * time.Millisecond)
					}
					if out != want {
						t.Fatalf("%s: stdout %q (%v), want %q", task.Name, out, outErr, want)
					}
				}
			}
			var netnsPaths []string
			for _, al := range allocs {
				tg := job.LookupTaskGroup(al.TaskGroup)
				if len(tg.Networks) == 0 || tg.Networks[0].Mode != "bridge" {
					continue
				}
				n := a.AllocNetwork(al.ID)
				if n == nil || n.NamespacePath == "" || n.IP == "" {
					t.Fatalf("bridge group %s: allocation network %+v", tg.Name, n)
				}
				netnsPaths = append(netnsPaths, n.NamespacePath)
				for _, task := range tg.Tasks {
					ctr, err := h.Client().LoadContainer(ctx, al.ID+"-"+task.Name)
					if err != nil {
						t.Fatal(err)
					}
					spec, err := ctr.Spec(ctx)
					if err != nil {
						t.Fatal(err)
					}
					// "mylittlepony-${NOMAD_ALLOC_INDEX}" of the only allocation
					if want := strings.ReplaceAll(tg.Networks[0].Hostname, "${NOMAD_ALLOC_INDEX}", "0"); spec.Hostname != want {
						t.Errorf("%s: hostname %q, want %q", task.Name, spec.Hostname, want)
					}
				}
			}
			if tasks != dockerTasks {
				t.Fatalf("%d tasks running, want %d", tasks, dockerTasks)
			}

			// stop (and purge, freeing the ID for the next file): every
			// allocation completes and no container is left
			if _, _, err := cl.Jobs().Deregister(job.ID, true, nil); err != nil {
				t.Fatalf("deregister %s: %v", job.ID, err)
			}
			servertest.WaitFor(t, 30*time.Second, "no containers left in the namespace", func() bool {
				ctrs, err := h.Client().Containers(ctx)
				return err == nil && len(ctrs) == 0
			})
			for _, al := range allocs {
				servertest.WaitFor(t, 15*time.Second, "allocation "+al.ID+" stopped on the agent", func() bool {
					for _, got := range a.Allocs() {
						if got.ID == al.ID {
							return got.ClientStatus == structs.AllocClientStatusComplete
						}
					}
					return true // already garbage-collected
				})
			}
			for _, p := range netnsPaths {
				servertest.WaitFor(t, 15*time.Second, "allocation namespace "+p+" removed", func() bool {
					_, err := os.Stat(p)
					return errors.Is(err, fs.ErrNotExist)
				})
			}
		})
	}
}

// allTasksStarted says every task of the allocation runs and recorded a
// Started event.
func allTasksStarted(al *structs.AllocListStub) bool {
	if len(al.TaskStates) == 0 {
		return false
	}
	for _, st := range al.TaskStates {
		if st.State != "running" {
			return false
		}
		started := false
		for _, ev := range st.Events {
			started = started || ev.Type == eventStarted
		}
		if !started {
			return false
		}
	}
	return true
}

// taskCommandLine is the task's config command and args, as the docker
// driver appends them to the image's entrypoint.
func taskCommandLine(task *structs.Task) []string {
	var out []string
	if cmd, ok := task.Config["command"].(string); ok && cmd != "" {
		out = append(out, cmd)
	}
	raw, _ := task.Config["args"].([]any)
	for _, a := range raw {
		out = append(out, fmt.Sprint(a))
	}
	return out
}

func desiredRunning(allocs []*structs.AllocListStub) []*structs.AllocListStub {
	var out []*structs.AllocListStub
	for _, al := range allocs {
		if al.DesiredStatus == structs.AllocDesiredStatusRun {
			out = append(out, al)
		}
	}
	return out
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
