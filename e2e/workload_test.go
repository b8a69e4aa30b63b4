package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/berth-dev/berth/lab"
)

// registerJobID is the job whose meta "v" is the checked register.
const registerJobID = "register"

// workload runs clients against every server while a test injects
// faults: register clients write the register job's meta or read it,
// recording a History; an append client registers a new job per write
// and remembers the acknowledged ones.
type workload struct {
	h      *History
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	acked []string // jobs whose register was acknowledged
	tried int
}

// writeOutcome classifies a write's error: refused requests (4xx, the
// server said no before applying) failed; anything else is unknown.
func writeOutcome(err error) Outcome {
	if err == nil {
		return OK
	}
	if c := httpCode(err); c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests {
		return Failed
	}
	return Unknown
}

// startWorkload starts registerClients register clients and one append
// client; every client stops at stop() or after maxOps operations.
func startWorkload(t *testing.T, l *lab.Lab, registerClients int) *workload {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	w := &workload{h: NewHistory(), cancel: cancel}
	addrs := l.ServerHTTPAddrs()
	const maxOps = 4000
	for c := range registerClients {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for seq := 0; seq < maxOps && ctx.Err() == nil; seq++ {
				addr := addrs[(c+seq)%len(addrs)]
				opCtx, opCancel := context.WithTimeout(ctx, 3*time.Second)
				if rng.IntN(2) == 0 {
					v := fmt.Sprintf("%d-%d", c, seq)
					done := w.h.Call(c, RegisterInput{Write: true, Value: v})
					err := registerJob(opCtx, addr, jobSpec(registerJobID, 0, map[string]string{"v": v}, "/bin/true"))
					done(writeOutcome(err), "")
				} else {
					done := w.h.Call(c, RegisterInput{})
					v, err := readMeta(opCtx, addr, registerJobID, "v")
					if err != nil {
						done(Failed, "")
					} else {
						done(OK, v)
					}
				}
				opCancel()
				time.Sleep(time.Duration(10+rng.IntN(20)) * time.Millisecond)
			}
		}()
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for seq := 0; seq < maxOps && ctx.Err() == nil; seq++ {
			id := fmt.Sprintf("append-%04d", seq)
			opCtx, opCancel := context.WithTimeout(ctx, 3*time.Second)
			err := registerJob(opCtx, addrs[seq%len(addrs)], jobSpec(id, 0, nil, "/bin/true"))
			opCancel()
			w.mu.Lock()
			w.tried++
			if err == nil {
				w.acked = append(w.acked, id)
			}
			w.mu.Unlock()
			time.Sleep(25 * time.Millisecond)
		}
	}()
	return w
}

// stop ends the clients and waits for them.
func (w *workload) stop() {
	w.cancel()
	w.wg.Wait()
}

// check stops the workload, checks the register history for
// linearizability and that every acknowledged append is in the cluster.
func (w *workload) check(t *testing.T, l *lab.Lab) {
	t.Helper()
	w.stop()
	ok, unknown := w.h.Counts()
	viz := filepath.Join(t.TempDir(), "history.html")
	res, err := w.h.Check(60*time.Second, viz)
	t.Logf("register history: %d ok, %d unknown operations: %s", ok, unknown, res)
	if err != nil {
		t.Fatal(err)
	}
	if res == porcupine.Unknown {
		t.Logf("linearizability check timed out (not a violation)")
	}
	if ok < 20 {
		t.Errorf("only %d successful register operations: the workload did not run", ok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []string
	if err := waitFor(20*time.Second, 200*time.Millisecond, func() error {
		var err error
		for _, addr := range l.ServerHTTPAddrs() {
			var jobs []struct{ ID string }
			if _, err = do(ctx, http.MethodGet, addr, "/v1/jobs", nil, &jobs); err == nil {
				ids = ids[:0]
				for _, j := range jobs {
					ids = append(ids, j.ID)
				}
				return nil
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, id := range ids {
		have[id] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	lost := 0
	for _, id := range w.acked {
		if !have[id] {
			lost++
			t.Errorf("acknowledged job %s is missing", id)
		}
	}
	t.Logf("append client: %d of %d registers acknowledged, %d lost", len(w.acked), w.tried, lost)
	if len(w.acked) < 10 {
		t.Errorf("only %d acknowledged appends: the workload did not run", len(w.acked))
	}
}
