// Package job processes one object of S3-compatible storage, named by the event that started
// the job, in two steps that the workflow runs as two pods:
//
//   - Validate reads the object, checks that it is whole (the size and ETag the event announced)
//     and well-formed (CSV), and returns the validated records: the workflow's artifact;
//   - Load writes the result, then a marker named after the object's key and ETag.
//
// The marker makes the job idempotent: an event for a key and ETag that has a marker is skipped,
// so a re-delivered or late event is harmless, while a new version of the object (a new ETag) is
// new work. Invalid input fails before anything is written.
package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"
)

// Store is the object storage the job reads and writes (S3, MinIO...). A missing object is an
// error that wraps fs.ErrNotExist.
type Store interface {
	// Head returns the ETag (without quotes) and the size of an object.
	Head(ctx context.Context, bucket, key string) (etag string, size int64, err error)
	// Get returns the content and the ETag (without quotes) of an object.
	Get(ctx context.Context, bucket, key string) (body []byte, etag string, err error)
	// Put writes an object.
	Put(ctx context.Context, bucket, key string, body []byte, contentType string) error
}

// Artifact is what Validate hands to Load: the validated records of one version of an object.
type Artifact struct {
	Source  string     `json:"source"`
	Bucket  string     `json:"bucket"`
	Key     string     `json:"key"`
	ETag    string     `json:"etag"`
	Skipped bool       `json:"skipped,omitempty"`
	Columns []string   `json:"columns"`
	Records [][]string `json:"records"`
}

// Result is what Load writes to <OutputPrefix><key>.json.
type Result struct {
	Source  string   `json:"source"`
	ETag    string   `json:"etag"`
	Rows    int      `json:"rows"`
	Columns []string `json:"columns"`
}

// InvalidError is input the job refuses: nothing was loaded, and running again will not help.
type InvalidError struct {
	Source string
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s is invalid: %s", e.Source, e.Reason)
}

// Log events: the "event" field of the log lines that tell what happened to the object.
const (
	EventValidated = "validated"
	EventLoaded    = "loaded"
	EventSkipped   = "skipped"
	EventInvalid   = "invalid"
)

// Job is one run for the object that Settings.Event names.
type Job struct {
	Store    Store
	Settings Settings
	Logger   *slog.Logger
	// Now is the clock of the marker's time stamp (time.Now when nil).
	Now func() time.Time
}

func (j *Job) source() string {
	return fmt.Sprintf("s3://%s/%s", j.Settings.Event.Bucket, j.Settings.Event.Key)
}

func (j *Job) markerKey(etag string) string {
	return j.Settings.StatePrefix + j.Settings.Event.Key + "@" + etag
}

func (j *Job) resultKey() string {
	return j.Settings.OutputPrefix + j.Settings.Event.Key + ".json"
}

// processed tells whether the marker of this key and ETag exists.
func (j *Job) processed(ctx context.Context, etag string) (bool, error) {
	_, _, err := j.Store.Head(ctx, j.Settings.OutputBucket, j.markerKey(etag))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("looking for the marker of %s: %w", j.source(), err)
	}
}

func (j *Job) invalid(reason string, args ...any) error {
	return &InvalidError{Source: j.source(), Reason: fmt.Sprintf(reason, args...)}
}

func (j *Job) skipped(etag string) {
	j.Logger.Info("already processed: skipped", "event", EventSkipped,
		"source", j.source(), "etag", etag, "marker", j.markerKey(etag))
}

