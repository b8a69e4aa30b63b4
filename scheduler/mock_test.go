package scheduler_test

import (
	"github.com/berth-dev/berth/scheduler/schedtest"
	"github.com/berth-dev/berth/structs"
)

func jobWithCount(id string, count int) *structs.Job { return schedtest.Job(id, count) }
