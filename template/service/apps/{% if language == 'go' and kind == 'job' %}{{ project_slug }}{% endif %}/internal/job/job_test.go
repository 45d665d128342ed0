package job

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"
)

const (
	bucket = "partner-drops"
	key    = "incoming/acme/day-1.csv"
	good   = "id,amount\n1,10\n2,20\n3,30\n"
)

// memoryStore is a Store in memory: ETags are the MD5 of the content, as S3's single-part ones.
type memoryStore struct {
	objects map[string][]byte
	// fail makes the operations ("head", "get", "put") on keys with this prefix fail.
	fail map[string]string
}

func newMemoryStore() *memoryStore {
	return &memoryStore{objects: map[string][]byte{}, fail: map[string]string{}}
}

func etagOf(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

func (m *memoryStore) failure(operation, bucket, key string) error {
	if prefix, ok := m.fail[operation]; ok && strings.HasPrefix(key, prefix) {
		return fmt.Errorf("%s s3://%s/%s: connection refused", operation, bucket, key)
	}
	return nil
}

func (m *memoryStore) Head(_ context.Context, bucket, key string) (string, int64, error) {
	if err := m.failure("head", bucket, key); err != nil {
		return "", 0, err
	}
	body, ok := m.objects[bucket+"/"+key]
	if !ok {
		return "", 0, fmt.Errorf("s3://%s/%s: %w", bucket, key, fs.ErrNotExist)
	}
	return etagOf(body), int64(len(body)), nil
}

func (m *memoryStore) Get(_ context.Context, bucket, key string) ([]byte, string, error) {
	if err := m.failure("get", bucket, key); err != nil {
		return nil, "", err
	}
	body, ok := m.objects[bucket+"/"+key]
	if !ok {
		return nil, "", fmt.Errorf("s3://%s/%s: %w", bucket, key, fs.ErrNotExist)
	}
	return body, etagOf(body), nil
}

func (m *memoryStore) Put(_ context.Context, bucket, key string, body []byte, _ string) error {
	if err := m.failure("put", bucket, key); err != nil {
		return err
	}
	m.objects[bucket+"/"+key] = bytes.Clone(body)
	return nil
}

func (m *memoryStore) keys() []string {
	var keys []string
	for name := range m.objects {
		keys = append(keys, name)
	}
	sort.Strings(keys)
	return keys
}

// upload puts an object and returns the event that announces it.
func (m *memoryStore) upload(key, body string) Event {
	m.objects[bucket+"/"+key] = []byte(body)
	return Event{Bucket: bucket, Key: key, ETag: etagOf([]byte(body)), Size: int64(len(body))}
}

// newJob returns a job with the default settings for event, and the buffer of its logs.
func newJob(store Store, event Event) (*Job, *bytes.Buffer) {
	var logged bytes.Buffer
	settings := Settings{
		Event:        event,
		OutputBucket: event.Bucket,
		OutputPrefix: DefaultOutputPrefix,
		StatePrefix:  DefaultStatePrefix,
	}
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	return &Job{Store: store, Settings: settings, Logger: logger, Now: func() time.Time { return at }}, &logged
}

// events are the "event" fields of the log lines.
func events(t *testing.T, logged *bytes.Buffer) []string {
	t.Helper()
	var found []string
	for _, line := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		found = append(found, fmt.Sprint(entry["event"]))
	}
	return found
}

func result(t *testing.T, store *memoryStore, key string) Result {
	t.Helper()
	body, ok := store.objects[bucket+"/"+DefaultOutputPrefix+key+".json"]
	if !ok {
		t.Fatalf("no result for %s in %v", key, store.keys())
	}
	var loaded Result
	if err := json.Unmarshal(body, &loaded); err != nil {
		t.Fatal(err)
	}
	return loaded
}

func assertInvalid(t *testing.T, err error, reason string) {
	t.Helper()
	var invalid *InvalidError
	if !errors.As(err, &invalid) || !strings.Contains(invalid.Reason, reason) {
		t.Fatalf("error = %v, want an InvalidError saying %q", err, reason)
	}
}

