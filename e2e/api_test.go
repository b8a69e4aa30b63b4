package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Minimal HTTP client for the tests, so that each outcome (refused,
// unknown, ok) is classified from the status code itself.

var httpc = &http.Client{Timeout: 5 * time.Second}

// statusError is a non-2xx answer.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

func do(ctx context.Context, method, addr, path string, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return resp.Header, &statusError{code: resp.StatusCode, body: string(bytes.TrimSpace(b))}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.Header, fmt.Errorf("decode %s: %w", path, err)
		}
	}
	return resp.Header, nil
}

// httpCode is the status of a statusError (0 for other errors).
func httpCode(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	return 0
}

// jobSpec is a service job in the API's JSON. A count of 0 places
// nothing (the register workload); command/args run under raw_exec.
func jobSpec(id string, count int, meta map[string]string, command string, args ...string) map[string]any {
	return map[string]any{"Job": map[string]any{
		"ID": id, "Name": id, "Type": "service", "Datacenters": []string{"dc1"}, "Meta": meta,
		"TaskGroups": []any{map[string]any{
			"Name": "g", "Count": count,
			"RestartPolicy": map[string]any{"Attempts": 0, "Mode": "fail"},
			"Tasks": []any{map[string]any{
				"Name": "t", "Driver": "raw_exec",
				"Config":    map[string]any{"command": command, "args": args},
				"Resources": map[string]any{"CPU": 20, "MemoryMB": 16},
			}},
		}},
	}}
}

func registerJob(ctx context.Context, addr string, spec map[string]any) error {
	_, err := do(ctx, http.MethodPut, addr, "/v1/jobs", spec, nil)
	return err
}

// readMeta reads a job's meta key ("" when the job does not exist).
func readMeta(ctx context.Context, addr, id, key string) (string, error) {
	var job struct{ Meta map[string]string }
	_, err := do(ctx, http.MethodGet, addr, "/v1/job/"+id, nil, &job)
	if httpCode(err) == http.StatusNotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return job.Meta[key], nil
}

type allocStub struct {
	ID, NodeID, NodeName, ClientStatus, DesiredStatus string
}

func jobAllocs(ctx context.Context, addr, id string) ([]allocStub, error) {
	var out []allocStub
	_, err := do(ctx, http.MethodGet, addr, "/v1/job/"+id+"/allocations", nil, &out)
	return out, err
}

// runningBy counts a job's running allocations per node name.
func runningBy(allocs []allocStub, nodeName map[string]string) map[string]int {
	out := map[string]int{}
	for _, a := range allocs {
		if a.ClientStatus == "running" && a.DesiredStatus == "run" {
			out[nodeName[a.NodeID]]++
		}
	}
	return out
}

type nodeStub struct{ ID, Name, Status string }

// nodeNames maps node IDs to names, and names to status.
func nodeNames(ctx context.Context, addr string) (byID map[string]string, status map[string]string, err error) {
	var nodes []nodeStub
	if _, err := do(ctx, http.MethodGet, addr, "/v1/nodes", nil, &nodes); err != nil {
		return nil, nil, err
	}
	byID, status = map[string]string{}, map[string]string{}
	for _, n := range nodes {
		byID[n.ID], status[n.Name] = n.Name, n.Status
	}
	return byID, status, nil
}

// jobIDs lists the jobs a server knows, answered from its own state
// (?stale) so that a partitioned or lagging server can be compared, with
// the index of that state.
func jobIDs(ctx context.Context, addr string) ([]string, uint64, error) {
	var jobs []struct{ ID string }
	h, err := do(ctx, http.MethodGet, addr, "/v1/jobs?stale", nil, &jobs)
	if err != nil {
		return nil, 0, err
	}
	idx, _ := strconv.ParseUint(h.Get("X-Nomad-Index"), 10, 64)
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return ids, idx, nil
}

func slicesSort(s []string) { sort.Strings(s) }
