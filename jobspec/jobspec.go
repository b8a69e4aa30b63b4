// Package jobspec reads job files into structs.Job: Nomad-style HCL2 job
// files (variables, locals, functions, dynamic blocks, runtime
// interpolation left for the agent), or JSON jobs as the Nomad API and
// `nomad job run -output` write them.
//
// HCL is decoded against the job specification's schema (schema.go), mapped
// to Nomad's API JSON shape (job.go, group.go, task.go, ...) and decoded by
// structs exactly as a JSON job would be, so that both inputs get the same
// defaults.
package jobspec