func TestRunLoadsTheResultAndWritesTheMarker(t *testing.T) {
	store := newMemoryStore()
	event := store.upload(key, good)
	work, logged := newJob(store, event)

	if err := work.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	want := Result{Source: "s3://" + bucket + "/" + key, ETag: event.ETag, Rows: 3, Columns: []string{"id", "amount"}}
	if got := result(t, store, key); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("result = %+v, want %+v", got, want)
	}
	var marker map[string]any
	if err := json.Unmarshal(store.objects[bucket+"/.processed/"+key+"@"+event.ETag], &marker); err != nil {
		t.Fatalf("no marker: %v (%v)", err, store.keys())
	}
	if marker["loaded_at"] != "2026-12-01T02:00:00Z" || marker["result"] != "loaded/"+key+".json" {
		t.Errorf("marker = %v", marker)
	}
	if value, found := marker["event_time"]; !found || value != nil {
		t.Errorf("event_time = %v, want null: the event did not say", value)
	}
	if got := events(t, logged); fmt.Sprint(got) != "[validated loaded]" {
		t.Errorf("logged events %v", got)
	}
}

func TestTheSameEventAgainIsSkippedAndLoadsNothing(t *testing.T) {
	store := newMemoryStore()
	event := store.upload(key, good)
	first, _ := newJob(store, event)
	if err := first.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	delete(store.objects, bucket+"/loaded/"+key+".json")
	// Even if the object changed since: the event's version was processed.
	store.upload(key, good+"4,40\n")

	again, logged := newJob(store, event)
	if err := again.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	if _, found := store.objects[bucket+"/loaded/"+key+".json"]; found {
		t.Error("a re-delivered event loaded again")
	}
	if got := events(t, logged); fmt.Sprint(got) != "[skipped]" {
		t.Errorf("logged events %v", got)
	}
}

func TestTheMarkerRecordsWhenTheEventHappened(t *testing.T) {
	store := newMemoryStore()
	event := store.upload(key, good)
	event.Time = time.Date(2026, 12, 1, 3, 0, 0, 500, time.FixedZone("", 3600))
	work, _ := newJob(store, event)

	if err := work.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	var marker map[string]any
	if err := json.Unmarshal(store.objects[bucket+"/.processed/"+key+"@"+event.ETag], &marker); err != nil {
		t.Fatal(err)
	}
	if marker["event_time"] != "2026-12-01T02:00:00.0000005Z" {
		t.Errorf("event_time = %v", marker["event_time"])
	}
}

func TestANewVersionOfTheObjectIsNewWork(t *testing.T) {
	store := newMemoryStore()
	first, _ := newJob(store, store.upload(key, good))
	if err := first.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	second, _ := newJob(store, store.upload(key, good+"4,40\n"))
	if err := second.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	if rows := result(t, store, key).Rows; rows != 4 {
		t.Errorf("rows = %d, want 4", rows)
	}
}

func TestAnEventWithoutETagOrSizeUsesTheObjectsOwn(t *testing.T) {
	store := newMemoryStore()
	uploaded := store.upload(key, good)
	work, _ := newJob(store, Event{Bucket: bucket, Key: key, Size: -1})

	if err := work.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if etag := result(t, store, key).ETag; etag != uploaded.ETag {
		t.Errorf("etag = %s, want %s", etag, uploaded.ETag)
	}

	again, logged := newJob(store, Event{Bucket: bucket, Key: key, Size: -1})
	if err := again.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := events(t, logged); fmt.Sprint(got) != "[skipped]" {
		t.Errorf("logged events %v", got)
	}
}

func TestInvalidObjectsFailAndWriteNothing(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		edit   func(store *memoryStore, event *Event)
		reason string
	}{
		{"truncated row", "id,amount\n1,10\n2,20\n3", nil, "line 4 has 1 fields, the header has 2"},
		{"empty object", "", nil, "it is empty"},
		{"bare quote", "id,amount\n1,\"10\n", nil, "not CSV"},
		{"smaller than announced", good, func(_ *memoryStore, event *Event) {
			event.Size += 6
		}, "it has 25 bytes, the event announced 31"},
		{"replaced since the event", good, func(store *memoryStore, event *Event) {
			store.objects[bucket+"/"+key] = []byte(good[:len(good)-6])
		}, "the object is incomplete or was replaced"},
		{"deleted since the event", good, func(store *memoryStore, event *Event) {
			delete(store.objects, bucket+"/"+key)
		}, "the object does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := newMemoryStore()
			event := store.upload(key, c.body)
			if c.edit != nil {
				c.edit(store, &event)
			}
			work, _ := newJob(store, event)

			err := work.Run(context.Background())

			assertInvalid(t, err, c.reason)
			if !strings.HasPrefix(err.Error(), "s3://"+bucket+"/"+key+" is invalid: ") {
				t.Errorf("error %q does not name the object", err)
			}
			for _, name := range store.keys() {
				if name != bucket+"/"+key {
					t.Errorf("%s was written", name)
				}
			}
		})
	}
}

