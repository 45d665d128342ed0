package job

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Event is the object an event named: the bucket notification, or the object a calendar or
// webhook trigger names.
type Event struct {
	Bucket string
	Key    string
	// ETag the event announced, without quotes; empty when the event did not say.
	ETag string
	// Size in bytes the event announced; -1 when the event did not say.
	Size int64
	// Time the event happened; zero when the event did not say.
	Time time.Time
}

// Settings of the job. SettingsFromEnv reads them from the variables named in the fields' comments.
type Settings struct {
	// Event: EVENT_BUCKET and EVENT_KEY (required; EVENT_KEY_ENCODING=url decodes a key that
	// bucket notifications URL-encode), EVENT_ETAG, EVENT_SIZE, EVENT_TIME.
	Event Event
	// OutputBucket receives the results and the markers: OUTPUT_BUCKET (default EVENT_BUCKET).
	OutputBucket string
	// OutputPrefix starts the key of each result, <prefix><key>.json: OUTPUT_PREFIX.
	OutputPrefix string
	// StatePrefix starts the key of each marker, <prefix><key>@<etag>: STATE_PREFIX.
	StatePrefix string
	// Endpoint of S3-compatible storage (MinIO...): S3_ENDPOINT_URL; empty for AWS S3.
	Endpoint string
	// LogLevel is the lowest level that is logged: LOG_LEVEL.
	LogLevel slog.Level
}

const (
	// DefaultOutputPrefix is the prefix of the results when OUTPUT_PREFIX is not set.
	DefaultOutputPrefix = "loaded/"
	// DefaultStatePrefix is the prefix of the markers when STATE_PREFIX is not set.
	DefaultStatePrefix = ".processed/"
)

// SettingsFromEnv reads the settings through lookupEnv (os.LookupEnv in the job). The error names every
// variable that is missing or invalid.
func SettingsFromEnv(lookupEnv func(string) (string, bool)) (Settings, error) {
	get := func(name, fallback string) string {
		if value, ok := lookupEnv(name); ok && strings.TrimSpace(value) != "" {
			return strings.TrimSpace(value)
		}
		return fallback
	}
	var problems []error
	settings := Settings{
		Event: Event{
			Bucket: get("EVENT_BUCKET", ""),
			Key:    get("EVENT_KEY", ""),
			ETag:   strings.Trim(get("EVENT_ETAG", ""), `"`),
			Size:   -1,
		},
		OutputPrefix: get("OUTPUT_PREFIX", DefaultOutputPrefix),
		StatePrefix:  get("STATE_PREFIX", DefaultStatePrefix),
		Endpoint:     get("S3_ENDPOINT_URL", ""),
		LogLevel:     slog.LevelInfo,
	}
	for _, required := range []struct{ name, value string }{
		{"EVENT_BUCKET", settings.Event.Bucket},
		{"EVENT_KEY", settings.Event.Key},
	} {
		if required.value == "" {
			problems = append(problems, fmt.Errorf("%s is required: the object the event names", required.name))
		}
	}
	// Bucket notifications (S3, MinIO) send the key URL-encoded, as a form value: "/" may be
	// %2F and " " is "+". EVENT_KEY_ENCODING=url decodes it.
	switch encoding := get("EVENT_KEY_ENCODING", "none"); encoding {
	case "none":
	case "url":
		decoded, err := url.QueryUnescape(settings.Event.Key)
		if err != nil {
			problems = append(problems, fmt.Errorf("EVENT_KEY is not URL-encoded (EVENT_KEY_ENCODING=url): %q", settings.Event.Key))
		}
		settings.Event.Key = decoded
	default:
		problems = append(problems, fmt.Errorf("EVENT_KEY_ENCODING must be url or none, got %q", encoding))
	}
	settings.OutputBucket = get("OUTPUT_BUCKET", settings.Event.Bucket)
	if value := get("EVENT_SIZE", ""); value != "" {
		size, err := strconv.ParseInt(value, 10, 64)
		if err != nil || size < 0 {
			problems = append(problems, fmt.Errorf("EVENT_SIZE must be a number of bytes >= 0, got %q", value))
		}
		settings.Event.Size = size
	}
	if value := get("EVENT_TIME", ""); value != "" {
		at, err := time.Parse(time.RFC3339, value)
		if err != nil {
			problems = append(problems, fmt.Errorf("EVENT_TIME must be an RFC 3339 time, got %q", value))
		}
		settings.Event.Time = at
	}
	if endpoint := settings.Endpoint; endpoint != "" {
		parsed, err := url.Parse(endpoint)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
			problems = append(problems, fmt.Errorf("S3_ENDPOINT_URL must be an http(s):// URL, got %q", endpoint))
		}
	}
	if value := get("LOG_LEVEL", ""); value != "" {
		// Level names as slog prints them, in any case; "INFO+2" style offsets work too.
		if err := settings.LogLevel.UnmarshalText([]byte(value)); err != nil {
			problems = append(problems, fmt.Errorf("LOG_LEVEL must be DEBUG, INFO, WARN or ERROR, got %q", value))
		}
	}
	if err := errors.Join(problems...); err != nil {
		return Settings{}, err
	}
	return settings, nil
}
