package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

var (
	failoverTrials = flag.Int("berth.failover-trials", 20, "leader failover trials")
	registerN      = flag.Int("berth.register-n", 500, "registrations per sequential register benchmark")
	registerConcN  = flag.Int("berth.register-conc-n", 2000, "registrations for the concurrent register benchmark")
	registerConc   = flag.Int("berth.register-conc", 32, "concurrent clients for the concurrent register benchmark")
	registerMax    = flag.Duration("berth.register-max", 60*time.Second, "upper bound on each register benchmark's duration")
)

// newClient returns a keep-alive client for loopback traffic only (no
// proxy), able to hold conns idle connections per server.
func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns * 4,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		Timeout: 30 * time.Second,
	}
}

// jobBody is the registration the benchmarks send: one service job with
// one docker task. No client nodes exist, so its eval stays blocked.
func jobBody(id string) []byte {
	body := map[string]any{"Job": map[string]any{
		"ID": id, "Name": id, "Type": "service",
		"TaskGroups": []any{map[string]any{
			"Name": "g", "Count": 1,
			"Tasks": []any{map[string]any{
				"Name": "t", "Driver": "docker",
				"Config": map[string]any{"image": "redis:7"},
			}},
		}},
	}}
	out, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return out
}

// registerJob PUTs one job to base (http://host:port) and returns nil on 2xx.
func registerJob(ctx context.Context, c *http.Client, base, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/v1/jobs", bytes.NewReader(jobBody(id)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("register %s at %s: %s: %s", id, base, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// getJSON GETs base+path into out with a per-request timeout.
func getJSON(c *http.Client, base, path string, timeout time.Duration, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("GET %s%s: %s: %s", base, path, resp.Status, bytes.TrimSpace(msg))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
