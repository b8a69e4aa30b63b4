package state

import (
	"bytes"
	"strings"
	"testing"
)

func persistBytes(tb testing.TB, s *StateStore) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := s.Snapshot().Persist(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestPersistRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	populate(t, s)
	data := persistBytes(t, s)
	restored, err := Restore(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if d := diffStores(t, s, restored); d != "" {
		t.Fatalf("restored store differs (-orig +restored):\n%s", d)
	}
	if got, want := restored.LatestIndex(), s.LatestIndex(); got != want || got != 5 {
		t.Fatalf("LatestIndex = %d, want %d (5)", got, want)
	}
	if again := persistBytes(t, restored); !bytes.Equal(data, again) {
		t.Fatalf("persist of a restored store differs:\n%s\n---\n%s", data, again)
	}
}

func TestRestoreEmptyStore(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	restored, err := Restore(bytes.NewReader(persistBytes(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	if d := diffStores(t, s, restored); d != "" {
		t.Fatal(d)
	}
}

// TestRestoreRejectsBadStreams: nothing of a bad stream is returned.
func TestRestoreRejectsBadStreams(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	populate(t, s)
	good := string(persistBytes(t, s))
	lines := strings.SplitAfter(good, "\n")
	header, body, trailer := lines[0], strings.Join(lines[1:len(lines)-2], ""), lines[len(lines)-2]
	for name, stream := range map[string]string{
		"empty":                  "",
		"not json":               "berth\n",
		"wrong format":           strings.Replace(header, SnapshotFormat, "nomad-state", 1) + body + trailer,
		"future version":         strings.Replace(header, `"Version":1`, `"Version":2`, 1) + body + trailer,
		"version 0":              strings.Replace(header, `"Version":1`, `"Version":0`, 1) + body + trailer,
		"cut mid-record":         good[:len(header)+len(body)/2],
		"cut at a record":        header + strings.Join(lines[1:len(lines)-3], ""),
		"no trailer":             header + body,
		"trailer count too high": header + strings.Join(lines[1:len(lines)-3], "") + trailer,
		"data after trailer":     good + `{"T":"jobs","V":{}}` + "\n",
		"unknown table":          header + `{"T":"secrets","V":{}}` + "\n" + body + trailer,
		"index without value":    header + `{"T":"index"}` + "\n" + body + trailer,
		"object without key":     header + `{"T":"jobs","V":{"Namespace":"default"}}` + "\n" + body + trailer,
		"object of wrong shape":  header + `{"T":"nodes","V":[1,2]}` + "\n" + body + trailer,
		"null object":            header + `{"T":"evals","V":null}` + "\n" + body + trailer,
	} {
		if _, err := Restore(strings.NewReader(stream)); err == nil {
			t.Errorf("Restore(%s) succeeded", name)
		}
	}
	if _, err := Restore(strings.NewReader(header + body + trailer + "\n \n")); err != nil {
		t.Errorf("Restore with trailing whitespace: %v", err)
	}
}

// FuzzRestore feeds arbitrary bytes to Restore: it must not panic, and a
// store it returns must persist and restore again to the same stream.
func FuzzRestore(f *testing.F) {
	s := newStore(f)
	f.Add(persistBytes(f, s))
	populate(f, s)
	good := persistBytes(f, s)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"Format":"berth-state","Version":1,"Index":0}` + "\n" + `{"T":"$end","N":0}` + "\n"))
	f.Add([]byte(`{"Format":"berth-state","Version":1}` + "\n" + `{"T":"jobs","V":{"Namespace":"x","ID":"y","TaskGroups":[null]}}` + "\n" + `{"T":"$end","N":1}`))
	f.Add([]byte(`{"Format":"berth-state","Version":1}` + "\n" + `{"T":"index","I":{"Key":"","Value":1}}` + "\n" + `{"T":"$end","N":1}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		restored, err := Restore(bytes.NewReader(data))
		if err != nil {
			if restored != nil {
				t.Fatal("Restore returned a store with an error")
			}
			return
		}
		once := persistBytes(t, restored)
		again, err := Restore(bytes.NewReader(once))
		if err != nil {
			t.Fatalf("a restored store persisted a stream Restore rejects: %v\n%s", err, once)
		}
		if twice := persistBytes(t, again); !bytes.Equal(once, twice) {
			t.Fatalf("persist/restore is not stable:\n%s\n---\n%s", once, twice)
		}
		// Reads over whatever was restored must not panic.
		jobs, _ := again.Jobs(nil, "*", "")
		for _, j := range jobs {
			if _, err := again.JobSummary(nil, j); err != nil {
				t.Fatal(err)
			}
		}
	})
}
