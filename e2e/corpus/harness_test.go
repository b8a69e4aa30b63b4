package corpus

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/reference"

	"github.com/berth-dev/berth/agent"
	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/containerdtest"
	"github.com/berth-dev/berth/jobspec"
	"github.com/berth-dev/berth/structs"
)

// corpusDir is the shared job file corpus, beside the repository (the
// jobspec corpus test finds it the same way).
var corpusDir = filepath.Join("..", "..", "..", "shared", "jobspec-corpus")

// requireCorpus returns the corpus directory; a missing corpus fails the
// test in CI and skips it elsewhere.
func requireCorpus(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(corpusDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("job file corpus missing at %s: %v", corpusDir, err)
		}
		t.Skipf("job file corpus not found at %s", corpusDir)
	}
	return corpusDir
}

// parseCorpusJob parses one corpus file unmodified, with its variables'
// defaults only.
func parseCorpusJob(t *testing.T, dir, file string) *structs.Job {
	t.Helper()
	job, warnings, err := jobspec.ParseFile(filepath.Join(dir, file), jobspec.Options{Env: []string{}})
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	for _, w := range warnings {
		t.Logf("%s: warning: %s", file, w)
	}
	return job
}

// dockerImages lists the images the job's docker tasks name, as written.
func dockerImages(job *structs.Job) []string {
	seen := map[string]bool{}
	var out []string
	for _, tg := range job.TaskGroups {
		for _, task := range tg.Tasks {
			if task.Driver != "docker" {
				continue
			}
			if img, ok := task.Config["image"].(string); ok && !seen[img] {
				seen[img] = true
				out = append(out, img)
			}
		}
	}
	sort.Strings(out)
	return out
}

// mirrorImages pushes the test image to reg under every image name given
// (normalized: "redis:7" → library/redis:7, "ghcr.io/a/b:1" → a/b:1) and
// returns the agent's mirror configuration sending each of their
// registries to reg, plus each name's normalized reference.
func mirrorImages(t *testing.T, reg *containerdtest.RegistryServer, images []string) (map[string][]string, map[string]string) {
	t.Helper()
	mirrors := map[string][]string{}
	normalized := map[string]string{}
	for _, name := range images {
		named, err := reference.ParseDockerRef(name)
		if err != nil {
			t.Fatalf("image %q: %v", name, err)
		}
		tagged, ok := named.(reference.Tagged)
		if !ok {
			t.Fatalf("image %q: no tag after normalizing (%s)", name, named)
		}
		containerdtest.BuildTestImage(t, reg, reference.Path(named), tagged.Tag())
		mirrors[reference.Domain(named)] = []string{"http://" + reg.Host}
		normalized[name] = named.String()
	}
	return mirrors, normalized
}

var (
	berthOnce sync.Once
	berthBin  string
	berthErr  error
)

// berthBinary builds the berth binary once per test run: the agent
// launches its driver plugins by re-executing it, as in production.
func berthBinary(t *testing.T) string {
	t.Helper()
	berthOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-corpus-bin-")
		if err != nil {
			berthErr = err
			return
		}
		berthBin = filepath.Join(dir, "berth")
		out, err := exec.Command("go", "build", "-o", berthBin, "github.com/berth-dev/berth").CombinedOutput()
		if err != nil {
			berthErr = fmt.Errorf("go build berth: %w\n%s", err, out)
		}
	})
	if berthErr != nil {
		t.Fatal(berthErr)
	}
	return berthBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if berthBin != "" {
		os.RemoveAll(filepath.Dir(berthBin))
	}
	os.Exit(code)
}

// testLogWriter sends log lines to t.Log until the test ends (late lines
// from shutting-down goroutines are dropped rather than panicking).
type testLogWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// startAgent starts an agent and waits until its node is registered.
func startAgent(t *testing.T, cfg agent.Config) *agent.Agent {
	t.Helper()
	w := &testLogWriter{t: t}
	t.Cleanup(w.stop) // runs after a.Shutdown (cleanups are LIFO)
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := agent.New(cfg, logger.With("agent", cfg.NodeName))
	if err != nil {
		t.Fatalf("new agent: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("start agent: %v", err)
	}
	t.Cleanup(a.Shutdown)
	select {
	case <-a.Registered():
	case <-time.After(15 * time.Second):
		t.Fatal("agent did not register")
	}
	return a
}

// waitAllocs blocks on the job's allocations (blocking queries, bounded by
// timeout) until done says the list is what the test waits for.
func waitAllocs(t *testing.T, cl *api.Client, jobID string, timeout time.Duration, what string, done func([]*structs.AllocListStub) bool) []*structs.AllocListStub {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var index uint64
	var last []*structs.AllocListStub
	for time.Now().Before(deadline) {
		wait := min(2*time.Second, time.Until(deadline))
		allocs, meta, err := cl.Jobs().Allocations(jobID, &api.QueryOptions{WaitIndex: index, WaitTime: wait})
		if err != nil {
			t.Logf("%s: list allocations: %v", jobID, err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		last = allocs
		if done(allocs) {
			return allocs
		}
		if meta != nil && meta.LastIndex > index {
			index = meta.LastIndex
		} else {
			// an unchanged index would answer at once: pause briefly
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Fatalf("%s: %s: not within %s; last allocations:\n%s", jobID, what, timeout, describeAllocs(last))
	return nil
}

func describeAllocs(allocs []*structs.AllocListStub) string {
	var b strings.Builder
	for _, al := range allocs {
		fmt.Fprintf(&b, "  %s group=%s desired=%s client=%s\n", al.ID, al.TaskGroup, al.DesiredStatus, al.ClientStatus)
		for name, st := range al.TaskStates {
			fmt.Fprintf(&b, "    task %s: %s failed=%v restarts=%d\n", name, st.State, st.Failed, st.Restarts)
			for _, ev := range st.Events {
				fmt.Fprintf(&b, "      %s: %s %s\n", ev.Type, ev.DisplayMessage, ev.Message)
			}
		}
	}
	return b.String()
}

// taskStdout reads a task's stdout through the agent's logs API.
func taskStdout(agentAddr, allocID, task string) (string, error) {
	url := fmt.Sprintf("http://%s/v1/client/fs/logs/%s?task=%s&type=stdout&plain=true&origin=start", agentAddr, allocID, task)
	resp, err := http.Get(url)
	if err != nil {
		return "", fmt.Errorf("get logs: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read logs: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("logs: %s: %s", resp.Status, b)
	}
	return string(b), nil
}
