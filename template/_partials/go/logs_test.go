package logs

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// entries decodes the JSON lines that were logged, checking that each is one object.
func entries(t *testing.T, output *bytes.Buffer) []map[string]any {
	t.Helper()
	var logged []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(output.String(), "\n"), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("not a JSON object: %q: %v", line, err)
		}
		logged = append(logged, entry)
	}
	return logged
}

func TestRecordIsOneJSONObjectWithTheContractFields(t *testing.T) {
	var output bytes.Buffer
	logger := Named(NewHandler(&output, slog.LevelInfo), "main")

	logger.Info("hello world")

	entry := entries(t, &output)[0]
	want := map[string]any{"level": "INFO", "logger": "main", "message": "hello world"}
	for key, value := range want {
		if entry[key] != value {
			t.Errorf("%s = %v, want %v", key, entry[key], value)
		}
	}
	if _, found := entry["msg"]; found {
		t.Error(`the message is also under "msg"`)
	}
	logged, err := time.Parse(time.RFC3339, entry["time"].(string))
	if err != nil || !strings.HasSuffix(entry["time"].(string), "Z") {
		t.Errorf("time = %v, want RFC 3339 in UTC (%v)", entry["time"], err)
	}
	if age := time.Since(logged); age < 0 || age > time.Minute {
		t.Errorf("time is %v away from now", age)
	}
}

func TestAttributesAndGroupsAreKept(t *testing.T) {
	var output bytes.Buffer
	logger := Named(NewHandler(&output, slog.LevelInfo), "http.access")

	logger.Info("multi\nline", "user", "ünï", "attempt", 2, slog.Group("request", "msg", "kept"))

	entry := entries(t, &output)[0]
	if entry["message"] != "multi\nline" || entry["user"] != "ünï" || entry["attempt"] != 2.0 {
		t.Errorf("entry = %v", entry)
	}
	if group, _ := entry["request"].(map[string]any); group["msg"] != "kept" {
		t.Errorf(`a "msg" inside a group was renamed: %v`, entry["request"])
	}
}

func TestRecordsBelowTheLevelAreDropped(t *testing.T) {
	var output bytes.Buffer
	logger := Named(NewHandler(&output, slog.LevelWarn), "main")

	logger.Info("below the level")
	logger.Warn("careful")

	logged := entries(t, &output)
	if len(logged) != 1 || logged[0]["message"] != "careful" || logged[0]["level"] != "WARN" {
		t.Errorf("logged %v, want only the warning", logged)
	}
}
