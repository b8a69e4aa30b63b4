// Package bench holds the control plane's benchmarks: leader failover on
// a three-process cluster and job-register throughput. Everything lives
// in _test files; the numbers are recorded in the README, never asserted.
//
// Run them with
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./internal/bench/
//
// and tune the sizes with flags after -args, for example
// -berth.failover-trials 5 or -berth.register-n 200.
//
// The agent benchmarks (agent_*_test.go; `make bench-agent`) need root and
// containerd: they start a private containerd, an in-process registry
// with the test image, one in-process server and one `berth agent`
// process, and measure
//
//   - BenchmarkRegisterToRunning: job register → alloc running in the API
//     (and → containerd's task start), against `ctr run -d` of the same
//     image, interleaved in the same run;
//   - BenchmarkStart100Allocs: one job of count 100 (then 500) → all
//     running, against containerd's own floor (16 parallel starts through
//     its client), and the agent's RSS and CPU per task;
//   - BenchmarkAgentRSS: agent + plugin processes' memory idle and with 20
//     running containers: each process's RSS and PSS, and the group's
//     resident pages counted once (pagemap_test.go), since the processes
//     share the pages of one executable;
//   - BenchmarkBatchComplete: a batch task's exit → ClientStatus complete
//     visible in the API.
//
// BenchmarkContainerdFloorStudy (ctd_floor_study_test.go) needs no berth:
// it starts 500 containers straight through the containerd client in
// variants (parallelism pN, M containers per shim gM) and reports the
// start curve, per-phase times, shim count and RSS, and where the CPU
// went, to tell containerd's floor from berth's overhead.
//
// Their flags: -berth.agent-run-n, -berth.agent-batch-n,
// -berth.agent-start-sizes, -berth.agent-start-max, -berth.agent-rss-tasks,
// -berth.agent-bin (a prebuilt berth), -berth.agent-tags (build tags),
// -berth.agent-log (keep the agent's log); the study's: -berth.ctdstudy-n,
// -berth.ctdstudy-variants.
package bench
