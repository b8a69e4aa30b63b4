package bench

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/oci"
)

// floorParallel is how many starts the containerd floor runs at once (as
// in ARCHITECTURE.md's "500 in 15.4 s with 16 parallel starts").
const floorParallel = 16

// containerdFloor starts n containers of the test image straight through
// the containerd client, floorParallel at a time, and returns the time
// until all run: what containerd itself manages on this machine now, to
// compare berth's figure with. The containers are removed afterwards.
func (e *agentEnv) containerdFloor(n int) time.Duration {
	e.tb.Helper()
	ctx, cancel := context.WithTimeout(e.ctd.Context(context.Background()), 5*time.Minute)
	defer cancel()
	client := e.ctd.Client()
	img, err := client.GetImage(ctx, e.image) // pulled by the agent's warm-up job
	if err != nil {
		e.tb.Fatalf("containerd floor: image: %v", err)
	}
	ids := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < floorParallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				errs <- startBare(ctx, client, img, fmt.Sprintf("floor-%d-%d", jobSeq.Load(), i))
			}
		}()
	}
	for i := 0; i < n; i++ {
		ids <- i
	}
	close(ids)
	wg.Wait()
	took := time.Since(t0)
	close(errs)
	for err := range errs {
		if err != nil {
			e.tb.Fatalf("containerd floor: %v", err)
		}
	}
	e.removeAllContainers(ctx)
	return took
}

// startBare creates and starts one container with no IO and no limits.
func startBare(ctx context.Context, client *containerd.Client, img containerd.Image, id string) error {
	c, err := client.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("/testapp", "sleep", "1h")))
	if err != nil {
		return fmt.Errorf("create %s: %w", id, err)
	}
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		return fmt.Errorf("new task %s: %w", id, err)
	}
	if err := task.Start(ctx); err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	return nil
}

// removeAllContainers kills and deletes every container in the namespace,
// floorParallel at a time.
func (e *agentEnv) removeAllContainers(ctx context.Context) {
	e.tb.Helper()
	if err := killAndDeleteAll(ctx, e.ctd.Client(), floorParallel); err != nil {
		e.tb.Fatal(err)
	}
	e.waitNoContainers(time.Minute)
}

// killAndDeleteAll kills and deletes every container the client's
// namespace holds, snapshots included, parallel at a time.
func killAndDeleteAll(ctx context.Context, client *containerd.Client, parallel int) error {
	ctrs, err := client.Containers(ctx)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, c := range ctrs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if task, err := c.Task(ctx, nil); err == nil {
				if ch, err := task.Wait(ctx); err == nil {
					_ = task.Kill(ctx, syscall.SIGKILL)
					select {
					case <-ch:
					case <-ctx.Done():
					}
				}
				_, _ = task.Delete(ctx, containerd.WithProcessKill)
			}
			_ = c.Delete(ctx, containerd.WithSnapshotCleanup)
		}()
	}
	wg.Wait()
	return nil
}
