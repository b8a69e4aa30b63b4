package server_test

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	nomad "github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/internal/servertest"
)

func jobIDs(jobs []*nomad.JobListStub) []string {
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.Namespace+"/"+j.ID)
	}
	return ids
}

func findJob(jobs []*nomad.JobListStub, id string) *nomad.JobListStub {
	for _, j := range jobs {
		if j.ID == id {
			return j
		}
	}
	return nil
}

// TestNomadCompatJobs drives the job lifecycle with the official client.
func TestNomadCompatJobs(t *testing.T) {
	c := servertest.NewCluster(t, 1, servertest.WithoutSchedulers())
	addr := c.HTTPAddrs()[0]
	nc := nomadClient(t, addr)
	jobs := nc.Jobs()

	t.Run("RegisterAndRead", func(t *testing.T) {
		resp, wm, err := jobs.Register(nomadServiceJob("web"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.EvalID == "" || resp.EvalCreateIndex == 0 || resp.JobModifyIndex == 0 {
			t.Fatalf("register response = %+v", resp)
		}
		if wm.LastIndex != resp.JobModifyIndex {
			t.Errorf("write meta index %d, JobModifyIndex %d", wm.LastIndex, resp.JobModifyIndex)
		}

		list, qm, err := jobs.List(nil)
		if err != nil {
			t.Fatal(err)
		}
		stub := findJob(list, "web")
		if stub == nil {
			t.Fatalf("job not listed: %v", jobIDs(list))
		}
		if stub.Name != "web-name" || stub.Type != "service" || stub.Priority != 60 || stub.Namespace != "default" ||
			!slices.Equal(stub.Datacenters, []string{"dc1"}) || stub.Status != "pending" || stub.Stop ||
			stub.JobModifyIndex != resp.JobModifyIndex || stub.SubmitTime == 0 {
			t.Errorf("list stub = %+v", stub)
		}
		if stub.JobSummary == nil || stub.JobSummary.JobID != "web" {
			t.Errorf("list stub summary = %+v", stub.JobSummary)
		}
		if qm.LastIndex < resp.JobModifyIndex || !qm.KnownLeader {
			t.Errorf("list meta = %+v", qm)
		}

		job, qm, err := jobs.Info("web", nil)
		if err != nil {
			t.Fatal(err)
		}
		if *job.ID != "web" || *job.Name != "web-name" || *job.Type != "service" || *job.Priority != 60 ||
			*job.Namespace != "default" || *job.Region != "global" || *job.Version != 0 || *job.Status != "pending" ||
			!slices.Equal(job.Datacenters, []string{"dc1"}) || *job.Stop {
			t.Errorf("job = id %s name %s type %s prio %d ns %s region %s version %d status %s dcs %v stop %v",
				*job.ID, *job.Name, *job.Type, *job.Priority, *job.Namespace, *job.Region, *job.Version, *job.Status,
				job.Datacenters, *job.Stop)
		}
		if *job.CreateIndex != resp.JobModifyIndex || *job.JobModifyIndex != resp.JobModifyIndex || *job.SubmitTime == 0 {
			t.Errorf("job indexes: create %d, job modify %d, submit %d; want %d", *job.CreateIndex, *job.JobModifyIndex,
				*job.SubmitTime, resp.JobModifyIndex)
		}
		if qm.LastIndex < resp.JobModifyIndex {
			t.Errorf("info LastIndex %d < %d", qm.LastIndex, resp.JobModifyIndex)
		}
		if len(job.TaskGroups) != 1 || *job.TaskGroups[0].Name != "web" || *job.TaskGroups[0].Count != 2 {
			t.Fatalf("task groups = %+v", job.TaskGroups)
		}
		tasks := job.TaskGroups[0].Tasks
		if len(tasks) != 1 || tasks[0].Name != "app" || tasks[0].Driver != "docker" {
			t.Fatalf("tasks = %+v", tasks)
		}
		wantCfg := map[string]any{"image": "redis:7", "args": []any{"--port", "6379"}}
		if !reflect.DeepEqual(tasks[0].Config, wantCfg) {
			t.Errorf("task config = %#v, want %#v", tasks[0].Config, wantCfg)
		}

		sum, _, err := jobs.Summary("web", nil)
		if err != nil {
			t.Fatal(err)
		}
		if sum.JobID != "web" || sum.Namespace != "default" || sum.CreateIndex != resp.JobModifyIndex {
			t.Errorf("summary = %+v", sum)
		}
		if tg, ok := sum.Summary["web"]; !ok || tg != (nomad.TaskGroupSummary{}) {
			t.Errorf("summary groups = %+v, want web with no allocations", sum.Summary)
		}

		evals, _, err := jobs.Evaluations("web", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(evals) != 1 {
			t.Fatalf("evaluations = %+v, want one", evals)
		}
		ev := evals[0]
		if ev.ID != resp.EvalID || ev.Status != "pending" || ev.TriggeredBy != "job-register" || ev.JobID != "web" ||
			ev.Namespace != "default" || ev.Type != "service" || ev.Priority != 60 || ev.JobModifyIndex != resp.JobModifyIndex ||
			ev.CreateIndex != resp.EvalCreateIndex || ev.CreateTime == 0 {
			t.Errorf("evaluation = %+v", ev)
		}
		info, _, err := nc.Evaluations().Info(resp.EvalID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if info.ID != resp.EvalID || info.JobID != "web" || info.TriggeredBy != "job-register" || info.Status != "pending" {
			t.Errorf("eval info = %+v", info)
		}
		if _, _, err := nc.Evaluations().Info("00000000-0000-0000-0000-000000000000", nil); statusCode(t, err) != http.StatusNotFound {
			t.Errorf("unknown eval: %v, want 404", err)
		}
		evalAllocs, _, err := nc.Evaluations().Allocations(resp.EvalID, nil)
		if err != nil || evalAllocs == nil || len(evalAllocs) != 0 {
			t.Errorf("eval allocations = %#v, %v; want an empty list", evalAllocs, err)
		}

		allocs, _, err := jobs.Allocations("web", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if allocs == nil || len(allocs) != 0 {
			t.Errorf("allocations = %#v, want an empty list (not null)", allocs)
		}
		code, _, body := rawDo(t, "GET", addr+"/v1/job/web/allocations", nil)
		if code != 200 || strings.TrimSpace(body) != "[]" {
			t.Errorf("raw allocations = %d %q, want []", code, body)
		}
		// Evaluations of an unknown job are an empty list too.
		code, _, body = rawDo(t, "GET", addr+"/v1/job/nobody/evaluations", nil)
		if code != 200 || strings.TrimSpace(body) != "[]" {
			t.Errorf("evaluations of an unknown job = %d %q, want []", code, body)
		}
	})

	t.Run("RegisterBatch", func(t *testing.T) {
		resp, _, err := jobs.Register(nomadBatchJob("nightly"), nil)
		if err != nil {
			t.Fatal(err)
		}
		job, _, err := jobs.Info("nightly", nil)
		if err != nil {
			t.Fatal(err)
		}
		if *job.Type != "batch" || *job.Priority != 40 || !slices.Equal(job.Datacenters, []string{"dc1", "dc2"}) ||
			job.TaskGroups[0].Tasks[0].Driver != "exec" || job.TaskGroups[0].Tasks[0].Config["command"] != "/bin/true" {
			t.Errorf("batch job = type %s prio %d dcs %v task %+v", *job.Type, *job.Priority, job.Datacenters, job.TaskGroups[0].Tasks[0])
		}
		evals, _, err := jobs.Evaluations("nightly", nil)
		if err != nil || len(evals) != 1 || evals[0].ID != resp.EvalID || evals[0].Type != "batch" {
			t.Errorf("batch evaluations = %+v, %v", evals, err)
		}
		list, _, err := jobs.List(nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := jobIDs(list); !slices.Equal(got, []string{"default/nightly", "default/web"}) {
			t.Errorf("list = %v", got)
		}
		// Prefix filtering.
		list, _, err = jobs.PrefixList("nig")
		if err != nil {
			t.Fatal(err)
		}
		if got := jobIDs(list); !slices.Equal(got, []string{"default/nightly"}) {
			t.Errorf("prefix list = %v", got)
		}
	})

	t.Run("VersionBumpsOnlyOnChange", func(t *testing.T) {
		job := nomadServiceJob("versioned")
		first, _, err := jobs.Register(job, nil)
		if err != nil {
			t.Fatal(err)
		}
		second, _, err := jobs.Register(job, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := jobs.Info("versioned", nil)
		if err != nil {
			t.Fatal(err)
		}
		if *got.Version != 0 {
			t.Fatalf("unchanged re-register: version %d, want 0", *got.Version)
		}
		if second.EvalID == "" || second.EvalID == first.EvalID {
			t.Errorf("re-register evals %q, %q: want a new evaluation", first.EvalID, second.EvalID)
		}

		job.TaskGroups[0].Count = new(3)
		third, _, err := jobs.Register(job, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err = jobs.Info("versioned", nil)
		if err != nil {
			t.Fatal(err)
		}
		if *got.Version != 1 || *got.TaskGroups[0].Count != 3 || *got.JobModifyIndex != third.JobModifyIndex {
			t.Fatalf("changed re-register: version %d count %d jmi %d; want 1, 3, %d",
				*got.Version, *got.TaskGroups[0].Count, *got.JobModifyIndex, third.JobModifyIndex)
		}
		if *got.CreateIndex != first.JobModifyIndex {
			t.Errorf("create index %d, want %d", *got.CreateIndex, first.JobModifyIndex)
		}
		job.Meta = map[string]string{"owner": "ops"}
		if _, _, err := jobs.Register(job, nil); err != nil {
			t.Fatal(err)
		}
		if got, _, _ = jobs.Info("versioned", nil); *got.Version != 2 || got.Meta["owner"] != "ops" {
			t.Fatalf("meta change: version %d meta %v; want 2", *got.Version, got.Meta)
		}
	})

	t.Run("UnchangedRegisterKeepsJobModifyIndex", func(t *testing.T) {
		job := nomadServiceJob("steady")
		first, _, err := jobs.Register(job, nil)
		if err != nil {
			t.Fatal(err)
		}
		second, _, err := jobs.Register(job, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := jobs.Info("steady", nil)
		if err != nil {
			t.Fatal(err)
		}
		if second.JobModifyIndex != first.JobModifyIndex || *got.JobModifyIndex != first.JobModifyIndex {
			t.Errorf("re-registering an unchanged job moved JobModifyIndex %d -> %d (response %d); "+
				"Nomad keeps the existing JobModifyIndex (Job.Register only applies the job when SpecChanged), "+
				"so EnforceRegister with the old index keeps working",
				first.JobModifyIndex, *got.JobModifyIndex, second.JobModifyIndex)
		}
		// Consequence: an enforce-register with the index the client holds works.
		if _, _, err := jobs.EnforceRegister(job, first.JobModifyIndex, nil); err != nil {
			t.Fatalf("enforce register with the unchanged index: %v", err)
		}
	})

	t.Run("EnforceRegister", func(t *testing.T) {
		job := nomadServiceJob("guarded")
		// Index 0 means "must not exist yet".
		created, _, err := jobs.EnforceRegister(job, 0, nil)
		if err != nil {
			t.Fatalf("enforce create: %v", err)
		}
		if _, _, err := jobs.EnforceRegister(job, 0, nil); err == nil {
			t.Fatal("enforce index 0 on an existing job succeeded")
		} else if !strings.Contains(err.Error(), "modify index") {
			t.Errorf("enforce error %q does not explain itself", err)
		}

		job.TaskGroups[0].Count = new(5)
		if _, _, err := jobs.EnforceRegister(job, created.JobModifyIndex+1000, nil); err == nil {
			t.Fatal("enforce register with a wrong index succeeded")
		} else if code := statusCode(t, err); code >= 500 {
			t.Errorf("enforce conflict status %d, want a 4xx", code)
		}
		got, _, err := jobs.Info("guarded", nil)
		if err != nil {
			t.Fatal(err)
		}
		if *got.Version != 0 || *got.TaskGroups[0].Count != 2 || *got.JobModifyIndex != created.JobModifyIndex {
			t.Fatalf("refused enforce-register changed the job: version %d count %d", *got.Version, *got.TaskGroups[0].Count)
		}
		evals, _, _ := jobs.Evaluations("guarded", nil)
		if len(evals) != 1 {
			t.Errorf("refused enforce-registers left evaluations: %d, want 1", len(evals))
		}

		ok, _, err := jobs.EnforceRegister(job, *got.JobModifyIndex, nil)
		if err != nil {
			t.Fatalf("enforce register with the right index: %v", err)
		}
		got, _, err = jobs.Info("guarded", nil)
		if err != nil {
			t.Fatal(err)
		}
		if *got.Version != 1 || *got.TaskGroups[0].Count != 5 || *got.JobModifyIndex != ok.JobModifyIndex {
			t.Fatalf("after enforce: version %d count %d jmi %d", *got.Version, *got.TaskGroups[0].Count, *got.JobModifyIndex)
		}
	})

	t.Run("BlockingQuery", func(t *testing.T) {
		_, qm, err := jobs.List(nil)
		if err != nil {
			t.Fatal(err)
		}
		idx := qm.LastIndex
		if idx == 0 {
			t.Fatal("list LastIndex 0")
		}

		// Nothing changes: the query waits about WaitTime, then answers
		// with the same index.
		start := time.Now()
		_, qm2, err := jobs.List(&nomad.QueryOptions{WaitIndex: idx, WaitTime: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < 250*time.Millisecond || el > 3*time.Second {
			t.Errorf("idle blocking query returned after %s, want about 300ms", el)
		}
		if qm2.LastIndex != idx {
			t.Errorf("idle blocking query index %d, want %d", qm2.LastIndex, idx)
		}

		type result struct {
			list []*nomad.JobListStub
			qm   *nomad.QueryMeta
			err  error
			at   time.Time
		}
		done := make(chan result, 1)
		go func() {
			l, m, err := jobs.List(&nomad.QueryOptions{WaitIndex: idx, WaitTime: 5 * time.Second})
			done <- result{l, m, err, time.Now()}
		}()
		// It must still be waiting before the write.
		select {
		case r := <-done:
			t.Fatalf("blocking query returned before any change: %+v", r)
		case <-time.After(200 * time.Millisecond):
		}
		written := time.Now()
		resp, _, err := jobs.Register(nomadBatchJob("wake-up"), nil)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.qm.LastIndex <= idx || r.qm.LastIndex < resp.JobModifyIndex {
				t.Errorf("woken query LastIndex %d, want > %d and >= %d", r.qm.LastIndex, idx, resp.JobModifyIndex)
			}
			if !r.qm.KnownLeader {
				t.Error("woken query: KnownLeader false")
			}
			if findJob(r.list, "wake-up") == nil {
				t.Errorf("woken query lacks the new job: %v", jobIDs(r.list))
			}
			if d := r.at.Sub(written); d > 2*time.Second {
				t.Errorf("blocking query took %s after the write", d)
			}
		case <-time.After(4 * time.Second):
			t.Fatal("blocking query did not return after a register")
		}

		// Blocking on a single job wakes on that job's change.
		job, qm3, err := jobs.Info("wake-up", nil)
		if err != nil {
			t.Fatal(err)
		}
		infoDone := make(chan error, 1)
		go func() {
			j, m, err := jobs.Info("wake-up", &nomad.QueryOptions{WaitIndex: qm3.LastIndex, WaitTime: 5 * time.Second})
			if err == nil && (m.LastIndex <= qm3.LastIndex || !*j.Stop) {
				err = fmt.Errorf("woken info: index %d (was %d), stop %v", m.LastIndex, qm3.LastIndex, *j.Stop)
			}
			infoDone <- err
		}()
		time.Sleep(50 * time.Millisecond) // let the query start blocking; the result holds either way
		if _, _, err := jobs.Deregister(*job.ID, false, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-infoDone:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(4 * time.Second):
			t.Fatal("blocking job info did not return after a deregister")
		}
	})

	t.Run("Deregister", func(t *testing.T) {
		if _, _, err := jobs.Register(nomadServiceJob("stopme"), nil); err != nil {
			t.Fatal(err)
		}
		evalID, wm, err := jobs.Deregister("stopme", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if evalID == "" || wm.LastIndex == 0 {
			t.Errorf("deregister: eval %q, index %d", evalID, wm.LastIndex)
		}
		job, _, err := jobs.Info("stopme", nil)
		if err != nil {
			t.Fatalf("stopped job must stay readable: %v", err)
		}
		// no scheduler runs here, so the deregister evaluation stays
		// pending, and so does the job (Nomad: dead once it completes)
		if !*job.Stop || *job.Status != "pending" {
			t.Errorf("stopped job: stop %v status %q, want true, pending", *job.Stop, *job.Status)
		}
		list, _, err := jobs.List(nil)
		if err != nil {
			t.Fatal(err)
		}
		if s := findJob(list, "stopme"); s == nil || !s.Stop || s.Status != "pending" {
			t.Errorf("stopped job list stub = %+v", s)
		}
		evals, _, err := jobs.Evaluations("stopme", nil)
		if err != nil {
			t.Fatal(err)
		}
		var triggers []string
		for _, e := range evals {
			triggers = append(triggers, e.TriggeredBy)
			if e.TriggeredBy == "job-deregister" && e.ID != evalID {
				t.Errorf("deregister eval %s, response said %s", e.ID, evalID)
			}
		}
		slices.Sort(triggers)
		if !slices.Equal(triggers, []string{"job-deregister", "job-register"}) {
			t.Errorf("eval triggers = %v", triggers)
		}

		if _, _, err := jobs.Deregister("stopme", true, nil); err != nil {
			t.Fatalf("purge: %v", err)
		}
		_, _, err = jobs.Info("stopme", nil)
		if code := statusCode(t, err); code != http.StatusNotFound {
			t.Fatalf("info after purge: status %d (%v), want 404", code, err)
		}
		if !strings.Contains(err.Error(), "404") {
			t.Errorf("error %q does not show the code", err)
		}
		if _, _, err := jobs.Summary("stopme", nil); statusCode(t, err) != http.StatusNotFound {
			t.Errorf("summary after purge: %v, want 404", err)
		}
		list, _, err = jobs.List(nil)
		if err != nil {
			t.Fatal(err)
		}
		if findJob(list, "stopme") != nil {
			t.Errorf("purged job still listed")
		}
		if _, _, err := jobs.Deregister("stopme", false, nil); statusCode(t, err) != http.StatusNotFound {
			t.Errorf("deregister of a purged job: %v, want 404", err)
		}
	})

	t.Run("NamespaceParam", func(t *testing.T) {
		if _, err := nc.Namespaces().Register(&nomad.Namespace{Name: "prod"}, nil); err != nil {
			t.Fatal(err)
		}
		// Through the query parameter, the job naming no namespace.
		if _, _, err := jobs.Register(nomadServiceJob("prod-api"), &nomad.WriteOptions{Namespace: "prod"}); err != nil {
			t.Fatal(err)
		}
		// Through the job's own namespace, as a job file sets it.
		inJob := nomadBatchJob("prod-batch")
		inJob.Namespace = new("prod")
		if _, _, err := jobs.Register(inJob, nil); err != nil {
			t.Fatal(err)
		}

		def, _, err := jobs.List(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range def {
			if j.Namespace != "default" {
				t.Errorf("default listing holds %s/%s", j.Namespace, j.ID)
			}
		}
		if findJob(def, "prod-api") != nil || findJob(def, "prod-batch") != nil {
			t.Errorf("prod jobs listed in default: %v", jobIDs(def))
		}

		prod, _, err := jobs.List(&nomad.QueryOptions{Namespace: "prod"})
		if err != nil {
			t.Fatal(err)
		}
		if got := jobIDs(prod); !slices.Equal(got, []string{"prod/prod-api", "prod/prod-batch"}) {
			t.Errorf("prod listing = %v", got)
		}

		all, _, err := jobs.List(&nomad.QueryOptions{Namespace: "*"})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(def)+len(prod) {
			t.Errorf("* listing has %d jobs, want %d + %d: %v", len(all), len(def), len(prod), jobIDs(all))
		}
		for _, want := range []string{"prod/prod-api", "prod/prod-batch", "default/web"} {
			if !slices.Contains(jobIDs(all), want) {
				t.Errorf("* listing lacks %s: %v", want, jobIDs(all))
			}
		}

		job, _, err := jobs.Info("prod-api", &nomad.QueryOptions{Namespace: "prod"})
		if err != nil {
			t.Fatal(err)
		}
		if *job.Namespace != "prod" {
			t.Errorf("namespace = %q", *job.Namespace)
		}
		if _, _, err := jobs.Info("prod-api", nil); statusCode(t, err) != http.StatusNotFound {
			t.Errorf("prod job read in default: %v, want 404", err)
		}
		evals, _, err := jobs.Evaluations("prod-api", &nomad.QueryOptions{Namespace: "prod"})
		if err != nil || len(evals) != 1 || evals[0].Namespace != "prod" {
			t.Errorf("prod evaluations = %+v, %v", evals, err)
		}
		if evals, _, _ := jobs.Evaluations("prod-api", nil); len(evals) != 0 {
			t.Errorf("prod evaluations visible in default: %+v", evals)
		}

		// A namespace with jobs cannot be deleted.
		if _, err := nc.Namespaces().Delete("prod", nil); err == nil {
			t.Fatal("deleted a namespace that holds jobs")
		} else if code := statusCode(t, err); code >= 500 {
			t.Errorf("delete non-empty namespace: status %d, want a 4xx", code)
		}

		// Deregister needs the namespace too.
		if _, _, err := jobs.Deregister("prod-api", true, nil); statusCode(t, err) != http.StatusNotFound {
			t.Errorf("purge without the namespace: %v, want 404", err)
		}
		for _, id := range []string{"prod-api", "prod-batch"} {
			if _, _, err := jobs.Deregister(id, true, &nomad.WriteOptions{Namespace: "prod"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := nc.Namespaces().Delete("prod", nil); err != nil {
			t.Fatalf("delete emptied namespace: %v", err)
		}
	})

	t.Run("SlashInJobID", func(t *testing.T) {
		// Children of periodic and parameterized jobs have IDs with slashes.
		id := "report/periodic-1700000000"
		resp, _, err := jobs.Register(nomadBatchJob(id), nil)
		if err != nil {
			t.Fatal(err)
		}
		job, _, err := jobs.Info(id, nil)
		if err != nil || *job.ID != id {
			t.Fatalf("info %q: %v", id, err)
		}
		if sum, _, err := jobs.Summary(id, nil); err != nil || sum.JobID != id {
			t.Errorf("summary %q: %+v, %v", id, sum, err)
		}
		if evals, _, err := jobs.Evaluations(id, nil); err != nil || len(evals) != 1 || evals[0].ID != resp.EvalID {
			t.Errorf("evaluations %q: %+v, %v", id, evals, err)
		}
		if allocs, _, err := jobs.Allocations(id, false, nil); err != nil || allocs == nil {
			t.Errorf("allocations %q: %#v, %v", id, allocs, err)
		}
		if _, _, err := jobs.Deregister(id, true, nil); err != nil {
			t.Fatalf("purge %q: %v", id, err)
		}
		if _, _, err := jobs.Info(id, nil); statusCode(t, err) != http.StatusNotFound {
			t.Errorf("info after purge: %v", err)
		}
	})

	t.Run("PeriodicJob", func(t *testing.T) {
		job := nomadBatchJob("cron-report")
		job.Periodic = &nomad.PeriodicConfig{Enabled: new(true), Spec: new("*/5 * * * *"), ProhibitOverlap: new(true)}
		resp, _, err := jobs.Register(job, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A periodic job is a template: no evaluation until it launches.
		if resp.EvalID != "" {
			t.Errorf("periodic register created eval %q", resp.EvalID)
		}
		if evals, _, _ := jobs.Evaluations("cron-report", nil); len(evals) != 0 {
			t.Errorf("periodic job has evaluations: %+v", evals)
		}
		got, _, err := jobs.Info("cron-report", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Periodic == nil || *got.Periodic.Spec != "*/5 * * * *" || !*got.Periodic.Enabled ||
			!*got.Periodic.ProhibitOverlap || *got.Periodic.SpecType != "cron" {
			t.Errorf("periodic = %+v", got.Periodic)
		}
		list, _, err := jobs.List(nil)
		if err != nil {
			t.Fatal(err)
		}
		if s := findJob(list, "cron-report"); s == nil || !s.Periodic {
			t.Errorf("list stub = %+v, want Periodic", s)
		}
		if _, _, err := jobs.Deregister("cron-report", true, nil); err != nil {
			t.Fatal(err)
		}

		bad := nomadBatchJob("bad-cron")
		bad.Periodic = &nomad.PeriodicConfig{Enabled: new(true), Spec: new("every tuesday")}
		_, _, err = jobs.Register(bad, nil)
		if err == nil {
			st := c.Servers()[0].State()
			stored, _ := st.JobByID(nil, "default", "bad-cron")
			t.Errorf("a periodic job with the invalid cron spec %q was accepted (stored: %v); "+
				"Nomad rejects it with \"Invalid cron spec\" (structs.Job.Validate leaves cron to the register path, "+
				"which never checks it)", *bad.Periodic.Spec, stored != nil)
		}
		if code := statusCode(t, err); code != http.StatusBadRequest || !strings.Contains(err.Error(), "cron") {
			t.Fatalf("invalid cron: %v, want 400 naming the cron spec", err)
		}
	})
}