func TestAnObjectThatVanishesBetweenHeadAndGetIsInvalid(t *testing.T) {
	store := newMemoryStore()
	work, _ := newJob(store, store.upload(key, good))
	work.Store = vanishing{store}

	assertInvalid(t, work.Run(context.Background()), "does not exist")
}

// vanishing is a store whose objects disappear once their head was read.
type vanishing struct{ *memoryStore }

func (v vanishing) Get(_ context.Context, bucket, key string) ([]byte, string, error) {
	return nil, "", fmt.Errorf("s3://%s/%s: %w", bucket, key, fs.ErrNotExist)
}

func TestStorageFailuresAreErrorsNotInvalidInput(t *testing.T) {
	cases := []struct{ operation, prefix, message string }{
		{"head", ".processed/", "looking for the marker of"},
		{"head", "incoming/", "reading s3://"},
		{"get", "incoming/", "reading s3://"},
		{"put", "loaded/", "writing the result of"},
		{"put", ".processed/", "writing the marker of"},
	}
	for _, c := range cases {
		for _, withETag := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s %s etag=%v", c.operation, c.prefix, withETag), func(t *testing.T) {
				store := newMemoryStore()
				event := store.upload(key, good)
				if !withETag {
					event.ETag, event.Size = "", -1
				}
				store.fail[c.operation] = c.prefix
				work, _ := newJob(store, event)

				err := work.Run(context.Background())

				var invalid *InvalidError
				if err == nil || errors.As(err, &invalid) || !strings.Contains(err.Error(), c.message) {
					t.Errorf("error = %v, want one saying %q", err, c.message)
				}
				if _, found := store.objects[bucket+"/.processed/"+key+"@"+etagOf([]byte(good))]; found {
					t.Error("a marker was written")
				}
			})
		}
	}
}

func TestLoadOfASkippedArtifactLoadsNothing(t *testing.T) {
	store := newMemoryStore()
	event := store.upload(key, good)
	work, logged := newJob(store, event)

	loaded, err := work.Load(context.Background(), Artifact{Bucket: bucket, Key: key, ETag: event.ETag, Skipped: true})

	if err != nil || loaded {
		t.Fatalf("loaded = %v, err = %v", loaded, err)
	}
	if len(store.keys()) != 1 || fmt.Sprint(events(t, logged)) != "[skipped]" {
		t.Errorf("objects %v, events %v", store.keys(), events(t, logged))
	}
}

func TestLoadSkipsWhatAnotherRunLoadedSinceValidation(t *testing.T) {
	store := newMemoryStore()
	event := store.upload(key, good)
	work, _ := newJob(store, event)
	artifact, err := work.Validate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := newJob(store, event)
	if err := other.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	loaded, err := work.Load(context.Background(), artifact)

	if err != nil || loaded {
		t.Errorf("loaded = %v, err = %v; want a skip", loaded, err)
	}
}

func TestLoadRefusesTheArtifactOfAnotherObject(t *testing.T) {
	store := newMemoryStore()
	work, _ := newJob(store, store.upload(key, good))

	_, err := work.Load(context.Background(), Artifact{Source: "s3://other/x.csv", Bucket: "other", Key: "x.csv"})

	assertInvalid(t, err, "the artifact is for s3://other/x.csv")
}

func TestResultsAndMarkersFollowTheOutputSettings(t *testing.T) {
	store := newMemoryStore()
	event := store.upload(key, good)
	work, _ := newJob(store, event)
	work.Settings.OutputBucket = "results"
	work.Settings.OutputPrefix = "out/"
	work.Settings.StatePrefix = "state/"

	if err := work.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	want := []string{"partner-drops/" + key, "results/out/" + key + ".json", "results/state/" + key + "@" + event.ETag}
	if got := store.keys(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("objects %v, want %v", got, want)
	}
}