// Validate reads the object and returns its validated records, or an *InvalidError. An object
// whose key and ETag were processed already gives an artifact marked Skipped.
func (j *Job) Validate(ctx context.Context) (Artifact, error) {
	event := j.Settings.Event
	artifact := Artifact{Source: j.source(), Bucket: event.Bucket, Key: event.Key, ETag: event.ETag}
	// The event's ETag first: a re-delivered event is skipped even if the object changed since.
	if event.ETag != "" {
		done, err := j.processed(ctx, event.ETag)
		if err != nil || done {
			artifact.Skipped = done
			if done {
				j.skipped(event.ETag)
			}
			return artifact, err
		}
	}
	etag, size, err := j.Store.Head(ctx, event.Bucket, event.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return Artifact{}, j.invalid("the object does not exist")
	}
	if err != nil {
		return Artifact{}, fmt.Errorf("reading %s: %w", j.source(), err)
	}
	if event.ETag == "" {
		// A calendar or webhook event names the object only: this version of it is the work.
		artifact.ETag = etag
		done, err := j.processed(ctx, etag)
		if err != nil || done {
			artifact.Skipped = done
			if done {
				j.skipped(etag)
			}
			return artifact, err
		}
	}
	body, got, err := j.Store.Get(ctx, event.Bucket, event.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return Artifact{}, j.invalid("the object does not exist")
	}
	if err != nil {
		return Artifact{}, fmt.Errorf("reading %s: %w", j.source(), err)
	}
	wantSize := event.Size
	if wantSize < 0 {
		wantSize = size
	}
	switch {
	case got != artifact.ETag:
		return Artifact{}, j.invalid("its ETag is %s, the event announced %s: "+
			"the object is incomplete or was replaced", got, artifact.ETag)
	case int64(len(body)) != wantSize:
		return Artifact{}, j.invalid("it has %d bytes, the event announced %d: "+
			"the object is incomplete", len(body), wantSize)
	}
	columns, records, err := ParseCSV(body)
	if err != nil {
		return Artifact{}, j.invalid("%v", err)
	}
	artifact.Columns, artifact.Records = columns, records
	j.Logger.Info("object validated", "event", EventValidated,
		"source", artifact.Source, "etag", artifact.ETag, "rows", len(records))
	return artifact, nil
}

// Load writes the result of a validated artifact, then the marker that makes a repeat a skip.
// The result is written first: a load that fails between the two is done again, never lost.
func (j *Job) Load(ctx context.Context, artifact Artifact) (loaded bool, err error) {
	if artifact.Bucket != j.Settings.Event.Bucket || artifact.Key != j.Settings.Event.Key {
		return false, j.invalid("the artifact is for %s", artifact.Source)
	}
	if artifact.Skipped {
		j.skipped(artifact.ETag)
		return false, nil
	}
	// Checked again: another run of the same object may have loaded it since validation.
	done, err := j.processed(ctx, artifact.ETag)
	if err != nil || done {
		if done {
			j.skipped(artifact.ETag)
		}
		return false, err
	}
	result := Result{
		Source: artifact.Source, ETag: artifact.ETag, Rows: len(artifact.Records), Columns: artifact.Columns,
	}
	body, err := json.Marshal(result)
	if err != nil {
		return false, err
	}
	if err := j.Store.Put(ctx, j.Settings.OutputBucket, j.resultKey(), body, "application/json"); err != nil {
		return false, fmt.Errorf("writing the result of %s: %w", artifact.Source, err)
	}
	now := time.Now
	if j.Now != nil {
		now = j.Now
	}
	// When the event happened, if it said: how late the load was, for an audit.
	var eventTime *string
	if at := j.Settings.Event.Time; !at.IsZero() {
		formatted := at.UTC().Format(time.RFC3339Nano)
		eventTime = &formatted
	}
	marker, err := json.Marshal(map[string]any{
		"source":     artifact.Source,
		"etag":       artifact.ETag,
		"result":     j.resultKey(),
		"loaded_at":  now().UTC().Format(time.RFC3339),
		"event_time": eventTime,
	})
	if err != nil {
		return false, err
	}
	if err := j.Store.Put(ctx, j.Settings.OutputBucket, j.markerKey(artifact.ETag), marker, "application/json"); err != nil {
		return false, fmt.Errorf("writing the marker of %s: %w", artifact.Source, err)
	}
	j.Logger.Info("result loaded", "event", EventLoaded, "source", artifact.Source,
		"etag", artifact.ETag, "rows", result.Rows, "result", j.resultKey())
	return true, nil
}

// Run validates and loads in one process (local runs and tests).
func (j *Job) Run(ctx context.Context) error {
	artifact, err := j.Validate(ctx)
	if err != nil || artifact.Skipped {
		return err
	}
	_, err = j.Load(ctx, artifact)
	return err
}
