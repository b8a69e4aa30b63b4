package e2e

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// fixedHistory builds a history with explicit times (ms).
func fixedHistory(ops ...porcupine.Operation) *History {
	h := NewHistory()
	for _, op := range ops {
		kind := OK
		if op.Metadata == "unknown" {
			kind = Unknown
		}
		h.ops = append(h.ops, op)
		h.kinds = append(h.kinds, kind)
	}
	return h
}

func w(client int, v string, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: RegisterInput{Write: true, Value: v}, Call: call, Return: ret, Output: ""}
}

func r(client int, v string, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: RegisterInput{}, Call: call, Return: ret, Output: v}
}

func TestHistoryChecker(t *testing.T) {
	unknown := func(op porcupine.Operation) porcupine.Operation { op.Metadata = "unknown"; return op }
	cases := []struct {
		name string
		h    *History
		want porcupine.CheckResult
	}{
		{"sequential", fixedHistory(w(0, "1", 0, 1), r(1, "1", 2, 3), w(0, "2", 4, 5), r(1, "2", 6, 7)), porcupine.Ok},
		{"stale read", fixedHistory(w(0, "1", 0, 1), w(0, "2", 2, 3), r(1, "1", 4, 5)), porcupine.Illegal},
		{"concurrent read sees either", fixedHistory(w(0, "1", 0, 1), w(0, "2", 2, 6), r(1, "1", 3, 4), r(2, "2", 5, 7)), porcupine.Ok},
		{"unknown write applied later", fixedHistory(unknown(w(0, "9", 0, 1)), r(1, "", 2, 3), r(1, "9", 10, 11)), porcupine.Ok},
		{"unknown write never applied", fixedHistory(w(0, "1", 0, 1), unknown(w(0, "9", 2, 3)), r(1, "1", 4, 5)), porcupine.Ok},
		{"value from nowhere", fixedHistory(w(0, "1", 0, 1), r(1, "7", 2, 3)), porcupine.Illegal},
		{"read before its write", fixedHistory(r(1, "1", 0, 1), w(0, "1", 2, 3)), porcupine.Illegal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			viz := filepath.Join(t.TempDir(), "history.html")
			got, err := tc.h.Check(10*time.Second, viz)
			if got != tc.want {
				t.Fatalf("check = %s, want %s (%v)", got, tc.want, err)
			}
			if (err != nil) != (tc.want == porcupine.Illegal) {
				t.Fatalf("error %v for result %s", err, got)
			}
		})
	}
}
