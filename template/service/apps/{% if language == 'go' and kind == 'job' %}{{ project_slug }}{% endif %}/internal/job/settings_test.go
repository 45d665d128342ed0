package job

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// environment is a lookupEnv over a map, as os.LookupEnv is over the process's environment.
func environment(variables map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		value, ok := variables[name]
		return value, ok
	}
}

func TestOnlyTheObjectIsRequired(t *testing.T) {
	settings, err := SettingsFromEnv(environment(map[string]string{
		"EVENT_BUCKET": "drops", "EVENT_KEY": "in/a.csv",
	}))
	if err != nil {
		t.Fatal(err)
	}

	want := Settings{
		Event:        Event{Bucket: "drops", Key: "in/a.csv", Size: -1},
		OutputBucket: "drops",
		OutputPrefix: "loaded/",
		StatePrefix:  ".processed/",
		LogLevel:     slog.LevelInfo,
	}
	if settings != want {
		t.Errorf("settings = %+v, want %+v", settings, want)
	}
}

func TestEverySettingIsRead(t *testing.T) {
	settings, err := SettingsFromEnv(environment(map[string]string{
		"EVENT_BUCKET":    "drops",
		"EVENT_KEY":       "in/a.csv",
		"EVENT_ETAG":      `"0123abc"`,
		"EVENT_SIZE":      "25",
		"EVENT_TIME":      "2026-12-01T02:00:00+01:00",
		"OUTPUT_BUCKET":   "results",
		"OUTPUT_PREFIX":   "out/",
		"STATE_PREFIX":    "state/",
		"S3_ENDPOINT_URL": "http://minio:9000",
		"LOG_LEVEL":       "debug",
	}))
	if err != nil {
		t.Fatal(err)
	}

	want := Settings{
		Event: Event{
			Bucket: "drops", Key: "in/a.csv", ETag: "0123abc", Size: 25,
			Time: time.Date(2026, 12, 1, 2, 0, 0, 0, time.FixedZone("", 3600)),
		},
		OutputBucket: "results",
		OutputPrefix: "out/",
		StatePrefix:  "state/",
		Endpoint:     "http://minio:9000",
		LogLevel:     slog.LevelDebug,
	}
	if !settings.Event.Time.Equal(want.Event.Time) {
		t.Errorf("time = %v, want %v", settings.Event.Time, want.Event.Time)
	}
	settings.Event.Time = want.Event.Time
	if settings != want {
		t.Errorf("settings = %+v, want %+v", settings, want)
	}
}

func TestMissingAndInvalidValuesAreRefusedByName(t *testing.T) {
	object := map[string]string{"EVENT_BUCKET": "drops", "EVENT_KEY": "a.csv"}
	cases := []struct{ name, value string }{
		{"EVENT_BUCKET", ""},
		{"EVENT_KEY", ""},
		{"EVENT_KEY", "  "},
		{"EVENT_SIZE", "-1"},
		{"EVENT_SIZE", "big"},
		{"EVENT_TIME", "yesterday"},
		{"S3_ENDPOINT_URL", "minio:9000"},
		{"S3_ENDPOINT_URL", "ftp://minio"},
		{"S3_ENDPOINT_URL", "http://"},
		{"LOG_LEVEL", "LOUD"},
		{"EVENT_KEY_ENCODING", "base64"},
	}
	for _, c := range cases {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			variables := map[string]string{}
			for name, value := range object {
				variables[name] = value
			}
			variables[c.name] = c.value

			_, err := SettingsFromEnv(environment(variables))

			if err == nil || !strings.HasPrefix(err.Error(), c.name+" ") {
				t.Errorf("error = %v, want one about %s", err, c.name)
			}
		})
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	_, err := SettingsFromEnv(environment(map[string]string{"EVENT_SIZE": "x"}))

	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"EVENT_BUCKET", "EVENT_KEY", "EVENT_SIZE"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestAURLEncodedKeyIsDecodedWhenTheEncodingSaysSo(t *testing.T) {
	variables := map[string]string{"EVENT_BUCKET": "drops", "EVENT_KEY": "in%2Fred+flower%2B1.csv"}
	plain, err := SettingsFromEnv(environment(variables))
	if err != nil || plain.Event.Key != "in%2Fred+flower%2B1.csv" {
		t.Errorf("without EVENT_KEY_ENCODING: key %q, error %v", plain.Event.Key, err)
	}

	variables["EVENT_KEY_ENCODING"] = "url"
	decoded, err := SettingsFromEnv(environment(variables))

	if err != nil || decoded.Event.Key != "in/red flower+1.csv" {
		t.Errorf("key %q, error %v", decoded.Event.Key, err)
	}
}

func TestABadlyEncodedKeyIsAnEventKeyError(t *testing.T) {
	_, err := SettingsFromEnv(environment(map[string]string{
		"EVENT_BUCKET": "drops", "EVENT_KEY": "in%zz.csv", "EVENT_KEY_ENCODING": "url",
	}))

	if err == nil || !strings.HasPrefix(err.Error(), "EVENT_KEY is not URL-encoded") {
		t.Errorf("error = %v", err)
	}
}
