package command

import (
	"strings"
	"testing"
)

func TestJobPlanPrintsDiff(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "web.json", planJobFile)
	_, addr := newFakeAPI(t, map[string]string{
		"PUT /v1/job/web/plan": `{"JobModifyIndex":42,"Annotations":{"DesiredTGUpdates":{"web":{"DestructiveUpdate":3}}},
		"Diff":{"Type":"Edited","ID":"web","Fields":[{"Type":"Added","Name":"Meta[team]","Old":"","New":"ops"}],
		"TaskGroups":[{"Type":"Edited","Name":"web","Fields":[{"Type":"Edited","Name":"Count","Old":"2","New":"3","Annotations":["forces create"]}],
		"Tasks":[{"Type":"Edited","Name":"t","Annotations":["forces create/destroy update"],
		"Objects":[{"Type":"Edited","Name":"Config","Fields":[{"Type":"Edited","Name":"image","Old":"nginx","New":"nginx:1.29"}]}]},
		{"Type":"None","Name":"quiet"}]}]}}`,
	})
	code, stdout, stderr := run(t, "job", "plan", "-address", addr, file)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"+/- Job: \"web\"\n",
		"+ Meta[team]: \"ops\"\n",
		"+/- Task Group: \"web\" (3 create/destroy update)\n",
		"  +/- Count: \"2\" => \"3\" (forces create)\n",
		"  +/- Task: \"t\" (forces create/destroy update)\n",
		"    +/- Config {\n      +/- image: \"nginx\" => \"nginx:1.29\"\n    }\n",
		"berth job run -check-index 42 ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, `Task: "quiet"`) {
		t.Errorf("unchanged task shown without -verbose:\n%s", stdout)
	}
	_, stdout, _ = run(t, "job", "plan", "-verbose", "-address", addr, file)
	if !strings.Contains(stdout, `  Task: "quiet"`) {
		t.Errorf("-verbose does not show the unchanged task:\n%s", stdout)
	}
}
