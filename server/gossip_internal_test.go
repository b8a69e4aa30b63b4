package server

import (
	"errors"
	"strconv"
	"testing"
)

func TestPeersSupportGuardsRollingUpgrades(t *testing.T) {
	members := map[string]*member{
		"new-1": {Tags: map[string]string{tagID: "new-1", tagFSMVersion: "2"}},
		"new-2": {Tags: map[string]string{tagID: "new-2", tagFSMVersion: "3"}},
		"old":   {Tags: map[string]string{tagID: "old", tagFSMVersion: "1"}},
		"bad":   {Tags: map[string]string{tagID: "bad", tagFSMVersion: "garbage"}},
	}
	lookup := func(id string) *member { return members[id] }
	cases := []struct {
		since int
		ids   []string
		ok    bool
	}{
		{since: 2, ids: []string{"new-1", "new-2"}, ok: true},
		{since: 3, ids: []string{"new-1", "new-2"}, ok: false},
		{since: 2, ids: []string{"new-1", "old"}, ok: false},
		// unseen and unreadable versions count as the oldest
		{since: 2, ids: []string{"new-1", "never-gossiped"}, ok: false},
		{since: 2, ids: []string{"bad"}, ok: false},
		{since: 1, ids: []string{"old", "never-gossiped"}, ok: true},
	}
	for i, tc := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			err := peersSupport("test-command", tc.since, tc.ids, lookup)
			if tc.ok && err != nil {
				t.Fatalf("want ok, got %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrPeersTooOld) {
				t.Fatalf("want ErrPeersTooOld, got %v", err)
			}
		})
	}
}
