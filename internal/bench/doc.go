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
package bench
